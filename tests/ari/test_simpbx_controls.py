"""simpbx itself: scripted behaviours, test controls (Python and /_sim HTTP), clock, CLI, load."""

from __future__ import annotations

import argparse
import asyncio
import sys
import wave
from pathlib import Path

import aiohttp
import pytest
from ari_helpers import PASSWORD, SHARED_REFERENCE, USER, EventLog

from dialer.ari import (
    AriClient,
    AriConflict,
    AriEvents,
    AriServerError,
    ChannelDestroyed,
    ChannelVarset,
    Dial,
    RecordingFinished,
    StasisStart,
)
from dialer.cli import UserError
from simulation.simpbx import Behaviour, SimPbx, cli, running_simpbx
from simulation.simpbx.server import text_frame

CUSTOMER = "Local/{n}@sim-customers"


async def final(log: EventLog, cid: str) -> tuple[list[str], int, bool]:
    """(Dial statuses, ;1 ChannelDestroyed cause, reached Stasis) of a finished call."""
    gone = await log.wait_type("ChannelDestroyed", cid)
    assert isinstance(gone, ChannelDestroyed)
    dials = [e.dialstatus for e in log.of("Dial", cid) if isinstance(e, Dial)]
    return dials, gone.cause, bool(log.of("StasisStart", cid))


# (override, seconds to let pass, expected Dial statuses, ;1 cause, StasisStart?)
CASES = [
    (Behaviour.human(ring=1, talk=2), 5, ["", "RINGING", "ANSWER"], 16, True),
    (Behaviour.human(ring=0, talk=1), 4, ["", "ANSWER"], 16, True),
    (Behaviour.machine(ring=1, talk=1), 14, ["", "RINGING", "ANSWER"], 16, True),
    (Behaviour.busy(), 1, ["", "BUSY"], 0, False),
    (Behaviour.busy(ring=2), 3, ["", "RINGING", "BUSY"], 0, False),
    (Behaviour.congestion(), 1, ["", "CONGESTION"], 0, False),
    (Behaviour.noanswer(), 31, ["", "RINGING"], 19, False),
    (Behaviour.reject(ring=1), 2, ["", "RINGING", "NOANSWER"], 21, False),
    (Behaviour.unallocated(), 1, ["", "NOANSWER"], 1, False),
    (Behaviour.hangup_waiting(ring=1, patience=2), 5, ["", "RINGING", "ANSWER"], 16, True),
]


@pytest.mark.parametrize(
    "behaviour,wait,dials,cause,stasis",
    CASES,
    ids=[c[0].kind.value + str(i) for i, c in enumerate(CASES)],
)
async def test_override_table_behaviours(
    sim: SimPbx,
    client: AriClient,
    events: tuple[AriEvents, EventLog],
    behaviour: Behaviour,
    wait: float,
    dials: list[str],
    cause: int,
    stasis: bool,
) -> None:
    _, log = events
    sim.set_behaviour("5550001", behaviour)
    await client.originate(
        CUSTOMER.format(n="5550001"), channel_id="ovr", app_args=["c"], timeout=30
    )
    await sim.advance(wait)
    assert await final(log, "ovr") == (dials, cause, stasis)
    assert sim.engine.channels == {}, "no channel left behind"


@pytest.mark.parametrize(
    "number,variables,dials,cause",
    [
        ("5550001", {"SIM_BEHAVIOUR": "busy"}, ["", "BUSY"], 0),
        ("5550001", {"SIM_BEHAVIOUR": "reject", "SIM_RING": "1"}, ["", "RINGING", "NOANSWER"], 21),
        ("5550001", {"SIM_BEHAVIOUR": "bogus"}, ["", "NOANSWER"], 1),
        ("5550004", {}, ["", "CONGESTION"], 0),
        ("5550000", {}, ["", "NOANSWER"], 1),
        ("+445550007", {"SIM_TALK": "1"}, ["", "ANSWER"], 16),
    ],
)
async def test_dialplan_variables_and_last_digit(
    sim: SimPbx,
    client: AriClient,
    events: tuple[AriEvents, EventLog],
    number: str,
    variables: dict[str, str],
    dials: list[str],
    cause: int,
) -> None:
    _, log = events
    await client.originate(CUSTOMER.format(n=number), channel_id="v", variables=variables)
    await sim.advance(5)
    got_dials, got_cause, _ = await final(log, "v")
    assert (got_dials, got_cause) == (dials, cause)


