"""The hardened FastAGI server against a fake Asterisk over real loopback TCP.

Each of panoramisk 1.4's defects (shared/design/architecture.md) has a test
here, and each bad peer is held open while a good session runs beside it, to
show the server stays responsive.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agi_scripts import variables as v
from agi_scripts.errors import AgiHangup, RouteConfigError
from agi_scripts.protocol import parse_env
from agi_scripts.routes import Route, RouteTable
from agi_scripts.server import AgiServer
from agi_scripts.session import AgiSession
from agi_scripts.testing import FakeAsterisk, call_env

FAIL_VARS = {"PROBE_DECISION": "BLOCK"}


class Probe:
    """A route that reads one variable and sets one, recording what happened to it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, ...]]] = []
        self.errors: list[BaseException] = []
        self.block = asyncio.Event()
        self.blocking = False
        self._changed = asyncio.Condition()

    async def wait_seen(self, count: int) -> None:
        async with asyncio.timeout(2), self._changed:
            await self._changed.wait_for(lambda: len(self.seen) >= count)

    async def handle(self, session: AgiSession) -> None:
        try:
            self.seen.append((session.env.script, session.env.args))
            async with self._changed:
                self._changed.notify_all()
            if self.blocking:
                await self.block.wait()
            name = await session.get_variable("CALLERID(num)")
            await session.set_variable("PROBE_DECISION", f"ALLOW-{name}")
        except BaseException as exc:  # test probe: record then re-raise, cancellation included
            self.errors.append(exc)
            raise

    def route(self, name: str = "desk_check") -> Route:
        return Route(name, self.handle, failure_variables=FAIL_VARS)


async def good_session(server: AgiServer, desk_env: bytes) -> dict[str, str]:
    peer = FakeAsterisk("127.0.0.1", server.port, channel_vars={"CALLERID(num)": "201"})
    result = await peer.run(desk_env)
    assert result.closed_by_server
    assert result.unknown == [] and result.pipelined == []
    return result.set_vars


async def test_reference_block_is_routed_with_its_arguments(make_server, desk_env) -> None:
    probe = Probe()
    server = await make_server([probe.route()])
    assert await good_session(server, desk_env) == {"PROBE_DECISION": "ALLOW-201"}
    assert probe.seen == [("desk_check", ("5550001",))]  # "desk-check" -> desk_check


async def test_100_trying_and_multiline_520_keep_the_stream_in_step(make_server, desk_env) -> None:
    async def usage(session: AgiSession) -> None:
        with pytest.raises(Exception, match="520"):
            await session.command("GET VARIABLE")
        await session.set_variable("AFTER", "ok")

    server = await make_server([Route("desk_check", usage)])
    peer = FakeAsterisk("127.0.0.1", server.port, send_trying=True)
    result = await peer.run(desk_env)
    assert result.set_vars == {"AFTER": "ok"}


# -- P1: EOF before or inside the environment block ------------------------------------------
@pytest.mark.parametrize("cut", [0, 1, 100, -1])
async def test_peer_closing_before_end_of_environment(make_server, desk_env, cut) -> None:
    probe = Probe()
    server = await make_server([probe.route()])
    partial = desk_env[:cut] if cut >= 0 else desk_env[:-1]  # -1: all but the final "\n"
    for _ in range(20):  # a port scan: many of them
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(partial)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    async with asyncio.timeout(2):
        assert await good_session(server, desk_env) == {"PROBE_DECISION": "ALLOW-201"}
    for _ in range(50):
        if server.stats.get("connection_lost", 0) == 20:
            break
        await asyncio.sleep(0.01)
    assert server.stats.get("connection_lost") == 20
    assert probe.seen == [("desk_check", ("5550001",))]


