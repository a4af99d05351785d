"""Use cases of the recordings area: ingest, search, play, complaints, export, retention.

``RecordingsService`` composes the SQL index, the file store, the audit log, the
number keys, a ``Blacklist`` (the do-not-call list) and a ``CallTimeline``. Every
state change and its audit entry commit in one transaction. Authorization is the
caller's job (``identity.access``; the HTTP layer and the CLI ask it); the
service records *who* did it and *why* in the audit log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.clock import utcnow
from identity.access import Action, decide
from identity.model import Principal, Role
from recordings import audit, index
from recordings.bundle import (
    AlteredRecording,
    BundleAudio,
    BundleInfo,
    CallTimeline,
    check_bundle,
    write_bundle,
)
from recordings.config import RecordingsConfig
from recordings.model import (
    AttemptMeta,
    Complaint,
    ComplaintChannel,
    ComplaintStatus,
    Judgement,
    Outcome,
    Problem,
    Recording,
    SearchPage,
    SearchQuery,
)
from recordings.naming import check_format, check_ident, check_name
from recordings.pii import InvalidNumber, NumberKeys, mask, mask_text
from recordings.schema import (
    complaint_recordings,
    complaints,
    open_engine,
    reader,
    recordings,
)
from recordings.store import FileStore, RecordingSource, StoredFile

logger = logging.getLogger(__name__)

MAX_TEXT = 10_000


class RecordingsError(Exception):
    """Root of the recordings errors; ``status`` is the HTTP status it maps to."""

    status: ClassVar[int] = 500


class BadInput(RecordingsError):
    status = 400


class NotFound(RecordingsError):
    status = 404


class Conflict(RecordingsError):
    status = 409


class EvidenceDamaged(RecordingsError):
    """A stored recording is missing or no longer matches its checksum."""

    status = 500


class NotConfigured(RecordingsError):
    """A use case needs a collaborator this deployment did not wire (a setup error)."""

    status = 503


class Blacklist(Protocol):
    """The do-not-call list: a complaint puts the number on it at once (rules A.1)."""

    async def add(
        self, number: str, *, reason: str, source: str, actor: str, note: str = ""
    ) -> None: ...


DIALER = Principal("dialer", Role.ADMIN)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    purged: tuple[str, ...]  # a dry run: the first ``batch`` names of those due
    files_removed: int
    held_skipped: int
    due: int = 0  # a dry run: how many are due in all


@dataclass(frozen=True, slots=True)
class ComplaintReport:
    since: datetime | None
    until: datetime | None
    total: int
    open: int
    closed: int
    at_fault: int
    not_at_fault: int
    orders_cancelled: int
    refunds_total: Decimal
    by_channel: Mapping[str, int]
    cases: tuple[Complaint, ...] = field(default=())


_now = utcnow  # the one wall clock (compliance.clock)


def _text(value: str, what: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    if required and not value.strip():
        raise BadInput(f"{what} is required")
    if "\x00" in value:
        raise BadInput(f"{what} contains a NUL character")
    if len(value) > limit:
        raise BadInput(f"{what} is too long ({len(value)} characters, at most {limit})")
    return value


class RecordingsService:
    def __init__(
        self,
        engine: AsyncEngine,
        store: FileStore,
        keys: NumberKeys,
        *,
        config: RecordingsConfig,
        blacklist: Blacklist | None = None,
        timeline: CallTimeline | None = None,
    ) -> None:
        self.engine = engine
        self.reader = reader(engine)
        self.store = store
        self.keys = keys
        self.config = config
        self.blacklist = blacklist
        self.timeline = timeline
        self.signer = keys.signer(config.signing_key_file)

    @classmethod
    async def open(
        cls,
        config: RecordingsConfig,
        keys: NumberKeys,
        *,
        blacklist: Blacklist | None = None,
        timeline: CallTimeline | None = None,
    ) -> RecordingsService:
        """Connect (creating missing tables) and build the service; ``aclose`` releases it."""
        engine = await open_engine(config.db_url, schema=config.db_schema)
        store = FileStore(config.store_dir)
        await asyncio.to_thread(store.ensure)
        return cls(engine, store, keys, config=config, blacklist=blacklist, timeline=timeline)

    async def aclose(self) -> None:
        await self.engine.dispose()

    # -- numbers ------------------------------------------------------------------------------

    def number_digest(self, number: str) -> str:
        try:
            return self.keys.digest(number)
        except InvalidNumber as exc:
            raise BadInput(f"number {mask(number)!r} is not a valid phone number") from exc

    def masked(self, number: str) -> str:
        """The display form of the canonical number (``138****5678``), never the plaintext."""
        try:
            return mask(self.keys.canonical(number))
        except InvalidNumber:
            return mask(number)

    # -- ingest -------------------------------------------------------------------------------

    async def ingest(
        self, name: str, meta: AttemptMeta, source_path: str | Path, *, actor: Principal = DIALER
    ) -> Recording:
        """Index a finished recording from a file (ARI RecordingFinished on a shared spool,
        or a desk-phone hook). Idempotent for the same name and content."""
        prepared = self._prepare(name, meta)
        path = Path(source_path)
        if not await asyncio.to_thread(path.is_file):
            raise NotFound(f"recording file {path} does not exist")
        stored = await asyncio.to_thread(self.store.put_file, path, meta.format)
        return await self._index(prepared, meta, stored, actor, path)

    async def ingest_finished(
        self,
        recording: Mapping[str, Any],
        meta: AttemptMeta,
        *,
        spool_dir: str | Path | None = None,
        source: RecordingSource | None = None,
    ) -> Recording:
        """Index the recording of an ARI ``RecordingFinished`` event.

        ``recording`` is the event's ``recording`` object verbatim (``name``, ``format``,
        ``state``, ``duration`` in whole seconds). The file is read from ``spool_dir``
        (``<spool>/<name>.<format>``, the Asterisk recording spool when shared) or fetched
        from ``source`` (the ARI client: ``GET /recordings/stored/{name}/file``).
        """
        name = str(recording.get("name", ""))
        fmt = str(recording.get("format", meta.format))
        if recording.get("state", "done") != "done":
            raise BadInput(f"recording {name} is in state {recording.get('state')!r}, not done")
        duration = recording.get("duration")
        meta = replace(
            meta,
            format=fmt,
            duration_s=float(duration) if isinstance(duration, int | float) else meta.duration_s,
        )
        if spool_dir is not None:
            return await self.ingest(name, meta, Path(spool_dir) / f"{check_name(name)}.{fmt}")
        if source is not None:
            return await self.ingest_from_source(name, meta, source)
        raise ValueError("ingest_finished needs spool_dir or source")

    async def ingest_stream(
        self,
        name: str,
        meta: AttemptMeta,
        chunks: AsyncIterator[bytes],
        *,
        actor: Principal = DIALER,
    ) -> Recording:
        """Index a recording whose bytes arrive as a stream (HTTP upload, ARI fetch)."""
        prepared = self._prepare(name, meta)
        stored = await self.store.put_stream(chunks, meta.format)
        return await self._index(prepared, meta, stored, actor, None)

    async def ingest_from_source(
        self, name: str, meta: AttemptMeta, source: RecordingSource, *, actor: Principal = DIALER
    ) -> Recording:
        """Fetch a stored recording from Asterisk (spool not shared) and index it."""
        return await self.ingest_stream(name, meta, source.fetch(check_name(name)), actor=actor)

    def _prepare(self, name: str, meta: AttemptMeta) -> dict[str, Any]:
        try:
            check_name(name)
            check_format(meta.format)
            for value, what in (
                (meta.attempt_id, "attempt"),
                (meta.campaign, "campaign"),
                (meta.agent, "agent"),
            ):
                if value:
                    check_ident(value, what)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
        if meta.started_at.tzinfo is None:
            raise BadInput("started_at must carry a time zone")
        if meta.duration_s is not None and not (0 <= meta.duration_s < 10**7):
            raise BadInput("duration must be a finite, non-negative number of seconds")
        digest = self.number_digest(meta.number)
        return {"name": name, "number_hmac": digest, "number_masked": self.masked(meta.number)}

    async def _index(
        self,
        prepared: dict[str, Any],
        meta: AttemptMeta,
        stored: StoredFile,
        actor: Principal,
        source: Path | None,
    ) -> Recording:
        name = prepared["name"]
        duration_ms = None
        if meta.format == "wav":
            # The file is the fact: ARI's RecordingFinished gives whole seconds, rounded
            # down, so up to 1 s short of what was recorded.
            duration_ms = await asyncio.to_thread(
                _wav_duration_ms, self.store.absolute(stored.path)
            )
        if duration_ms is None and meta.duration_s is not None:
            duration_ms = round(meta.duration_s * 1000)
        now = _now()
        values = {
            "name": name,
            "attempt_id": meta.attempt_id,
            "campaign": meta.campaign,
            "agent": meta.agent,
            "origin": meta.origin.value,
            "number_hmac": prepared["number_hmac"],
            "number_masked": prepared["number_masked"],
            "started_at": meta.started_at,
            "duration_ms": duration_ms,
            "format": meta.format,
            "size_bytes": stored.size,
            "sha256": stored.sha256,
            "path": stored.path,
            "retain_until": meta.started_at + timedelta(days=self.config.retention_days),
            "legal_hold": False,
            "ingested_at": now,
        }
        try:
            async with self.engine.begin() as conn:
                existing = await index.get_by_name(conn, name)
                if existing is not None:
                    if existing.sha256 == stored.sha256:
                        return existing
                    raise Conflict(
                        f"recording {name} is already indexed with other content "
                        f"(sha256 {existing.sha256[:12]}..., new {stored.sha256[:12]}...)"
                    )
                rid = await index.insert(conn, values)
                linked = await index.link_open_complaints(conn, rid, prepared["number_hmac"])
                await audit.append(
                    conn,
                    actor=actor.name,
                    role=actor.role.value,
                    action="ingest",
                    target=name,
                    reason="recording finished",
                    detail={
                        "sha256": stored.sha256,
                        "size": stored.size,
                        "origin": meta.origin.value,
                        "attempt": meta.attempt_id,
                        "source": "" if source is None else source.name,
                        "held_by_complaints": linked,
                    },
                )
                rec = await index.get_by_name(conn, name)
        except IntegrityError as exc:
            # A concurrent ingest of the same name won the insert.
            raise Conflict(f"recording {name} was indexed concurrently") from exc
        assert rec is not None
        logger.info(
            "recording %s indexed: %s bytes, number %s", name, stored.size, values["number_masked"]
        )
        return rec

    # -- search and access --------------------------------------------------------------------

    async def search(
        self, who: Principal, query: SearchQuery, *, reason: str, filters: Mapping[str, Any]
    ) -> SearchPage:
        """Search the index and log the access (filters as given, numbers masked)."""
        async with self.reader.connect() as conn:
            page = await index.search(conn, query)
        # The results leave only once the access is on record.
        await self.log_access(
            who,
            "search",
            "recordings",
            reason=reason,
            detail={"filters": dict(filters), "results": [r.name for r in page.items]},
        )
        return page

    async def get(self, name: str) -> Recording:
        async with self.reader.connect() as conn:
            rec = await index.get_by_name(conn, name)
        if rec is None:
            raise NotFound(f"no recording named {name}")
        return rec

    async def log_access(
        self,
        who: Principal,
        action: str,
        target: str,
        *,
        reason: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await audit.append_alone(
            self.engine,
            actor=who.name,
            role=who.role.value,
            action=action,
            target=target,
            reason=reason,
            detail=detail,
        )

    async def log_denial(
        self,
        who: str,
        role: str,
        action: str,
        target: str,
        *,
        reason: str,
        detail: Mapping[str, Any],
    ) -> None:
        await audit.append_alone(
            self.engine,
            actor=who,
            role=role,
            action=action,
            target=target,
            reason=reason,
            outcome=Outcome.DENIED,
            detail=detail,
        )

    # -- complaints ---------------------------------------------------------------------------

    async def register_complaint(
        self,
        who: Principal,
        number: str,
        channel: ComplaintChannel,
        text: str,
        *,
        received_at: datetime | None = None,
    ) -> Complaint:
        """Register a complaint: blacklist the number at once, link and hold its recordings."""
        digest = self.number_digest(number)
        _text(text, "complaint text", required=True)
        masked = self.masked(number)
        if self.blacklist is None:
            raise NotConfigured(
                "complaints are disabled: no blacklist is configured (a complaint must put "
                "the number on the do-not-call list at once)"
            )
        # The blacklist comes first: should anything below fail, the number is still protected.
        await self.blacklist.add(
            number,
            reason="complaint",
            source=f"complaint:{channel.value}",
            actor=who.name,
            note="registered with the recordings complaint desk",
        )
        now = _now()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                complaints.insert()
                .values(
                    number_hmac=digest,
                    number_masked=masked,
                    number_enc=self.keys.encrypt(self.keys.canonical(number)),
                    channel=channel.value,
                    text=text,
                    received_at=received_at or now,
                    registered_by=who.name,
                    status=ComplaintStatus.OPEN.value,
                )
                .returning(complaints.c.id)
            )
            cid = int(result.scalar_one())
            rec_ids = [
                int(r)
                for r in (
                    await conn.execute(
                        select(recordings.c.id).where(recordings.c.number_hmac == digest)
                    )
                ).scalars()
            ]
            for rid in rec_ids:
                await conn.execute(
                    complaint_recordings.insert().values(complaint_id=cid, recording_id=rid)
                )
            await index.refresh_holds(conn, rec_ids)
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="complaint.register",
                target=f"complaint:{cid}",
                reason=f"complaint by {channel.value}",
                detail={"number": masked, "recordings": len(rec_ids), "blacklisted": True},
            )
            complaint = await self._complaint(conn, cid)
        logger.info("complaint %s registered for %s: %s recordings held", cid, masked, len(rec_ids))
        return complaint

    async def judge(self, who: Principal, complaint_id: int, judgement: Judgement) -> Complaint:
        for value, what in (
            (judgement.note, "judgement note"),
            (judgement.penalty_note, "penalty note"),
            (judgement.reply, "reply"),
        ):
            _text(value, what)
        if judgement.refund is not None and judgement.refund < 0:
            raise BadInput("refund must not be negative")
        async with self.engine.begin() as conn:
            current = await self._complaint(conn, complaint_id)
            if current.status is ComplaintStatus.CLOSED:
                raise Conflict(f"complaint {complaint_id} is closed; its judgement is final")
            await conn.execute(
                update(complaints)
                .where(complaints.c.id == complaint_id)
                .values(
                    company_at_fault=judgement.company_at_fault,
                    judgement_note=judgement.note,
                    penalty_note=judgement.penalty_note,
                    order_cancelled=judgement.order_cancelled,
                    refund=judgement.refund,
                    reply=judgement.reply or current.reply,
                    judged_by=who.name,
                    judged_at=_now(),
                )
            )
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="complaint.judge",
                target=f"complaint:{complaint_id}",
                reason="judgement recorded",
                detail={
                    "company_at_fault": judgement.company_at_fault,
                    "order_cancelled": judgement.order_cancelled,
                    "refund": None if judgement.refund is None else str(judgement.refund),
                    "penalty": bool(judgement.penalty_note),
                },
            )
            return await self._complaint(conn, complaint_id)

    async def close(self, who: Principal, complaint_id: int, *, reply: str = "") -> Complaint:
        """Close a judged complaint with the reply given to the customer; release holds."""
        _text(reply, "reply")
        async with self.engine.begin() as conn:
            current = await self._complaint(conn, complaint_id)
            if current.status is ComplaintStatus.CLOSED:
                raise Conflict(f"complaint {complaint_id} is already closed")
            if current.judgement is None:
                raise Conflict(f"complaint {complaint_id} has no judgement yet; judge it first")
            final_reply = reply or current.reply
            if not final_reply.strip():
                raise BadInput("a reply to the customer is required to close a complaint")
            await conn.execute(
                update(complaints)
                .where(complaints.c.id == complaint_id)
                .values(
                    status=ComplaintStatus.CLOSED.value,
                    reply=final_reply,
                    closed_by=who.name,
                    closed_at=_now(),
                )
            )
            await index.refresh_holds(conn, current.recording_ids)
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="complaint.close",
                target=f"complaint:{complaint_id}",
                reason="reply sent to the customer",
                detail={"released": list(current.recording_ids)},
            )
            return await self._complaint(conn, complaint_id)

    async def complaint(self, complaint_id: int) -> Complaint:
        async with self.reader.connect() as conn:
            return await self._complaint(conn, complaint_id)

    async def complaint_in(self, conn: AsyncConnection, complaint_id: int) -> Complaint:
        """A complaint read inside the caller's transaction (casework's steps lock it)."""
        return await self._complaint(conn, complaint_id)

    async def list_complaints(
        self,
        *,
        status: ComplaintStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[Complaint]:
        conditions = []
        if status is not None:
            conditions.append(complaints.c.status == status.value)
        if since is not None:
            conditions.append(complaints.c.received_at >= since)
        if until is not None:
            conditions.append(complaints.c.received_at < until)
        async with self.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(complaints).where(*conditions).order_by(complaints.c.id).limit(limit)
                )
            ).all()
            links = await self._links(conn, [int(r.id) for r in rows])
        return [_row_complaint(r, links.get(int(r.id), ())) for r in rows]

    async def report(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> ComplaintReport:
        cases = await self.list_complaints(since=since, until=until, limit=100_000)
        by_channel: dict[str, int] = {}
        for c in cases:
            by_channel[c.channel.value] = by_channel.get(c.channel.value, 0) + 1
        judged = [c.judgement for c in cases if c.judgement is not None]
        return ComplaintReport(
            since=since,
            until=until,
            total=len(cases),
            open=sum(c.status is ComplaintStatus.OPEN for c in cases),
            closed=sum(c.status is ComplaintStatus.CLOSED for c in cases),
            at_fault=sum(j.company_at_fault for j in judged),
            not_at_fault=sum(not j.company_at_fault for j in judged),
            orders_cancelled=sum(j.order_cancelled for j in judged),
            refunds_total=sum((j.refund or Decimal(0) for j in judged), Decimal(0)),
            by_channel=by_channel,
            cases=tuple(cases),
        )

    async def _links(self, conn: AsyncConnection, ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        if not ids:
            return {}
        result = await conn.execute(
            select(complaint_recordings.c.complaint_id, complaint_recordings.c.recording_id)
            .where(complaint_recordings.c.complaint_id.in_(list(ids)))
            .order_by(complaint_recordings.c.recording_id)
        )
        links: dict[int, list[int]] = {}
        for cid, rid in result:
            links.setdefault(int(cid), []).append(int(rid))
        return {k: tuple(v) for k, v in links.items()}

    async def _complaint(self, conn: AsyncConnection, complaint_id: int) -> Complaint:
        row = (
            await conn.execute(select(complaints).where(complaints.c.id == complaint_id))
        ).first()
        if row is None:
            raise NotFound(f"no complaint {complaint_id}")
        links = await self._links(conn, [complaint_id])
        return _row_complaint(row, links.get(complaint_id, ()))

    # -- evidence export ----------------------------------------------------------------------

    async def export_bundle(
        self, who: Principal, complaint_id: int, out_path: Path, *, reason: str
    ) -> BundleInfo:
        """Write the evidence zip of a complaint; the access is logged with the zip's digest.

        Numbers are plaintext only for the compliance role (rules D); for anyone else
        they are masked, in the manifest, the complaint and the call data alike.
        """
        plaintext = decide(who, Action.RECORDINGS_EXPORT_PLAINTEXT).allowed
        async with self.reader.connect() as conn:
            case = await self._complaint(conn, complaint_id)
            enc = (
                await conn.execute(
                    select(complaints.c.number_enc).where(complaints.c.id == complaint_id)
                )
            ).scalar_one()
            recs = await index.get_by_ids(conn, case.recording_ids)
        number = self.keys.decrypt(enc) if plaintext else case.number_masked
        calls: dict[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]] = {}
        if self.timeline is not None:
            for attempt in sorted({r.attempt_id for r in recs if r.attempt_id}):
                tl = await self.timeline.timeline(attempt)
                dec = await self.timeline.decisions(attempt)
                calls[attempt] = (tl, dec) if plaintext else (_masked_data(tl), _masked_data(dec))
        complaint_doc = _complaint_doc(case, number=number, plaintext=plaintext)
        audio = [
            BundleAudio(
                arcname=f"recordings/{r.name}.{r.format}",
                source=self.store.absolute(r.path),
                sha256=r.sha256,
                meta=_recording_doc(r),
            )
            for r in recs
        ]
        header = {
            "complaint_id": complaint_id,
            "number": number,
            "generated_at": _now().isoformat(),
            "generated_by": who.name,
            "role": who.role.value,
            "reason": reason,
            "timeline_source": "configured" if self.timeline is not None else "none configured",
        }
        try:
            info = await asyncio.to_thread(
                write_bundle,
                out_path,
                header=header,
                complaint=complaint_doc,
                audio=audio,
                calls=calls,
                signer=self.signer,
            )
        except (FileNotFoundError, AlteredRecording) as exc:
            logger.error("evidence export of complaint %s refused: %s", complaint_id, exc)
            raise EvidenceDamaged(
                f"complaint {complaint_id}: evidence is damaged ({exc}); no bundle written. "
                "Run: dialer recordings verify"
            ) from exc
        await self.log_access(
            who,
            "export",
            f"complaint:{complaint_id}",
            reason=reason,
            detail={
                "bundle_sha256": info.sha256,
                "manifest_sha256": info.manifest_sha256,
                "recordings": [r.name for r in recs],
                "plaintext": plaintext,
            },
        )
        return info

    async def verify_bundle(self, path: Path) -> list[Problem]:
        """Check a bundle strictly (``recordings.bundle``) with this system's public key, and
        that the audit log recorded this very file (its SHA-256) when it was exported."""
        check = await asyncio.to_thread(check_bundle, path, self.signer.public)
        problems = list(check.problems)
        if check.complaint_id is None:
            return problems
        target = f"complaint:{check.complaint_id}"
        recorded = False
        async for entry in audit.entries_for(self.engine, action="export", target=target):
            if audit.entry_is_intact(entry) and check.sha256 in _exported_digests(entry.detail):
                recorded = True
                break
        if not recorded:
            problems.append(
                Problem(
                    "unrecorded",
                    path.name,
                    f"no export of {target} in the audit log has this bundle's SHA-256 "
                    f"({check.sha256[:16]}...): not a bundle this system handed out",
                )
            )
        return problems

    # -- retention and integrity --------------------------------------------------------------

    async def purge(
        self,
        who: Principal,
        *,
        now: datetime | None = None,
        dry_run: bool = False,
        batch: int = 500,
    ) -> PurgeResult:
        """Delete recordings past retention, never one linked to an open complaint; each
        purge is an audit entry committed with the index row's deletion, then the file goes."""
        when = now or _now()
        purged: list[str] = []
        removed = 0
        async with self.reader.connect() as conn:
            held = int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(recordings)
                        .where(recordings.c.retain_until <= when, recordings.c.legal_hold.is_(True))
                    )
                ).scalar_one()
            )
        if dry_run:
            async with self.reader.connect() as conn:
                first = await index.purge_candidates(conn, when, batch)
                total = await index.count_purgeable(conn, when)
            return PurgeResult(tuple(r.name for r in first), 0, held, total)
        while True:
            async with self.engine.begin() as conn:
                due = await index.purge_candidates(conn, when, batch)
                if not due:
                    break
                orphaned: list[Recording] = []
                for rec in due:
                    await conn.execute(recordings.delete().where(recordings.c.id == rec.id))
                    await audit.append(
                        conn,
                        actor=who.name,
                        role=who.role.value,
                        action="purge",
                        target=rec.name,
                        reason=f"retention period ended {rec.retain_until.date().isoformat()}",
                        detail={
                            "sha256": rec.sha256,
                            "size": rec.size,
                            "started_at": rec.started_at.isoformat(),
                            "number": rec.number_masked,
                        },
                    )
                    if await index.path_users(conn, rec.sha256, rec.path) == 0:
                        orphaned.append(rec)
            for rec in orphaned:
                if await asyncio.to_thread(self.store.remove, rec.path):
                    removed += 1
            purged.extend(r.name for r in due)
        logger.info("purge: %s recordings, %s files removed, %s held", len(purged), removed, held)
        return PurgeResult(tuple(purged), removed, held, len(purged))

    async def verify_store(self, *, batch: int = 1000) -> tuple[int, list[Problem]]:
        """Re-hash every indexed file; report missing and altered ones: (checked, problems)."""
        problems: list[Problem] = []
        checked = 0
        last = 0
        while True:
            async with self.reader.connect() as conn:
                rows = (
                    await conn.execute(
                        select(
                            recordings.c.id,
                            recordings.c.name,
                            recordings.c.path,
                            recordings.c.sha256,
                            recordings.c.size_bytes,
                        )
                        .where(recordings.c.id > last)
                        .order_by(recordings.c.id)
                        .limit(batch)
                    )
                ).all()
            if not rows:
                return checked, problems
            for row in rows:
                checked += 1
                found = await asyncio.to_thread(self.store.digest, row.path)
                if found is None:
                    problems.append(Problem("missing", row.name, f"file {row.path} is missing"))
                elif found[0] != row.sha256 or found[1] != int(row.size_bytes):
                    problems.append(
                        Problem(
                            "altered",
                            row.name,
                            f"file {row.path} has sha256 {found[0][:12]}... ({found[1]} bytes), "
                            f"indexed {row.sha256[:12]}... ({int(row.size_bytes)} bytes)",
                        )
                    )
            last = int(rows[-1].id)