async def test_hangup_waiting_stays_when_bridged_in_time(
    sim: SimPbx, client: AriClient, events: tuple[AriEvents, EventLog]
) -> None:
    _, log = events
    sim.set_behaviour("5550001", Behaviour.hangup_waiting(ring=1, patience=3, talk=10))
    await client.originate(CUSTOMER.format(n="5550001"), channel_id="w", app_args=["c"])
    await client.originate("Local/201@sim-agents", channel_id="ag", app_args=["agent", "201"])
    await sim.advance(1.5)
    await log.wait_type("StasisStart", "w")
    agent_start = await log.wait_type("StasisStart", "ag")
    assert isinstance(agent_start, StasisStart) and agent_start.args == ("agent", "201")
    await client.create_bridge("wb")
    await client.add_channel("wb", ["w", "ag"])
    await sim.advance(5)
    assert not log.of("ChannelDestroyed", "w"), "bridged before patience ran out: stays"
    await sim.advance(10)
    await log.wait_type("ChannelDestroyed", "w")


async def test_remote_hangup_and_agent_talk(
    sim: SimPbx, client: AriClient, events: tuple[AriEvents, EventLog]
) -> None:
    _, log = events
    await client.originate(
        "Local/202@sim-agents",
        channel_id="ag2",
        app_args=["agent", "202"],
        variables={"AGENT_TALK": "4"},
    )
    await sim.advance(0.1)
    await log.wait_type("StasisStart", "ag2")
    await sim.advance(4)
    gone = await log.wait_type("ChannelDestroyed", "ag2")
    assert isinstance(gone, ChannelDestroyed) and gone.cause == 16
    await client.originate(CUSTOMER.format(n="5550002"), channel_id="rh", app_args=["c"])
    await sim.advance(2.5)
    await sim.remote_hangup("rh", cause=16)
    await log.wait_type("StasisEnd", "rh")
    await log.wait_type("ChannelDestroyed", "rh")


async def test_failure_injection_and_journal(sim: SimPbx, client: AriClient) -> None:
    sim.fail_next("POST", "/channels", 503, count=2)
    for _ in range(2):
        with pytest.raises(AriServerError) as err:
            await client.originate(CUSTOMER.format(n="5550003"), channel_id="f")
        assert err.value.status == 503 and err.value.retriable
    await client.originate(CUSTOMER.format(n="5550003"), channel_id="f")
    sim.fail_next("*", "/bridges/*", 500, message="boom")
    with pytest.raises(AriServerError, match="boom"):
        await client.get_bridge("x")
    journal = [(e.method, e.path, e.status) for e in sim.requests]
    assert journal == [
        ("POST", "/channels", 503),
        ("POST", "/channels", 503),
        ("POST", "/channels", 200),
        ("GET", "/bridges/x", 500),
    ]
    assert sim.requests[0].query["channelId"] == "f" and sim.requests[0].query["app"] == "dialer"