# -- a peer that never finishes the block ------------------------------------------------------
async def test_environment_timeout_closes_slow_peer(make_server, desk_env) -> None:
    server = await make_server([Probe().route()], env_timeout_s=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(desk_env[:200])
    await writer.drain()
    started = asyncio.get_running_loop().time()
    # the good session completes while the slow one is still open
    assert await good_session(server, desk_env) == {"PROBE_DECISION": "ALLOW-201"}
    assert asyncio.get_running_loop().time() - started < 0.3
    async with asyncio.timeout(2):
        assert await reader.read() == b""  # closed by the server, nothing written
    elapsed = asyncio.get_running_loop().time() - started
    assert 0.25 <= elapsed < 1.5
    assert server.stats.get("timeout") == 1
    writer.close()


# -- a 1 MB block ---------------------------------------------------------------------------
async def test_one_megabyte_environment_is_refused(make_server, desk_env) -> None:
    probe = Probe()
    server = await make_server([probe.route()], env_max_bytes=16384)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    block = desk_env[:-1] + b"agi_arg_2: " + b"x" * (1024 * 1024) + b"\n\n"

    async def flood() -> None:
        try:
            writer.write(block)
            await writer.drain()
        except ConnectionError:
            pass  # the server closed on us mid-send: that is the point

    flooding = asyncio.create_task(flood())
    assert await good_session(server, desk_env) == {"PROBE_DECISION": "ALLOW-201"}
    async with asyncio.timeout(2):
        try:
            assert await reader.read() == b""
        except ConnectionResetError:
            pass  # unread data made the kernel reset instead of FIN: closed either way
        await flooding
    writer.close()
    assert server.stats.get("environment_too_large") == 1
    assert len(probe.seen) == 1


# -- garbage ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "garbage",
    [
        os.urandom(64) + b"\n\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\n\n",
        b"\xff\xfe\xfd\n\n",
        b"agi_network: yes\n\n",  # no agi_network_script
    ],
    ids=["random", "http", "not-utf8", "no-script"],
)
async def test_garbage_is_refused_without_running_a_route(make_server, desk_env, garbage) -> None:
    probe = Probe()
    server = await make_server([probe.route()])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(garbage)
    await writer.drain()
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    writer.close()
    assert await good_session(server, desk_env) == {"PROBE_DECISION": "ALLOW-201"}
    assert server.stats.get("protocol_error") == 1
    assert probe.seen == [("desk_check", ("5550001",))]


# -- hangup mid-session ---------------------------------------------------------------------
async def test_hangup_mid_session_raises_agihangup(make_server, desk_env) -> None:
    probe = Probe()
    server = await make_server([probe.route()])
    peer = FakeAsterisk(
        "127.0.0.1", server.port, channel_vars={"CALLERID(num)": "201"}, hangup_after=0
    )
    result = await peer.run(desk_env)
    assert result.commands == ["GET VARIABLE CALLERID(num)"]  # then the server stops
    assert result.closed_by_server
    assert [type(e) for e in probe.errors] == [AgiHangup]
    assert server.stats.get("hangup") == 1


async def test_after_hangup_commands_still_work_and_the_stream_stays_in_step(
    make_server, desk_env
) -> None:
    """Replays fastagi_desk-check_5550002: HANGUP reply, bare HANGUP, GET still answered."""
    got: list[str | None] = []

    async def route(session: AgiSession) -> None:
        got.append((await session.command("HANGUP")).result)  # "200 result=1"
        # the bare HANGUP line follows that reply: the next command sees it
        with pytest.raises(AgiHangup):
            await session.get_variable("CALLERID(num)")
        got.append(await session.get_variable("CALLERID(num)"))  # raised once, then answered
        got.append((await session.command("EXEC Playback beep")).result)

    server = await make_server([Route("desk_check", route)])
    env = (Path(__file__).parent / "data" / "fastagi_desk-check_5550002_env.raw").read_bytes()
    peer = FakeAsterisk("127.0.0.1", server.port, channel_vars={"CALLERID(num)": "201"})
    result = await peer.run(env)
    assert result.commands == [
        "HANGUP",
        "GET VARIABLE CALLERID(num)",
        "GET VARIABLE CALLERID(num)",
        "EXEC Playback beep",
    ]
    assert got == ["1", "201", "-1"]  # EXEC on a dead channel: result=-1, as captured
    assert server.stats.get("hangup") == 1


# -- ?query in the URL ------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["desk-check?source=test&x=1", "desk_check?", "/desk-check/"])
async def test_query_and_slashes_do_not_break_the_route_lookup(
    make_server, desk_env, script
) -> None:
    probe = Probe()
    server = await make_server([probe.route()])
    env = call_env(desk_env, script=script)
    peer = FakeAsterisk("127.0.0.1", server.port, channel_vars={"CALLERID(num)": "201"})
    result = await peer.run(env)
    assert result.set_vars == {"PROBE_DECISION": "ALLOW-201"}
    assert probe.seen == [("desk_check", ("5550001",))]


