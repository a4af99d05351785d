"""The recordings HTTP API: an aiohttp sub-application for ``/api/recordings``.

``make_recordings_app(service, identity)`` returns a ``web.Application`` that ``dialer serve``
mounts with ``root.add_subapp("/api/recordings", app)``. Every request needs
``Authorization: Bearer <token>`` (tokens from ``dialer user token``). Every
search, view, play and export needs a ``reason`` and is written to the audit
log; every refusal (400/401/403/404/409/413/416) is written there too, as a denial.
Phone numbers in responses are always masked; only the compliance role's evidence
export carries them in full.

Routes (relative to the mount point; the action ``identity.access.decide`` is asked in
brackets; users and tokens are the ``identity`` store's):
  GET  /search?number&from&to&agent&campaign&complaint&limit&cursor&reason   [search]
  GET  /files/{name}?reason            metadata              [play, or own recording]
  GET  /files/{name}/audio?reason      audio, Range -> 206/416 [play, or own recording]
  POST /ingest?name&number&started_at&attempt&campaign&agent&duration&format&origin
                                       body = audio (desk-phone hook)        [ingest]
  POST /complaints  GET /complaints?status  GET /complaints/report?from&to
  GET  /complaints/{id}  POST /complaints/{id}/judgement  POST /complaints/{id}/close
                                       [complaint_write / complaint_read]
  GET  /complaints/{id}/export?reason  evidence zip                           [export]
  POST /users  POST /users/{name}/tokens  POST /tokens/{id}/revoke      [manage_users]
  GET  /audit?limit  GET /audit/verify                                    [audit_read]
  GET  /store/verify  POST /store/purge {"dry_run": bool}                   [maintain]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from aiohttp import web

from identity.access import Action, decide
from identity.model import Principal, Role
from identity.store import IdentityError, IdentityStore
from recordings.anchor import anchor_periodically, sink_of
from recordings.model import (
    AttemptMeta,
    ComplaintChannel,
    ComplaintStatus,
    Judgement,
    Origin,
    SearchQuery,
)
from recordings.naming import BadName, check_format, check_ident, check_name, media_type
from recordings.pii import mask, mask_text
from recordings.service import (
    BadInput,
    NotFound,
    RecordingsError,
    RecordingsService,
    complaint_public,
    recording_public,
    temp_bundle_path,
)

logger = logging.getLogger(__name__)

SERVICE_KEY: web.AppKey[RecordingsService] = web.AppKey("recordings_service", RecordingsService)
IDENTITY_KEY: web.AppKey[IdentityStore] = web.AppKey("recordings_identity", IdentityStore)
LIMITS_KEY: web.AppKey[tuple[int, int]] = web.AppKey("recordings_limits", tuple)
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("recordings_principal", Principal)
SIZE: web.RequestKey[int] = web.RequestKey("recordings_size", int)
MAX_REASON = 500
SEARCH_PARAMS = frozenset(
    {"number", "from", "to", "agent", "campaign", "complaint", "limit", "cursor", "reason"}
)
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestTooLarge(RecordingsError):
    status = 413


class Unauthorized(RecordingsError):
    status = 401


class Forbidden(RecordingsError):
    status = 403


def _service(request: web.Request) -> RecordingsService:
    return request.config_dict[SERVICE_KEY]


def _principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, run the handler, and turn every refusal into a JSON error and a
    denial entry in the audit log."""
    service = _service(request)
    actor, role = "anonymous", "-"
    try:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        who = await request.config_dict[IDENTITY_KEY].authenticate(token.strip())
        if who is None:
            actor = "unknown-token"
            raise Unauthorized("invalid or revoked token")
        actor, role = who.name, who.role.value
        request[PRINCIPAL] = who
        return await handler(request)
    except (RecordingsError, IdentityError, BadName) as exc:
        status = exc.status if isinstance(exc, RecordingsError | IdentityError) else 400
        message = str(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, message = exc.status, exc.reason
    message = mask_text(message)
    await service.log_denial(
        actor,
        role,
        f"{request.method} {_route_name(request)}",
        mask_text(request.path)[:200],
        reason=request.query.get("reason", "")[:MAX_REASON],
        detail={"status": status, "error": message[:300]},
    )
    headers = {"WWW-Authenticate": 'Bearer realm="recordings"'} if status == 401 else None
    if status == 416 and SIZE in request:
        headers = {"Content-Range": f"bytes */{request[SIZE]}"}
    return _error(status, message, headers)


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "?"


def require(request: web.Request, action: Action, owner: str | None = None) -> Principal:
    """The caller, if ``identity.access`` allows it ``action``; else ``Forbidden``."""
    who = _principal(request)
    decision = decide(who, action, owner)
    if not decision.allowed:
        raise Forbidden(decision.reason)
    return who


def reason_of(request: web.Request) -> str:
    reason = request.query.get("reason", "").strip()
    if not reason:
        raise BadInput("a reason for this access is required (?reason=...)")
    if len(reason) > MAX_REASON:
        raise BadInput(f"reason is too long (at most {MAX_REASON} characters)")
    return reason


def parse_time(value: str, field: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadInput(f"{field}: {value[:40]!r} is not an ISO 8601 time") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_int(value: str, field: str, *, low: int = 1, high: int = 2**62) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadInput(f"{field}: {value[:40]!r} is not a whole number in {low}..{high}")
    return int(value)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single ``Range: bytes=`` request, None to send it all.

    A malformed or multi-range header is ignored (RFC 9110 allows it); a range that
    starts past the end is unsatisfiable and raises ``RangeNotSatisfiable``.
    """
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable("an empty suffix range")
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or (last and end < start):
        raise RangeNotSatisfiable(f"range {header[:40]} is outside 0..{size - 1}")
    return start, min(end, size - 1)


class RangeNotSatisfiable(RecordingsError):
    status = 416


async def read_json(request: web.Request) -> dict[str, Any]:
    limit = request.config_dict[LIMITS_KEY][1]
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"request body of {request.content_length} bytes; at most {limit}")
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 14):
        body.extend(chunk)
        if len(body) > limit:
            raise RequestTooLarge(f"request body over {limit} bytes")
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInput("body must be a JSON object")
    return data


def _str_field(data: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise BadInput(f"field {key!r} must be a string")
    if required and not value.strip():
        raise BadInput(f"field {key!r} is required")
    return value


# --- recordings ------------------------------------------------------------------------------


def search_query(request: web.Request) -> tuple[SearchQuery, dict[str, str]]:
    """Validate every search parameter (unknown ones too) into a ``SearchQuery``."""
    q = request.query
    unknown = sorted(set(q) - SEARCH_PARAMS)
    if unknown:
        raise BadInput(f"unknown search parameter(s): {', '.join(u[:30] for u in unknown)}")
    service = _service(request)
    shown: dict[str, str] = {}
    number_hmac = None
    if "number" in q:
        number_hmac = service.number_digest(q["number"])
        shown["number"] = mask(q["number"])
    since = parse_time(q["from"], "from") if "from" in q else None
    until = parse_time(q["to"], "to") if "to" in q else None
    agent = check_ident(q["agent"], "agent") if "agent" in q else None
    campaign = check_ident(q["campaign"], "campaign") if "campaign" in q else None
    complaint = parse_int(q["complaint"], "complaint") if "complaint" in q else None
    limit = parse_int(q["limit"], "limit", high=500) if "limit" in q else 100
    before = None
    if "cursor" in q:
        at, _, rid = q["cursor"].rpartition(",")
        before = (parse_time(at, "cursor"), parse_int(rid, "cursor"))
    for key in ("from", "to", "agent", "campaign", "complaint", "limit"):
        if key in q:
            shown[key] = q[key]
    query = SearchQuery(number_hmac, since, until, agent, campaign, complaint, limit, before)
    return query, shown


async def search(request: web.Request) -> web.Response:
    who = require(request, Action.RECORDINGS_SEARCH)
    query, shown = search_query(request)
    reason = reason_of(request)
    page = await _service(request).search(who, query, reason=reason, filters=shown)
    cursor = None
    if page.next_cursor is not None:
        cursor = f"{page.next_cursor[0].isoformat()},{page.next_cursor[1]}"
    return web.json_response(
        {"items": [recording_public(r) for r in page.items], "next_cursor": cursor}
    )


async def _open(request: web.Request) -> tuple[Principal, Any, str]:
    who = require(request, Action.RECORDINGS_PLAY)
    name = check_name(request.match_info["name"])
    reason = reason_of(request)
    rec = await _service(request).get(name)
    if not decide(who, Action.RECORDINGS_PLAY, rec.agent).allowed:
        raise Forbidden(f"recording {name} belongs to another agent")
    return who, rec, reason


async def view(request: web.Request) -> web.Response:
    who, rec, reason = await _open(request)
    await _service(request).log_access(who, "view", rec.name, reason=reason)
    return web.json_response(recording_public(rec))


async def play(request: web.Request) -> web.StreamResponse:
    who, rec, reason = await _open(request)
    service = _service(request)
    request[SIZE] = rec.size
    if not await asyncio.to_thread(service.store.absolute(rec.path).is_file):
        raise NotFound(
            f"the file of recording {rec.name} is missing (see: dialer recordings verify)"
        )
    span = parse_range(request.headers.get("Range", ""), rec.size) if rec.size else None
    first, last = span if span is not None else (0, rec.size - 1)
    await service.log_access(
        who,
        "play",
        rec.name,
        reason=reason,
        detail={"range": None if span is None else [first, last], "sha256": rec.sha256},
    )
    response = web.StreamResponse(status=206 if span is not None else 200)
    response.content_type = media_type(rec.format)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = f'"{rec.sha256}"'
    response.headers["Cache-Control"] = "no-store"
    response.content_length = max(0, last - first + 1)
    if span is not None:
        response.headers["Content-Range"] = f"bytes {first}-{last}/{rec.size}"
    await response.prepare(request)
    if rec.size:
        chunks = service.store.iter_range(rec.path, first, last)
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await response.write(chunk)
    await response.write_eof()
    return response


async def ingest(request: web.Request) -> web.Response:
    """Desk-phone hook: ``POST /ingest?name=&number=&started_at=...`` with the audio as body."""
    who = require(request, Action.RECORDINGS_INGEST)
    q = request.query
    limit = request.config_dict[LIMITS_KEY][0]
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"upload of {request.content_length} bytes; at most {limit}")
    try:
        origin = Origin(q.get("origin", Origin.DESK.value))
    except ValueError as exc:
        raise BadInput("origin must be dialer or desk") from exc
    duration = q.get("duration")
    try:
        duration_s = None if duration is None else float(duration)
    except ValueError as exc:
        raise BadInput(f"duration {str(duration)[:20]!r} is not a number of seconds") from exc
    meta = AttemptMeta(
        number=q.get("number", ""),
        started_at=parse_time(q.get("started_at", ""), "started_at"),
        attempt_id=q.get("attempt", ""),
        campaign=q.get("campaign", ""),
        agent=q.get("agent", ""),
        duration_s=duration_s,
        format=check_format(q.get("format", "wav")),
        origin=origin,
    )

    async def body() -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            seen += len(chunk)
            if seen > limit:
                raise RequestTooLarge(f"upload over {limit} bytes")
            yield chunk

    rec = await _service(request).ingest_stream(
        check_name(q.get("name", "")), meta, body(), actor=who
    )
    return web.json_response(recording_public(rec), status=201)


# --- complaints ------------------------------------------------------------------------------


def _complaint_id(request: web.Request) -> int:
    return parse_int(request.match_info["id"], "complaint id")


async def complaint_register(request: web.Request) -> web.Response:
    who = require(request, Action.COMPLAINTS_WRITE)
    data = await read_json(request)
    try:
        channel = ComplaintChannel(_str_field(data, "channel", required=True))
    except ValueError as exc:
        raise BadInput("channel must be one of call, letter, visit") from exc
    received = _str_field(data, "received_at")
    complaint = await _service(request).register_complaint(
        who,
        _str_field(data, "number", required=True),
        channel,
        _str_field(data, "text", required=True),
        received_at=parse_time(received, "received_at") if received else None,
    )
    return web.json_response(complaint_public(complaint), status=201)


async def complaint_list(request: web.Request) -> web.Response:
    require(request, Action.COMPLAINTS_READ)
    raw = request.query.get("status")
    try:
        status = None if raw is None else ComplaintStatus(raw)
    except ValueError as exc:
        raise BadInput("status must be open or closed") from exc
    cases = await _service(request).list_complaints(status=status)
    return web.json_response({"items": [complaint_public(c) for c in cases]})


async def complaint_get(request: web.Request) -> web.Response:
    require(request, Action.COMPLAINTS_READ)
    return web.json_response(
        complaint_public(await _service(request).complaint(_complaint_id(request)))
    )


async def complaint_report(request: web.Request) -> web.Response:
    require(request, Action.COMPLAINTS_READ)
    q = request.query
    since = parse_time(q["from"], "from") if "from" in q else None
    until = parse_time(q["to"], "to") if "to" in q else None
    report = await _service(request).report(since=since, until=until)
    return web.json_response(
        {
            "from": None if since is None else since.isoformat(),
            "to": None if until is None else until.isoformat(),
            "total": report.total,
            "open": report.open,
            "closed": report.closed,
            "company_at_fault": report.at_fault,
            "company_not_at_fault": report.not_at_fault,
            "orders_cancelled": report.orders_cancelled,
            "refunds_total": str(report.refunds_total),
            "by_channel": dict(report.by_channel),
            "cases": [complaint_public(c) for c in report.cases],
        }
    )


async def complaint_judge(request: web.Request) -> web.Response:
    who = require(request, Action.COMPLAINTS_WRITE)
    data = await read_json(request)
    fault = data.get("company_at_fault")
    if not isinstance(fault, bool):
        raise BadInput("field 'company_at_fault' (true or false) is required")
    cancelled = data.get("order_cancelled", False)
    if not isinstance(cancelled, bool):
        raise BadInput("field 'order_cancelled' must be true or false")
    refund_raw = data.get("refund")
    try:
        refund = None if refund_raw in (None, "") else Decimal(str(refund_raw))
    except InvalidOperation as exc:
        raise BadInput("field 'refund' must be an amount such as 120.50") from exc
    if refund is not None and not refund.is_finite():
        raise BadInput("field 'refund' must be a finite amount")
    judgement = Judgement(
        company_at_fault=fault,
        note=_str_field(data, "note"),
        penalty_note=_str_field(data, "penalty_note"),
        order_cancelled=cancelled,
        refund=refund,
        reply=_str_field(data, "reply"),
    )
    case = await _service(request).judge(who, _complaint_id(request), judgement)
    return web.json_response(complaint_public(case))


async def complaint_close(request: web.Request) -> web.Response:
    who = require(request, Action.COMPLAINTS_WRITE)
    data = await read_json(request)
    case = await _service(request).close(
        who, _complaint_id(request), reply=_str_field(data, "reply")
    )
    return web.json_response(complaint_public(case))


async def complaint_export(request: web.Request) -> web.StreamResponse:
    who = require(request, Action.RECORDINGS_EXPORT)
    cid = _complaint_id(request)
    reason = reason_of(request)
    service = _service(request)
    await asyncio.to_thread(service.store.ensure)
    path = await asyncio.to_thread(temp_bundle_path, service.store.tmp)
    try:
        info = await service.export_bundle(who, cid, path, reason=reason)
        response = web.StreamResponse(status=200)
        response.content_type = "application/zip"
        response.content_length = info.size
        response.headers["Content-Disposition"] = f'attachment; filename="complaint-{cid}.zip"'
        response.headers["X-Bundle-SHA256"] = info.sha256
        response.headers["Cache-Control"] = "no-store"
        await response.prepare(request)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, 1 << 16):
                await response.write(chunk)
        finally:
            handle.close()
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(_unlink, path)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


# --- administration --------------------------------------------------------------------------


async def user_add(request: web.Request) -> web.Response:
    who = require(request, Action.USERS_MANAGE)
    data = await read_json(request)
    try:
        role = Role(_str_field(data, "role", required=True))
    except ValueError as exc:
        raise BadInput("role must be one of admin, compliance, supervisor, agent") from exc
    user = await request.config_dict[IDENTITY_KEY].add_user(
        who, _str_field(data, "name", required=True), role, agent_id=_str_field(data, "agent_id")
    )
    return web.json_response(
        {"id": user.id, "name": user.name, "role": user.role.value, "agent_id": user.agent_id},
        status=201,
    )


async def token_issue(request: web.Request) -> web.Response:
    who = require(request, Action.USERS_MANAGE)
    data = await read_json(request)
    name = request.match_info["name"]
    identity = request.config_dict[IDENTITY_KEY]
    tid, token = await identity.issue_token(who, name, label=_str_field(data, "label"))
    return web.json_response(
        {"id": tid, "token": token, "note": "shown once; store it now"}, status=201
    )


async def token_revoke(request: web.Request) -> web.Response:
    who = require(request, Action.USERS_MANAGE)
    identity = request.config_dict[IDENTITY_KEY]
    await identity.revoke_token(who, parse_int(request.match_info["id"], "token id"))
    return web.json_response({"revoked": True})


async def audit_show(request: web.Request) -> web.Response:
    from recordings import audit

    require(request, Action.AUDIT_READ)
    limit = parse_int(request.query.get("limit", "100"), "limit", high=1000)
    entries = await audit.tail(_service(request).engine, limit)
    return web.json_response(
        {
            "items": [
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "role": e.role,
                    "action": e.action,
                    "target": e.target,
                    "reason": e.reason,
                    "outcome": e.outcome.value,
                    "detail": json.loads(e.detail),
                    "hash": e.hash,
                }
                for e in entries
            ]
        }
    )


async def audit_verify(request: web.Request) -> web.Response:
    from recordings import audit

    require(request, Action.AUDIT_READ)
    problems = await audit.verify(_service(request).engine)
    return web.json_response(
        {
            "ok": not problems,
            "problems": [_problem(p) for p in problems],
        }
    )


def _problem(p: Any) -> dict[str, str]:
    return {"kind": p.kind, "where": p.where, "message": p.message}


async def store_verify(request: web.Request) -> web.Response:
    require(request, Action.STORE_MAINTAIN)
    checked, problems = await _service(request).verify_store()
    return web.json_response(
        {"checked": checked, "ok": not problems, "problems": [_problem(p) for p in problems]}
    )


async def store_purge(request: web.Request) -> web.Response:
    who = require(request, Action.STORE_MAINTAIN)
    data = await read_json(request)
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadInput("field 'dry_run' must be true or false")
    result = await _service(request).purge(who, dry_run=dry_run)
    return web.json_response(
        {
            "purged": list(result.purged),
            "due": result.due,
            "files_removed": result.files_removed,
            "held": result.held_skipped,
            "dry_run": dry_run,
        }
    )


async def not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(reason="no such resource")


async def _anchoring(app: web.Application) -> AsyncIterator[None]:
    """Signed audit anchors on a schedule (``DIALER_AUDIT_ANCHOR``) while the API serves."""
    service = app[SERVICE_KEY]
    task = None
    if service.config.anchor_target:
        sink = sink_of(service.config.anchor_target)
        task = asyncio.create_task(
            anchor_periodically(
                service.engine, service.signer, sink, float(service.config.anchor_every_s)
            ),
            name="audit-anchor",
        )
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_recordings_app(
    service: RecordingsService,
    identity: IdentityStore,
    *,
    max_upload_bytes: int | None = None,
    max_json_bytes: int | None = None,
) -> web.Application:
    """The sub-application to mount under ``/api/recordings`` (see the module docstring)."""
    app = web.Application(middlewares=[guard])
    app[SERVICE_KEY] = service
    app.cleanup_ctx.append(_anchoring)
    app[IDENTITY_KEY] = identity
    app[LIMITS_KEY] = (
        max_upload_bytes or service.config.max_upload_bytes,
        max_json_bytes or service.config.max_json_bytes,
    )
    r = app.router
    r.add_get("/search", search)
    r.add_post("/ingest", ingest)
    r.add_get("/files/{name}", view)
    r.add_get("/files/{name}/audio", play)
    r.add_post("/complaints", complaint_register)
    r.add_get("/complaints", complaint_list)
    r.add_get("/complaints/report", complaint_report)
    r.add_get("/complaints/{id}", complaint_get)
    r.add_post("/complaints/{id}/judgement", complaint_judge)
    r.add_post("/complaints/{id}/close", complaint_close)
    r.add_get("/complaints/{id}/export", complaint_export)
    r.add_post("/users", user_add)
    r.add_post("/users/{name}/tokens", token_issue)
    r.add_post("/tokens/{id}/revoke", token_revoke)
    r.add_get("/audit", audit_show)
    r.add_get("/audit/verify", audit_verify)
    r.add_get("/store/verify", store_verify)
    r.add_post("/store/purge", store_purge)
    # Anything else under the prefix is refused inside the sub-app, so it is audited too.
    r.add_route("*", "/{tail:.*}", not_found)
    return app


def make_standalone_app(service: RecordingsService, identity: IdentityStore) -> web.Application:
    """A root app with the recordings API mounted at ``/api/recordings`` (``recordings serve``)."""
    root = web.Application()
    root.add_subapp("/api/recordings", make_recordings_app(service, identity))
    return root
