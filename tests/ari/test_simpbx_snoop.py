"""simpbx's snoop channels (``POST /channels/{id}/snoop``), as the api-docs define them:
a Snoop/ channel, up, entering the app with its arguments, gone when its target goes;
the errors Asterisk gives for a missing app, a bad direction, no direction, no channel."""

from __future__ import annotations

import pytest
from ari_helpers import EventLog

from dialer.ari import AriBadRequest, AriClient, AriEvents, AriNotFound, StasisStart
from simulation.simpbx import Behaviour, SimPbx


async def test_snoop_enters_the_app_and_ends_with_its_target(
    sim: SimPbx, client: AriClient, events: tuple[AriEvents, EventLog]
) -> None:
    _, log = events
    sim.set_behaviour("5550001", Behaviour.human(ring=0, talk=30))
    await client.originate("Local/5550001@sim-customers", channel_id="cust", app_args=["c"])
    await sim.advance(1)
    await log.wait_type("StasisStart", "cust")
    snoop = await client.snoop(
        "cust", app="dialer", spy="both", app_args=["listen", "sup1"], snoop_id="snp-1"
    )
    assert snoop.id == "snp-1" and snoop.name.startswith("Snoop/cust-") and snoop.state == "Up"
    start = await log.wait_type("StasisStart", "snp-1")
    assert isinstance(start, StasisStart) and start.args == ("listen", "sup1")
    assert [(s.target, s.spy, s.whisper) for s in sim.engine.snoops] == [("cust", "both", "none")]
    # the path form, whisper only
    coach = await client.snoop("cust", app="dialer", whisper="out", snoop_id="snp-2")
    assert coach.id == "snp-2"
    await client.hangup("cust")
    await log.wait_type("ChannelDestroyed", "snp-1")
    await log.wait_type("ChannelDestroyed", "snp-2")
    assert sim.engine.channels == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"app": "", "spy": "both"}, "Application name is required"),
        ({"app": "dialer", "spy": "sideways"}, "Invalid direction specified for spy"),
        ({"app": "dialer"}, "Direction must be specified for at least spy or whisper"),
    ],
)
async def test_snoop_bad_requests(
    sim: SimPbx,
    client: AriClient,
    events: tuple[AriEvents, EventLog],
    kwargs: dict[str, str],
    message: str,
) -> None:
    _, log = events
    sim.set_behaviour("5550001", Behaviour.human(ring=0, talk=30))
    await client.originate("Local/5550001@sim-customers", channel_id="cust", app_args=["c"])
    await sim.advance(1)
    await log.wait_type("StasisStart", "cust")
    with pytest.raises(AriBadRequest, match=message):
        await client.snoop("cust", **kwargs)
    with pytest.raises(AriNotFound):
        await client.snoop("nobody", app="dialer", spy="both")