# -- shutdown with sessions open --------------------------------------------------------------
async def test_stop_cancels_open_sessions_and_closes_their_sockets(make_server, desk_env) -> None:
    probe = Probe()
    probe.blocking = True
    server = await make_server([probe.route()], shutdown_grace_s=0.1)
    port = server.port
    peers = []
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(desk_env)
        await writer.drain()
        peers.append((reader, writer))
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    await probe.wait_seen(3)
    assert len(probe.seen) == 3 and server.open_connections == 4
    async with asyncio.timeout(2):
        await server.stop()
    assert [type(e) for e in probe.errors] == [asyncio.CancelledError] * 3
    assert server.open_connections == 0
    for reader, writer in [*peers, (idle_reader, idle_writer)]:
        async with asyncio.timeout(1):
            assert await reader.read() == b""
        writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_stop_lets_sessions_finish_within_the_grace_period(make_server, desk_env) -> None:
    probe = Probe()
    probe.blocking = True
    server = await make_server([probe.route()], shutdown_grace_s=2.0)
    peer = FakeAsterisk("127.0.0.1", server.port, channel_vars={"CALLERID(num)": "201"})
    running = asyncio.create_task(peer.run(desk_env))
    await probe.wait_seen(1)
    stopping = asyncio.create_task(server.stop())
    await asyncio.sleep(0.05)
    probe.block.set()
    await stopping
    assert (await running).set_vars == {"PROBE_DECISION": "ALLOW-201"}
    assert probe.errors == []


# -- fail closed ------------------------------------------------------------------------------
async def test_handler_error_sets_the_failure_variables(make_server, desk_env) -> None:
    async def broken(session: AgiSession) -> None:
        raise RuntimeError("database is down")

    server = await make_server([Route("desk_check", broken, failure_variables=FAIL_VARS)])
    result = await FakeAsterisk("127.0.0.1", server.port).run(desk_env)
    assert result.set_vars == {
        v.AGI_STATUS: "FAILED",
        v.AGI_ERROR: "handler_error",
        "PROBE_DECISION": "BLOCK",
    }


async def test_unknown_script_sets_not_found(make_server, desk_env) -> None:
    server = await make_server([Probe().route("dialer_check")])
    result = await FakeAsterisk("127.0.0.1", server.port).run(desk_env)
    assert result.set_vars == {v.AGI_STATUS: "NOT_FOUND", v.AGI_ERROR: "no_route"}


async def test_sessions_over_the_cap_get_busy_and_fail_closed(make_server, desk_env) -> None:
    probe = Probe()
    probe.blocking = True
    server = await make_server([probe.route()], max_sessions=1)
    first = asyncio.create_task(
        FakeAsterisk("127.0.0.1", server.port, channel_vars={"CALLERID(num)": "201"}).run(desk_env)
    )
    await probe.wait_seen(1)
    second = await FakeAsterisk("127.0.0.1", server.port).run(desk_env)
    assert second.set_vars == {v.AGI_STATUS: "BUSY", v.AGI_ERROR: "overloaded", **FAIL_VARS}
    probe.block.set()
    assert (await first).set_vars == {"PROBE_DECISION": "ALLOW-201"}


# -- plain def handlers ---------------------------------------------------------------------
def test_plain_def_handler_is_refused_with_a_clear_error() -> None:
    def sync_handler(session: AgiSession) -> None:
        return None

    with pytest.raises(RouteConfigError, match=r"'desk_check'.*async def"):
        RouteTable([Route("desk_check", sync_handler)])  # type: ignore[arg-type]


def test_duplicate_and_dashed_route_names_are_refused() -> None:
    probe = Probe()
    with pytest.raises(RouteConfigError, match="twice"):
        RouteTable([probe.route(), probe.route()])
    with pytest.raises(RouteConfigError, match="snake_case"):
        RouteTable([probe.route("desk-check")])


async def test_handler_error_log_masks_numbers(make_server, desk_env, caplog) -> None:
    async def broken(session: AgiSession) -> None:
        raise RuntimeError("INSERT failed [parameters: ('13812345678', '010-8888 6666')]")

    server = await make_server([Route("desk_check", broken, failure_variables=FAIL_VARS)])
    with caplog.at_level("INFO", logger="agi_scripts"):  # DEBUG adds the raw traceback
        await FakeAsterisk("127.0.0.1", server.port).run(desk_env)
    text = caplog.text
    assert "138****5678" in text and "010****6666" in text
    assert "13812345678" not in text and "8888 6666" not in text


