"""Agent pool: longest idle first, one customer per agent, wrap-up, pause, logout."""

from __future__ import annotations

import pytest

from dialer.agent_pool import AgentPool, AgentRefusal, AgentStateError, AgentStatus


def ready_pool(*ids: str) -> AgentPool:
    pool = AgentPool()
    for i, aid in enumerate(ids):
        a = pool.login(aid, f"Local/{aid}@sim-agents", float(i))
        pool.channel_answered(a.channel_id, float(i))
    return pool


def test_login_needs_the_channel_up_before_ready() -> None:
    pool = AgentPool()
    a = pool.login("201", "Local/201@sim-agents", 0)
    assert a.status is AgentStatus.CONNECTING
    assert pool.assign("x", 1) is None
    assert a.bridge_id == "agent-201"
    pool.channel_answered(a.channel_id, 1)
    assert pool.ready_count() == 1


def test_longest_idle_first_and_never_two_customers() -> None:
    pool = ready_pool("201", "202", "203")
    first = pool.assign("c1", 10)
    assert first is not None and first.agent_id == "201"
    second = pool.assign("c2", 10)
    assert second is not None and second.agent_id == "202"
    pool.call_ended("201", "c1", 20)
    pool.wrap_done("201", 21)
    third = pool.assign("c3", 22)
    assert third is not None and third.agent_id == "203"  # idle since 2, 201 since 21
    fourth = pool.assign("c4", 22)
    assert fourth is not None and fourth.agent_id == "201"
    assert pool.assign("c5", 22) is None
    with pytest.raises(AgentStateError):
        pool._start_call(fourth, "c6", 23)


def test_wrapup_pause_and_logout_are_deferred_while_talking() -> None:
    pool = ready_pool("201")
    pool.assign("c1", 1)
    assert pool.pause("201", 2) is None
    res, chan = pool.logout("201", 3)
    assert (res, chan) == (None, None)
    a = pool.call_ended("201", "c1", 10)
    assert a.status is AgentStatus.WRAPUP
    assert pool.wrapping_ages(12) == (2.0,)
    res, chan = pool.wrap_done("201", 12)
    assert res is None and chan == a.channel_id
    assert pool.get("201") is not None and pool.get("201").status is AgentStatus.OFFLINE  # type: ignore[union-attr]


def test_pause_after_wrapup_then_ready() -> None:
    pool = ready_pool("201")
    pool.assign("c1", 1)
    pool.pause("201", 2)
    pool.call_ended("201", "c1", 5)
    pool.wrap_done("201", 6)
    assert pool.get("201").status is AgentStatus.PAUSED  # type: ignore[union-attr]
    assert pool.assign("c2", 7) is None
    assert pool.set_ready("201", 8) is None
    assert pool.assign("c2", 9) is not None


def test_channel_lost_while_talking_logs_out_after_wrapup() -> None:
    pool = ready_pool("201")
    a = pool.assign("c1", 1)
    assert a is not None
    lost = pool.channel_lost(a.channel_id, 2)
    assert lost is a and a.status is AgentStatus.TALKING
    pool.call_ended("201", "c1", 2.1)
    res, chan = pool.wrap_done("201", 3)
    assert res is None and chan is None
    assert pool.logged_in_count() == 0


def test_refusals_are_values() -> None:
    pool = AgentPool()
    assert pool.set_ready("nobody", 0) is AgentRefusal.UNKNOWN_AGENT
    pool.login("201", "Local/201@sim-agents", 0)
    pool.logout("201", 1)
    assert pool.set_ready("201", 2) is AgentRefusal.NOT_LOGGED_IN
    assert (
        pool.wrap_done("201", 2) == (AgentRefusal.UNKNOWN_AGENT, None)
        or pool.wrap_done("201", 2)[0] is AgentRefusal.NOT_IN_WRAPUP
    )


def test_unassign_gives_agent_back() -> None:
    pool = ready_pool("201")
    pool.assign("c1", 1)
    pool.unassign("201", "c1", 1.5)
    assert pool.ready_count() == 1
    with pytest.raises(AgentStateError):
        pool.unassign("201", "c1", 2)


def test_occupancy_and_relogin_generation() -> None:
    pool = ready_pool("201")
    pool.assign("c1", 0)
    pool.call_ended("201", "c1", 5)
    assert pool.occupancy(10) == pytest.approx(0.5)
    a = pool.get("201")
    assert a is not None
    old = a.channel_id
    pool.logout("201", 10)  # in wrap-up: deferred
    pool.wrap_done("201", 10)
    again = pool.login("201", "Local/201@sim-agents", 11)
    assert again.channel_id != old
    assert pool.channel_answered(old, 12) is None
