"""Dispositions (rules.md B) -> effects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.dispositions import (
    CallContext,
    DispositionKind,
    DispositionPlan,
    DispositionRejected,
    DispositionRequest,
    LeadStatus,
    add_months,
    plan,
)

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
CTX = CallContext("a1", "13800138001", "camp", ("broadband", "tv"), "broadband", "95511")
INBOUND = CallContext(
    "a1", "13800138001", "camp", ("broadband",), "broadband", "95511", "4008001234"
)


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (DispositionRequest("order"), "confirmed"),
        (DispositionRequest("refused"), "product"),
        (DispositionRequest("refused", product="car"), "product"),
        (DispositionRequest("callback"), "callback_at"),
        (DispositionRequest("callback", callback_at=NOW - timedelta(minutes=1)), "callback_at"),
        (
            DispositionRequest("callback", callback_at=datetime(2027, 3, 1, 10, 1, tzinfo=UTC)),
            "callback_at",
        ),
        (DispositionRequest("callback", callback_at=datetime(2026, 12, 1, 10)), "callback_at"),
        (DispositionRequest("maybe"), "kind"),
    ],
)
def test_rejected(req: DispositionRequest, field: str) -> None:
    out = plan(req, CTX, NOW)
    assert isinstance(out, DispositionRejected)
    assert out.field == field
    assert out.message


def test_order_needs_confirmation() -> None:
    out = plan(DispositionRequest("order", product="tv", confirmed=True), CTX, NOW)
    assert isinstance(out, DispositionPlan)
    assert (
        out.order and out.lead_status is LeadStatus.DONE and out.product == "tv" and out.effective
    )


def test_refused_writes_a_refusal() -> None:
    out = plan(DispositionRequest("refused", product="tv"), CTX, NOW)
    assert isinstance(out, DispositionPlan)
    assert out.refusal_product == "tv" and not out.add_to_dnc


def test_callback_within_three_months_uses_pool_caller_id() -> None:
    at = datetime(2027, 2, 28, 10, 0, tzinfo=UTC)  # Nov 30 + 3 months clamps to Feb 28
    out = plan(DispositionRequest("callback", callback_at=at), CTX, NOW)
    assert isinstance(out, DispositionPlan)
    assert out.lead_status is LeadStatus.CALLBACK and out.next_attempt_at == at
    assert out.callback_caller_id == "95511" and not out.callback_is_callback


def test_callback_after_their_call_presents_the_number_they_dialled() -> None:
    out = plan(DispositionRequest("callback", callback_at=NOW + timedelta(days=1)), INBOUND, NOW)
    assert isinstance(out, DispositionPlan)
    assert out.callback_caller_id == "4008001234"
    assert out.callback_is_callback and out.callback_dialled_number == "4008001234"


def test_do_not_call_blacklists_at_once() -> None:
    out = plan(DispositionRequest("do_not_call"), CTX, NOW)
    assert isinstance(out, DispositionPlan)
    assert out.add_to_dnc and out.lead_status is LeadStatus.DO_NOT_CALL and not out.effective


@pytest.mark.parametrize(
    ("kind", "status"),
    [("wrong_number", LeadStatus.WRONG_NUMBER), ("no_decision", LeadStatus.DONE)],
)
def test_closing_dispositions(kind: str, status: LeadStatus) -> None:
    out = plan(DispositionRequest(kind), CTX, NOW)
    assert isinstance(out, DispositionPlan)
    assert out.lead_status is status and out.kind is DispositionKind(kind)
    assert out.refusal_product is None and not out.add_to_dnc and not out.order


def test_add_months_clamps() -> None:
    assert add_months(datetime(2026, 11, 30), 3) == datetime(2027, 2, 28)
    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)
    assert add_months(datetime(2026, 12, 15), 1) == datetime(2027, 1, 15)