def _exported_digests(detail: str) -> set[str]:
    try:
        data = json.loads(detail)
    except ValueError:
        return set()
    if not isinstance(data, dict):
        return set()
    return {str(data.get("bundle_sha256", ""))}



def _row_complaint(row: Any, links: tuple[int, ...]) -> Complaint:
    judged = row.company_at_fault is not None
    return Complaint(
        id=int(row.id),
        number_masked=row.number_masked,
        channel=ComplaintChannel(row.channel),
        text=row.text,
        received_at=row.received_at,
        registered_by=row.registered_by,
        status=ComplaintStatus(row.status),
        judgement=Judgement(
            company_at_fault=bool(row.company_at_fault),
            note=row.judgement_note,
            penalty_note=row.penalty_note,
            order_cancelled=bool(row.order_cancelled),
            refund=None if row.refund is None else Decimal(row.refund),
            reply=row.reply,
        )
        if judged
        else None,
        judged_by=row.judged_by,
        judged_at=row.judged_at,
        reply=row.reply,
        closed_by=row.closed_by,
        closed_at=row.closed_at,
        recording_ids=links,
    )


def complaint_public(c: Complaint) -> dict[str, Any]:
    """A complaint as people may read it: number masked, free text with numbers masked."""
    j = c.judgement
    return {
        "id": c.id,
        "number": c.number_masked,
        "channel": c.channel.value,
        "text": mask_text(c.text),
        "received_at": c.received_at.isoformat(),
        "registered_by": c.registered_by,
        "status": c.status.value,
        "judgement": None
        if j is None
        else {
            "company_at_fault": j.company_at_fault,
            "note": mask_text(j.note),
            "penalty_note": mask_text(j.penalty_note),
            "order_cancelled": j.order_cancelled,
            "refund": None if j.refund is None else str(j.refund),
        },
        "judged_by": c.judged_by,
        "judged_at": None if c.judged_at is None else c.judged_at.isoformat(),
        "reply": mask_text(c.reply),
        "closed_by": c.closed_by,
        "closed_at": None if c.closed_at is None else c.closed_at.isoformat(),
        "recordings": list(c.recording_ids),
    }