async def test_control_plane_over_http(sim: SimPbx, client: AriClient) -> None:
    base = sim.base_url.removesuffix("/ari")
    log = EventLog()
    ws = AriEvents(client, backoff_initial=0.05, backoff_max=0.1)
    ws.on_any(log)
    async with ws, aiohttp.ClientSession() as http:
        await ws.wait_connected()
        async with http.post(
            base + "/_sim/behaviours", json={"number": "5550001", "kind": "busy"}
        ) as r:
            assert r.status == 204
        async with http.post(base + "/_sim/behaviours", json={"number": "1", "kind": "nope"}) as r:
            assert r.status == 400 and "nope" in await r.text()
        async with http.get(base + "/_sim/behaviours") as r:
            assert (await r.json())["5550001"]["kind"] == "busy"
        await client.originate(CUSTOMER.format(n="5550001"), channel_id="cp")
        await log.wait_type("ChannelDestroyed", "cp")
        async with http.post(
            base + "/_sim/fail", json={"path": "/asterisk/ping", "status": 502}
        ) as r:
            assert r.status == 204
        with pytest.raises(AriServerError):
            await client.ping()
        async with http.post(base + "/_sim/advance", json={"seconds": 1.5}) as r:
            assert (await r.json())["now"] == pytest.approx(1.5)
        async with http.get(base + "/_sim/clock") as r:
            assert (await r.json())["mode"] == "manual"
        async with http.post(base + "/_sim/race", json={"enabled": True}) as r:
            assert (await r.json())["race_mode"] is True and sim.race_mode
        async with http.get(base + "/_sim/requests") as r:
            paths = [e["path"] for e in await r.json()]
            assert paths == ["/channels", "/asterisk/ping"]
        await client.originate(CUSTOMER.format(n="5550002"), channel_id="cp2", app_args=["c"])
        await sim.advance(2.5)
        async with http.post(base + "/_sim/hangup", json={"channel": "cp2", "cause": 16}) as r:
            assert r.status == 204
        async with http.post(base + "/_sim/hangup", json={"channel": "nope"}) as r:
            assert r.status == 404
        await log.wait_type("ChannelDestroyed", "cp2")
        async with http.get(base + "/_sim/state") as r:
            state = await r.json()
            assert state["channels"] == [] and state["timer_errors"] == 0
        async with http.post(base + "/_sim/drop_websocket", json={"mode": "close"}) as r:
            assert (await r.json())["dropped"] == 1
        async with http.get(base + "/_sim/events") as r:
            assert any(e["type"] == "StasisStart" for e in await r.json())


async def test_fast_time_scale_runs_a_call_quickly(tmp_path: Path) -> None:
    async with running_simpbx(time_scale=50, recordings_dir=tmp_path) as sim:
        client = AriClient(sim.base_url, USER, PASSWORD)
        log = EventLog()
        ws = AriEvents(client)
        ws.on_any(log)
        try:
            async with ws:
                await ws.wait_connected()
                loop = asyncio.get_running_loop()
                began = loop.time()
                # rings 2 s, talks 5 s, hangs up: 8.4 simulated seconds, ~0.17 s real.
                await client.originate(
                    CUSTOMER.format(n="5550009"), channel_id="fast", app_args=["c"]
                )
                await log.wait_type("ChannelDestroyed", "fast", within=3)
                assert loop.time() - began < 1.5
                assert sim.now() >= 8.0
        finally:
            await client.close()


async def test_many_concurrent_calls_finish_clean(
    sim: SimPbx, client: AriClient, events: tuple[AriEvents, EventLog]
) -> None:
    _, log = events
    numbers = ["5550001", "5550003", "5550004", "5550008", "5550009", "5550000"]
    await asyncio.gather(
        *(
            client.originate(
                CUSTOMER.format(n=numbers[i % 6]), channel_id=f"m{i}", app_args=["c"], timeout=30
            )
            for i in range(300)
        )
    )
    for _ in range(40):
        await sim.advance(1)
    await log.wait_for(lambda: len(log.of("ChannelDestroyed")) == 600, within=10)
    assert sim.engine.channels == {} and sim.sched.errors == 0
    assert sum(1 for e in log.of("StasisStart")) == 100


async def test_recording_file_matches_the_reference_format(
    sim: SimPbx, client: AriClient, events: tuple[AriEvents, EventLog]
) -> None:
    _, log = events
    await client.originate("Local/201@sim-agents", channel_id="r1", app_args=["agent", "201"])
    await sim.advance(0.1)
    await client.create_bridge("rb")
    await client.add_channel("rb", "r1")
    await client.record_bridge("rb", "rec-ref", if_exists="overwrite")
    await sim.advance(6.02)
    await client.hangup("r1")
    await log.wait_type("RecordingFinished", "recording:rec-ref")
    path = sim.recordings_dir / "rec-ref.wav"
    with wave.open(str(path)) as mine:
        params = (mine.getframerate(), mine.getsampwidth(), mine.getnchannels())
        assert params == (8000, 2, 1)
        assert mine.getnframes() == round(6.02 * 8000)
        frames = mine.readframes(mine.getnframes())
        assert any(frames), "not pure silence: the simulated world has tones"
    reference = SHARED_REFERENCE / "ari-events" / "recordings" / "rec-answered.wav"
    if reference.exists():
        with wave.open(str(reference)) as ref:
            assert (ref.getframerate(), ref.getsampwidth(), ref.getnchannels()) == params
            assert path.stat().st_size == reference.stat().st_size


