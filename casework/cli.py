"""``dialer complaint <step>``, ``dialer quality ...`` and ``dialer audit view``.

The complaint steps follow appendix 3 (``classify``, ``evidence``, ``decide``,
``penalise``, ``remedy``, ``feedback``, ``reply``, ``finish``); ``show`` and
``cases`` read them back, overdue cases marked. The older one-shot ``register``,
``judge``, ``close``, ``list`` and ``report`` stay as they were. The scorecard and
the deadlines come from the policy file (``--policy`` or ``$DIALER_POLICY``).
A refused step or review prints what is wrong and exits 2. Numbers are masked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from casework import auditview
from casework.cases import Step
from casework.qa import Finding, QualityService, Refused, Review, review_public, score_public
from casework.quality import DisputeStatus, Resolution, check_month
from casework.service import CaseService, CaseView, StepRefused, case_public
from casework.settings import SettingsError, load_settings
from compliance.console import UserError
from identity.model import Principal, Role
from recordings.cli_support import actor as _actor
from recordings.cli_support import leaf as _leaf
from recordings.cli_support import open_service
from recordings.cli_support import parse_time as _time
from recordings.model import Outcome
from recordings.service import RecordingsService

EXIT_OK = 0


@dataclass
class Casework:
    recordings: RecordingsService
    cases: CaseService
    quality: QualityService


@asynccontextmanager
async def open_casework(args: argparse.Namespace) -> AsyncIterator[Casework]:
    from compliance.cli import policy_of

    try:
        settings = load_settings(args.policy or os.environ.get("DIALER_POLICY") or None)
    except SettingsError as exc:
        raise UserError(str(exc)) from exc
    async with open_service(args, blacklist=True) as service:
        tz = policy_of(args).tz
        cases = CaseService(service, settings, tz=tz)
        await cases.ensure()
        yield Casework(service, cases, QualityService(service, settings.scorecard, tz=tz))


def _print_case(view: CaseView | StepRefused) -> int:
    if isinstance(view, StepRefused):
        raise UserError(view.message())
    print(json.dumps(case_public(view), sort_keys=True, ensure_ascii=False))
    return EXIT_OK


def _print_review(result: Review | Refused) -> int:
    if isinstance(result, Refused):
        raise UserError(result.message)
    print(json.dumps(review_public(result), sort_keys=True, ensure_ascii=False))
    return EXIT_OK


# --- complaint steps -----------------------------------------------------------------------


async def _step(args: argparse.Namespace, step: Step, fields: dict[str, Any]) -> int:
    fields["note"] = getattr(args, "note", "") or ""
    async with open_casework(args) as cw:
        if step is Step.EVIDENCE:
            ids = [(await cw.recordings.get(name)).id for name in args.recording or ()]
            fields["recordings"] = ids
        view = await cw.cases.take_step(_actor(args, Role.COMPLIANCE), args.id, step, fields)
    return _print_case(view)


async def cmd_classify(args: argparse.Namespace) -> int:
    return await _step(
        args, Step.CLASSIFIED, {"category": args.category, "dispatched_to": args.dispatched_to}
    )


async def cmd_evidence(args: argparse.Namespace) -> int:
    return await _step(args, Step.EVIDENCE, {})


async def cmd_decide(args: argparse.Namespace) -> int:
    return await _step(
        args, Step.JUDGED, {"company_at_fault": args.at_fault, "standard": args.standard}
    )


def _penalty(text: str) -> dict[str, str]:
    """``KIND:TARGET[:ITEM][:POINTS]`` (``agent:a1:complaint``, ``partner:acme:3``)."""
    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 4:
        raise UserError(f"--penalty {text!r}: write KIND:TARGET[:ITEM][:POINTS]")
    out = {"target_kind": parts[0], "target": parts[1]}
    for extra in parts[2:]:
        key = "points" if extra.replace(".", "", 1).isdigit() else "item"
        out[key] = extra
    return out


async def cmd_penalise(args: argparse.Namespace) -> int:
    return await _step(args, Step.PENALISED, {"penalties": [_penalty(p) for p in args.penalty]})


async def cmd_remedy(args: argparse.Namespace) -> int:
    return await _step(
        args, Step.REMEDIED, {"order_cancelled": args.cancel_order, "refund": args.refund}
    )


async def cmd_feedback(args: argparse.Namespace) -> int:
    return await _step(args, Step.REPORTED, {"summary": args.summary})


async def cmd_reply(args: argparse.Namespace) -> int:
    return await _step(args, Step.REPLIED, {"channel": args.channel, "reply": args.text})


async def cmd_finish(args: argparse.Namespace) -> int:
    return await _step(args, Step.CLOSED, {})


async def cmd_show(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        view = await cw.cases.case(args.id)
    return _print_case(view)


async def cmd_cases(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        views = await cw.cases.list_cases(
            open_only=args.open, overdue_only=args.overdue, category=args.category
        )
    for v in views:
        due = "-" if v.due_at is None else f"{v.due_at:%Y-%m-%d %H:%M}"
        mark = "OVERDUE" if v.overdue else ""
        print(
            f"{v.complaint.id:6} {v.state.step.value:10} {v.complaint.number_masked:14} "
            f"{v.category or '-':16} due {due:16} {mark}"
        )
    print(f"{len(views)} case(s), {sum(v.overdue for v in views)} overdue", file=sys.stderr)
    return EXIT_OK


# --- quality -------------------------------------------------------------------------------


def _month(value: str) -> str:
    if (bad := check_month(value)) is not None:
        raise UserError(bad)
    return value


def _reviewer(args: argparse.Namespace) -> Principal:
    who = _actor(args, Role(args.role))
    return Principal(who.name, who.role, args.agent_id or "")


async def cmd_q_sample(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        drawn = await cw.quality.draw_samples(
            _reviewer(args), _month(args.month), per_agent=args.per_agent
        )
    if isinstance(drawn, Refused):
        raise UserError(drawn.message)
    for agent, ids in drawn.items():
        print(f"{agent:16} {len(ids)} call(s): {' '.join(map(str, ids))}")
    return EXIT_OK


async def cmd_q_flag(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        rec = await cw.quality.flag(_reviewer(args), args.recording, note=args.note)
    if isinstance(rec, Refused):
        raise UserError(rec.message)
    print(f"{rec.name} flagged for review (agent {rec.agent})")
    return EXIT_OK


async def cmd_q_queue(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        rows = await cw.quality.queue(_month(args.month), agent=args.agent)
    for r in rows:
        done = "reviewed" if r.reviewed else "to review"
        print(f"{r.agent:16} {r.recording:40} {r.started_at:%Y-%m-%d %H:%M} {r.source:8} {done}")
    return EXIT_OK


def _finding(text: str) -> Finding:
    item, _, count = text.partition(":")
    if count and not (count.isascii() and count.isdigit() and len(count) <= 3):
        raise UserError(f"--finding {text!r}: write ITEM or ITEM:COUNT")
    return Finding(item, int(count) if count else 1)


async def cmd_q_score(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        result = await cw.quality.score(
            _reviewer(args),
            args.recording,
            [_finding(f) for f in args.finding or ()],
            note=args.note,
            complaint_id=args.complaint,
        )
    return _print_review(result)


async def cmd_q_scores(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        scores = await cw.quality.month_scores(_month(args.month), agent=args.agent, team=args.team)
    if args.json:
        print(json.dumps([score_public(s) for s in scores], sort_keys=True))
        return EXIT_OK
    for s in scores:
        items = ", ".join(f"{t.code} x{t.findings} -{t.deduction}" for t in s.items)
        print(
            f"{s.agent:16} {s.score:>7} ({s.reviews} review(s); penalties -{s.penalties}) {items}"
        )
    return EXIT_OK


async def cmd_q_trend(args: argparse.Namespace) -> int:
    if not (args.agent or args.team):
        raise UserError("give --agent or --team")
    async with open_casework(args) as cw:
        if args.agent:
            agent_rows = await cw.quality.agent_trend(args.agent, _month(args.month), args.months)
            rows = [(m, None if s is None else s.score) for m, s in agent_rows]
        else:
            team_rows = await cw.quality.team_trend(args.team, _month(args.month), args.months)
            rows = [(m, v) for m, v, _ in team_rows]
    for month, value in rows:
        print(f"{month} {'-' if value is None else value}")
    return EXIT_OK


async def cmd_q_dispute(args: argparse.Namespace) -> int:
    who = _actor(args, Role.AGENT)
    if not args.agent_id:
        raise UserError("--agent-id is required: the agent whose call was scored")
    async with open_casework(args) as cw:
        result = await cw.quality.open_dispute(
            Principal(who.name, Role.AGENT, args.agent_id), args.review, args.text
        )
    return _print_review(result)


async def cmd_q_answer(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        result = await cw.quality.answer_dispute(
            _actor(args, Role.SUPERVISOR), args.review, args.text
        )
    return _print_review(result)


async def cmd_q_resolve(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        result = await cw.quality.resolve_dispute(
            _actor(args, Role.COMPLIANCE), args.review, Resolution(args.resolution), args.note
        )
    return _print_review(result)


async def cmd_q_disputes(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        rows = await cw.quality.disputes(status=DisputeStatus(args.status) if args.status else None)
    for d in rows:
        print(json.dumps(d, sort_keys=True, ensure_ascii=False))
    return EXIT_OK


async def cmd_q_scorecard(args: argparse.Namespace) -> int:
    async with open_casework(args) as cw:
        card = cw.quality.card
    print(f"base {card.base}, {card.sample_per_agent} sampled call(s) per agent and month")
    for item in card.items.values():
        extra = f", +{item.extra} each further" if item.extra else ""
        case = ", complaint case" if item.opens_case else ""
        print(f"{item.code:20} -{item.points}{extra}{case}  {item.section} {item.title}")
    for team, members in card.teams.items():
        print(f"team {team}: {', '.join(members)}")
    return EXIT_OK


# --- audit view ------------------------------------------------------------------------------


async def cmd_audit_view(args: argparse.Namespace) -> int:
    f = auditview.AuditFilter(
        actor=args.who,
        action=args.action,
        target=args.target,
        outcome=Outcome(args.outcome) if args.outcome else None,
        since=_time(args.since, "--from") if args.since else None,
        until=_time(args.until, "--to") if args.until else None,
        limit=args.limit,
    )
    async with open_casework(args) as cw:
        entries = await auditview.find(cw.recordings, f)
        status = await auditview.chain_status(cw.recordings)
    for e in entries:
        print(
            f"{e.seq:8} {e.at:%Y-%m-%d %H:%M:%S} {e.outcome.value:6} {e.actor:16} {e.role:10} "
            f"{e.action:20} {e.target} why={e.reason!r}"
        )
    state = "verified" if status.verified else f"{len(status.problems)} problem(s)"
    anchor = (
        "none"
        if status.last_anchor is None
        else f"seq {status.last_anchor.seq} at {status.last_anchor.at}"
    )
    print(
        f"chain: {state}, end seq {status.end_seq}; last anchor: {anchor} ({status.anchor_note})",
        file=sys.stderr,
    )
    for p in status.problems:
        print(f"  {p.kind} {p.where}: {p.message}", file=sys.stderr)
    return EXIT_OK


# --- parsers -------------------------------------------------------------------------------


def _id(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="complaint id")
    p.add_argument("--note", default="")


def register_complaint_steps(csub: Any) -> None:
    """The appendix-3 steps under ``dialer complaint`` (beside the older commands)."""
    p = _leaf(csub, "classify", cmd_classify, "step 2: classify and dispatch the complaint")
    _id(p)
    p.add_argument("--category", required=True, help="a category of the policy's list")
    p.add_argument("--dispatched-to", required=True, help="the desk handling it")
    p = _leaf(csub, "evidence", cmd_evidence, "step 3: the calls pulled and reviewed")
    _id(p)
    p.add_argument("--recording", action="append", help="a reviewed recording (repeat)")
    p = _leaf(csub, "decide", cmd_decide, "step 4: judge against the service standard")
    _id(p)
    fault = p.add_mutually_exclusive_group(required=True)
    fault.add_argument("--at-fault", dest="at_fault", action="store_true")
    fault.add_argument("--not-at-fault", dest="at_fault", action="store_false")
    p.add_argument("--standard", required=True, help="the standard applied (e.g. 四.1)")
    p = _leaf(csub, "penalise", cmd_penalise, "step 5: penalties on agents, units, partners")
    _id(p)
    p.add_argument(
        "--penalty",
        action="append",
        required=True,
        help="KIND:TARGET[:ITEM][:POINTS], KIND agent|unit|partner (repeat)",
    )
    p = _leaf(csub, "remedy", cmd_remedy, "step 6: order cancelled, refund")
    _id(p)
    p.add_argument("--cancel-order", action="store_true")
    p.add_argument("--refund", default=None, help="amount refunded")
    p = _leaf(csub, "feedback", cmd_feedback, "step 7: the result reported to the centre")
    _id(p)
    p.add_argument("--summary", required=True)
    p = _leaf(csub, "reply", cmd_reply, "step 8: the reply given to the customer")
    _id(p)
    p.add_argument("--channel", required=True, help="call, letter, visit or sms")
    p.add_argument("--text", required=True)
    p = _leaf(csub, "finish", cmd_finish, "step 9: close the case (releases legal holds)")
    _id(p)
    p = _leaf(csub, "show", cmd_show, "a case with its steps and deadline")
    p.add_argument("id", type=int)
    p = _leaf(csub, "cases", cmd_cases, "cases with their step and deadline, overdue marked")
    p.add_argument("--open", action="store_true")
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--category", default=None)


def register_audit_view(asub: Any) -> None:
    p = _leaf(asub, "view", cmd_audit_view, "who searched, played, exported what and why")
    p.add_argument("--who", default=None, help="the actor")
    p.add_argument("--action", default=None, help="an action, or a prefix ending in '.'")
    p.add_argument("--target", default=None, help="part of the target")
    p.add_argument("--outcome", choices=[o.value for o in Outcome], default=None)
    p.add_argument("--from", dest="since", default=None)
    p.add_argument("--to", dest="until", default=None)
    p.add_argument("--limit", type=int, default=100)


def _as(p: argparse.ArgumentParser, default: Role) -> None:
    p.add_argument(
        "--role",
        choices=[Role.SUPERVISOR.value, Role.COMPLIANCE.value],
        default=default.value,
        help="acting as",
    )
    p.add_argument("--agent-id", default="", help="your own agent id (you cannot score it)")


def register(subparsers: Any) -> None:
    q = subparsers.add_parser("quality", help="quality checks by listening (policy part 5)")
    qsub = q.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _leaf(qsub, "sample", cmd_q_sample, "draw calls per agent for a month (reproducible)")
    p.add_argument("month", help="YYYY-MM")
    p.add_argument("--per-agent", type=int, default=None)
    _as(p, Role.SUPERVISOR)
    p = _leaf(qsub, "flag", cmd_q_flag, "put a call on the review list")
    p.add_argument("recording")
    p.add_argument("--note", default="")
    _as(p, Role.SUPERVISOR)
    p = _leaf(qsub, "queue", cmd_q_queue, "the calls to review in a month")
    p.add_argument("month")
    p.add_argument("--agent", default=None)
    p = _leaf(qsub, "score", cmd_q_score, "score a call against the scorecard")
    p.add_argument("recording")
    p.add_argument("--finding", action="append", help="ITEM or ITEM:COUNT (repeat)")
    p.add_argument("--note", default="")
    p.add_argument("--complaint", type=int, default=None, help="the complaint case it belongs to")
    _as(p, Role.SUPERVISOR)
    p = _leaf(qsub, "scores", cmd_q_scores, "monthly scores per agent")
    p.add_argument("month")
    p.add_argument("--agent", default=None)
    p.add_argument("--team", default=None)
    p.add_argument("--json", action="store_true")
    p = _leaf(qsub, "trend", cmd_q_trend, "an agent's or a team's score over months")
    p.add_argument("--agent", default=None)
    p.add_argument("--team", default=None)
    p.add_argument("--month", required=True, help="the last month (YYYY-MM)")
    p.add_argument("--months", type=int, default=6)
    p = _leaf(qsub, "dispute", cmd_q_dispute, "an agent disputes a review of their call")
    p.add_argument("review", type=int)
    p.add_argument("--text", required=True)
    p.add_argument("--agent-id", default="")
    p = _leaf(qsub, "answer", cmd_q_answer, "a supervisor answers a dispute")
    p.add_argument("review", type=int)
    p.add_argument("--text", required=True)
    p = _leaf(qsub, "resolve", cmd_q_resolve, "compliance resolves an answered dispute")
    p.add_argument("review", type=int)
    p.add_argument("--resolution", choices=[r.value for r in Resolution], required=True)
    p.add_argument("--note", required=True)
    p = _leaf(qsub, "disputes", cmd_q_disputes, "disputes, by status")
    p.add_argument("--status", choices=[s.value for s in DisputeStatus], default=None)
    _leaf(qsub, "scorecard", cmd_q_scorecard, "the scorecard of the policy in force")