def _complaint_doc(c: Complaint, *, number: str, plaintext: bool) -> dict[str, Any]:
    doc = complaint_public(c)
    doc["number"] = number
    if plaintext:
        doc["text"] = c.text
        doc["reply"] = c.reply
        if c.judgement is not None:
            doc["judgement"]["note"] = c.judgement.note
            doc["judgement"]["penalty_note"] = c.judgement.penalty_note
    return doc


def recording_public(r: Recording) -> dict[str, Any]:
    return {
        "name": r.name,
        "attempt": r.attempt_id,
        "campaign": r.campaign,
        "agent": r.agent,
        "origin": r.origin.value,
        "number": r.number_masked,
        "started_at": r.started_at.isoformat(),
        "duration_ms": r.duration_ms,
        "format": r.format,
        "size": r.size,
        "sha256": r.sha256,
        "retain_until": r.retain_until.isoformat(),
        "legal_hold": r.legal_hold,
    }


def _recording_doc(r: Recording) -> dict[str, Any]:
    return recording_public(r)


def _masked_data(items: Sequence[Mapping[str, Any]]) -> list[Any]:
    return [_mask_value(dict(i)) for i in items]


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def _wav_duration_ms(path: Path) -> int | None:
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return round(w.getnframes() * 1000 / rate) if rate else None
    except (wave.Error, EOFError):
        # Not a well-formed WAV header: the duration stays unknown rather than invented.
        return None


def temp_bundle_path(directory: Path | None = None) -> Path:
    handle = tempfile.NamedTemporaryFile(
        prefix="evidence-", suffix=".zip", dir=directory, delete=False
    )
    handle.close()
    return Path(handle.name)