async def test_good_sessions_complete_while_every_kind_of_bad_peer_is_open(
    make_server, desk_env
) -> None:
    probe = Probe()
    server = await make_server([probe.route(), Route("stuck", _stuck)], env_timeout_s=5)
    open_writers = []
    # half an environment block, held open
    for _ in range(10):
        _r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(desk_env[:150])
        open_writers.append(w)
    # garbage without the blank line, held open
    _r, w = await asyncio.open_connection("127.0.0.1", server.port)
    w.write(os.urandom(300))
    open_writers.append(w)
    # a session whose handler waits on a reply that never comes
    _r, w = await asyncio.open_connection("127.0.0.1", server.port)
    w.write(call_env(desk_env, script="stuck"))
    open_writers.append(w)
    for w in open_writers:
        await w.drain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(good_session(server, desk_env) for _ in range(20)))
    assert results == [{"PROBE_DECISION": "ALLOW-201"}] * 20
    assert loop.time() - started < 1.0
    assert server.open_connections == len(open_writers)
    for w in open_writers:
        w.close()


async def _stuck(session: AgiSession) -> None:
    await session.get_variable("NEVER_ANSWERED")


async def test_sets_with_a_hangup_in_between_keep_the_stream_in_step(make_server, desk_env) -> None:
    seen: list[object] = []

    async def route(session: AgiSession) -> None:
        with pytest.raises(AgiHangup):
            await session.set_variables({"A": "1", "B": "2", "C": "3"})
        seen.append(await session.get_variable("B"))  # answered: every reply was read

    server = await make_server([Route("desk_check", route)])
    peer = FakeAsterisk("127.0.0.1", server.port, hangup_after=1)
    result = await peer.run(desk_env)
    assert result.set_vars == {"A": "1", "B": "2", "C": "3"}
    assert result.commands[-1] == "GET VARIABLE B"
    assert result.pipelined == []  # one command at a time, as res_agi.c needs
    assert seen == ["2"]


async def test_a_slow_handler_is_cut_off_and_fails_closed(make_server, desk_env) -> None:
    async def slow(session: AgiSession) -> None:
        await asyncio.sleep(30)  # e.g. a database that stopped answering

    server = await make_server(
        [Route("desk_check", slow, failure_variables=FAIL_VARS)], handler_timeout_s=0.2
    )
    async with asyncio.timeout(2):
        result = await FakeAsterisk("127.0.0.1", server.port).run(desk_env)
    assert result.set_vars == {
        v.AGI_STATUS: "FAILED",
        v.AGI_ERROR: "handler_timeout",
        "PROBE_DECISION": "BLOCK",
    }


async def test_garbage_replies_end_the_session_cleanly(make_server, desk_env) -> None:
    probe = Probe()
    server = await make_server([probe.route()])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(desk_env)
    async with asyncio.timeout(2):
        assert await reader.readline() == b"GET VARIABLE CALLERID(num)\n"
        writer.write(b"\x00\x01 not an AGI reply\n")
        # the failure policy still tries to tell the dialplan, then the server closes
        assert (await reader.readline()).startswith(b"SET VARIABLE DIALER_AGI_STATUS")
        writer.write(b"garbage again\n")
        assert await reader.read() == b""
    writer.close()
    assert server.stats.get("protocol_error") == 1
    assert await good_session(server, desk_env) == {"PROBE_DECISION": "ALLOW-201"}


@pytest.mark.parametrize(
    ("arg_lines", "expected"),
    [
        ("", ()),
        ("agi_arg_1: 5550001\nagi_arg_2: \nagi_arg_3: loan\n", ("5550001", "", "loan")),
        # not as Asterisk numbers them: ordered by N, gaps closed, the last duplicate wins
        ("agi_arg_3: c\nagi_arg_1: a\n", ("a", "c")),
        ("agi_arg_2: b\n", ("b",)),
        ("agi_arg_1: a\nagi_arg_1: z\nagi_arg_2: b\n", ("z", "b")),
        ("agi_arg_1: a\nagi_arg_x: ignored\nagi_arg_02: b\n", ("a", "b")),
    ],
)
def test_environment_arguments_in_order(arg_lines: str, expected: tuple[str, ...]) -> None:
    block = (
        "agi_network: yes\nagi_network_script: dialer-check?x=1\n"
        f"{arg_lines}agi_accountcode: \nagi_uniqueid: 1.2\n\n"
    ).encode()
    env = parse_env(block)
    assert env.args == expected
    assert env.script == "dialer_check" and env.query == {"x": "1"}
    assert env.get("agi_accountcode", "unset") == "" and env.uniqueid == "1.2"
