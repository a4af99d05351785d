"""The call's story for evidence bundles: ``recordings.bundle.CallTimeline`` over dialer data.

``timeline(attempt_id)`` is rebuilt from the dialer's attempt log (one row per
attempt, with the times of its milestones) and the compliance ledger's contact
history (the reservation and its resolved outcome). ``decisions(attempt_id)``
is the compliance gate's decisions log for that attempt.

Both ask the ledger by attempt id (``history_for_attempt``, ``decisions_for_attempt``),
so an attempt the dialer never logged (a manual call reserved through the FastAGI
``dialer-check``) still has its reservation and its decisions in the bundle.
Numbers are masked in every line (a bundle is read by people).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from compliance.ledger import ContactLedger, DecisionRecord, reason_to_dict
from compliance.model import ContactKind
from compliance.numbers import mask
from dialer.attempts import AttemptLog, AttemptRecord, Stage


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _line(at: datetime, event: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    return {"at": at, "event": event, "detail": dict(detail)}


def attempt_lines(rec: AttemptRecord) -> list[dict[str, Any]]:
    """The milestones one attempt-log row records, as timeline lines (unsorted)."""
    lines = [
        _line(
            rec.created_at,
            "attempt_created",
            {
                "campaign": rec.campaign,
                "lead": rec.lead_id,
                "number": mask(rec.number),
                "product": rec.product,
                "try": rec.try_no,
                "channel": rec.channel_id,
            },
        )
    ]
    if rec.stage == Stage.REFUSED.value:
        lines.append(
            _line(rec.updated_at, "refused_by_gate", {"reasons": rec.reasons, "note": rec.note})
        )
        return lines
    if rec.connected_at is not None:
        lines.append(
            _line(
                rec.connected_at,
                "connected_to_agent",
                {"agent": rec.agent_id or "", "ring_seconds": rec.ring_seconds},
            )
        )
    if rec.ended_at is not None:
        lines.append(
            _line(
                rec.ended_at,
                "call_ended",
                {
                    "outcome": rec.outcome,
                    "answered": rec.answered,
                    "connected": rec.connected,
                    "abandoned": rec.abandoned,
                    "ring_seconds": rec.ring_seconds,
                    "talk_seconds": rec.talk_seconds,
                    "reasons": rec.reasons,
                },
            )
        )
    if rec.recording:
        lines.append(
            _line(
                rec.ended_at or rec.updated_at,
                "recording",
                {"name": rec.recording, "seconds": rec.recording_seconds},
            )
        )
    if rec.disposition:
        lines.append(
            _line(
                rec.updated_at,
                "disposition",
                {
                    "disposition": rec.disposition,
                    "product": rec.disposition_product,
                    "order_confirmed": rec.order_confirmed,
                },
            )
        )
    if rec.stage != Stage.DONE.value:
        lines.append(_line(rec.updated_at, "still_open", {"stage": rec.stage, "phase": rec.phase}))
    return lines


def decision_line(d: DecisionRecord) -> dict[str, Any]:
    return {
        "at": _iso(d.decided_at),
        "requested_at": _iso(d.at),
        "allowed": d.allowed,
        "reserved": d.reserved,
        "reasons": [reason_to_dict(r) for r in d.reasons],
        "retry_at": _iso(d.retry_at),
        "policy_version": d.policy_version,
        "campaign": d.campaign,
        "product": d.product,
        "attempt_id": d.attempt_id,
    }


class AttemptCallTimeline:
    """``CallTimeline`` over the attempt log and the contact ledger (read-only)."""

    def __init__(self, attempts: AttemptLog, ledger: ContactLedger) -> None:
        self.attempts = attempts
        self.ledger = ledger

    async def timeline(self, attempt_id: str) -> Sequence[Mapping[str, Any]]:
        rec = await self.attempts.get(attempt_id)
        lines = attempt_lines(rec) if rec is not None else []
        for event in await self.ledger.history_for_attempt(attempt_id):
            name = "ledger_attempt" if event.kind is ContactKind.ATTEMPT else "ledger_refusal"
            lines.append(
                _line(
                    event.at,
                    name,
                    {
                        "campaign": event.campaign,
                        "product": event.product,
                        "outcome": event.outcome.value,
                    },
                )
            )
        lines.sort(key=lambda line: line["at"])
        return tuple({**line, "at": _iso(line["at"])} for line in lines)

    async def decisions(self, attempt_id: str) -> Sequence[Mapping[str, Any]]:
        if not attempt_id:
            return ()
        return tuple(decision_line(d) for d in await self.ledger.decisions_for_attempt(attempt_id))