async def test_cli_entry_point_serves_ari() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulation.simpbx", "--port", "0", "--clock", "manual",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("simpbx listening: http://127.0.0.1:")
        url = line.split()[2]
        client = AriClient(url, USER, PASSWORD)
        try:
            assert (await client.ping()).ping == "pong"
        finally:
            await client.close()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


def test_dialer_subcommand_registration() -> None:
    parser = argparse.ArgumentParser(prog="dialer")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simpbx", "--port", "0", "--clock", "manual", "--time-scale", "10"])
    assert (args.port, args.clock, args.time_scale) == (0, "manual", 10.0)
    assert args.handler is cli.run
    bad = parser.parse_args(["simpbx", "--time-scale", "0"])
    with pytest.raises(UserError, match="time-scale"):
        asyncio.run(cli.run(bad))


async def test_nailed_up_agent_bridge_records_call_by_call(
    sim: SimPbx, client: AriClient, events: tuple[AriEvents, EventLog]
) -> None:
    """The architecture's agent model: the agent stays bridged, one recording per call."""
    _, log = events
    await client.originate("Local/101@sim-agents", channel_id="ag-101", app_args=["agent", "101"])
    await sim.advance(0.1)
    await client.create_bridge("agent-101")
    await client.add_channel("agent-101", "ag-101")
    for n, cid in enumerate(("dl-1", "dl-2"), start=1):
        await client.originate(CUSTOMER.format(n="5550002"), channel_id=cid, app_args=["dial", cid])
        await sim.advance(2.1)
        await log.wait_type("StasisStart", cid)
        await client.add_channel("agent-101", cid)
        await client.record_bridge("agent-101", f"rec-{n}", format="wav")
        with pytest.raises(AriConflict):
            await client.record_bridge("agent-101", f"rec-{n}", format="wav")
        await sim.advance(4)
        await client.hangup(cid)
        await sim.advance(0.1)
        await log.wait_type("ChannelLeftBridge", cid)
        # The agent is still in the bridge: the recording runs until it is stopped.
        assert (await client.get_live_recording(f"rec-{n}")).state == "recording"
        await client.stop_recording(f"rec-{n}")
        done = await log.wait_type("RecordingFinished", f"recording:rec-{n}")
        assert isinstance(done, RecordingFinished) and done.recording.duration == 4
    with pytest.raises(AriConflict):
        await client.record_bridge("agent-101", "rec-1", format="wav", if_exists="fail")
    bridge = await client.get_bridge("agent-101")
    assert bridge.channels == ("ag-101",) and bridge.technology == "simple_bridge"
    assert sorted(r.name for r in await client.list_stored_recordings()) == ["rec-1", "rec-2"]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_websocket_text_frame_lengths(size: int) -> None:
    """RFC 6455 length encodings: 7-bit, 16-bit (126) and 64-bit (127)."""
    payload = b"x" * size
    frame = text_frame(payload)
    assert frame[0] == 0x81 and frame.endswith(payload)
    if size < 126:
        assert frame[1] == size and len(frame) == size + 2
    elif size < 65536:
        assert frame[1] == 126 and int.from_bytes(frame[2:4], "big") == size
    else:
        assert frame[1] == 127 and int.from_bytes(frame[2:10], "big") == size


async def test_a_large_event_crosses_the_socket_intact(
    sim: SimPbx, client: AriClient, events: tuple[AriEvents, EventLog]
) -> None:
    _, log = events
    await client.originate(CUSTOMER.format(n="5550002"), channel_id="big", app_args=["c"])
    await sim.advance(2.5)
    await log.wait_type("StasisStart", "big")
    value = "v" * 70000
    # Too long for a query string; ARI also reads parameters from a JSON body.
    await client.request("POST", "/channels/big/variable", {"variable": "HUGE"}, {"value": value})

    def huge() -> list[ChannelVarset]:
        found = [e for e in log.of("ChannelVarset", "big") if isinstance(e, ChannelVarset)]
        return [e for e in found if e.variable == "HUGE"]

    await log.wait_for(lambda: bool(huge()))
    assert huge()[0].value == value
