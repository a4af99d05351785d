"""Adapters from the runner's ports to the concrete parts: ARI, compliance stores, recordings.

Each adapter is thin: it translates names and types, and turns broken I/O of
the compliance side (database or Redis gone) into ``GateUnavailable`` so the
runner stops dialling with a clear error instead of dialling unchecked.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import datetime, timedelta, tzinfo

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

from compliance.campaigns import Campaign
from compliance.gate import ComplianceGate
from compliance.leads import Lead, LeadStatus, LeadStore
from compliance.ledger import ContactLedger
from compliance.lists import ListReason, ListStore
from compliance.model import AttemptOutcome, Decision
from dialer.ari.client import AriClient
from dialer.ari.errors import AriConflict, AriError, AriNotFound
from dialer.legs import AgentLeg, Leg, admit
from dialer.ports import (
    AgentDirectory,
    CampaignPlan,
    DialLead,
    FinishedRecording,
    GateUnavailable,
)
from recordings.model import AttemptMeta
from recordings.service import RecordingsService

logger = logging.getLogger(__name__)

# Errors that mean "the compliance store is not reachable" (not a business answer).
IO_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    DBAPIError,
    OSError,
    ConnectionError,
)


class AriCallControl:
    """``CallControl`` over the typed ARI client."""

    def __init__(
        self,
        client: AriClient,
        *,
        directory: AgentDirectory,
        customer_endpoint: str,
    ) -> None:
        self.client = client
        self.directory = directory
        self.customer_endpoint = customer_endpoint

    async def originate(
        self,
        *,
        leg: Leg,
        channel_id: str,
        endpoint: str,
        caller_id: str,
        ring_timeout: int,
        app_args: Sequence[str],
        variables: dict[str, str],
    ) -> None:
        # The one place calls are made: no gate decision, no customer call; no directory
        # entry, no agent call (dialer.legs). Raises OriginateRefused, sends nothing.
        admit(
            leg,
            channel_id=channel_id,
            endpoint=endpoint,
            caller_id=caller_id,
            customer_endpoint=self.customer_endpoint,
            directory_endpoint=(
                await self.directory.endpoint_of(leg.agent_id)
                if isinstance(leg, AgentLeg)
                else None
            ),
        )
        # Always into the app, AMD or not: Asterisk subscribes the app to both Local
        # halves when it creates them, so no event is lost (an originate into the
        # dialplan followed by a subscription raced and lost Dial events: README fact
        # 17). AMD runs after the answer (``continue_in_dialplan``).
        await self.client.originate(
            endpoint,
            channel_id=channel_id,
            app_args=app_args,
            caller_id=caller_id,
            timeout=ring_timeout,
            variables=variables,
        )

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int
    ) -> None:
        """Hand a channel in the app to the dialplan (AMD, the abandon message). Leaving
        Stasis drops the app's own interest in the channel; the explicit subscription
        keeps its ``ChannelDestroyed`` coming whatever path the channel came by."""
        await self.client.subscribe(f"channel:{channel_id}")
        await self.client.continue_in_dialplan(
            channel_id, context=context, extension=extension, priority=priority
        )

    async def hangup(self, channel_id: str) -> None:
        try:
            await self.client.hangup(channel_id)
        except AriNotFound:
            pass  # already gone: what we wanted

    async def ensure_bridge(self, bridge_id: str) -> None:
        try:
            await self.client.create_bridge(bridge_id, type="mixing")
        except AriConflict:
            pass  # it exists (a previous login of the same agent)

    async def destroy_bridge(self, bridge_id: str) -> None:
        try:
            await self.client.destroy_bridge(bridge_id)
        except AriNotFound:
            pass

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.client.add_channel(bridge_id, channel_id)

    async def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None:
        await self.client.record_bridge(bridge_id, name, format=fmt, if_exists="fail")

    async def stop_recording(self, name: str) -> None:
        try:
            await self.client.stop_recording(name)
        except AriNotFound:
            pass  # already finished

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        await self.client.play(channel_id, media, playback_id=playback_id)

    async def channel_ids(self) -> set[str]:
        return {c.id for c in await self.client.list_channels()}

    async def bridge_ids(self) -> set[str]:
        return {b.id for b in await self.client.list_bridges()}

    async def channel_exists(self, channel_id: str) -> bool:
        try:
            await self.client.get_channel(channel_id)
        except AriNotFound:
            return False
        return True


class GateAdapter:
    """``Gate`` over ``compliance.gate.ComplianceGate``."""

    def __init__(self, gate: ComplianceGate) -> None:
        self.gate = gate

    async def check_and_reserve(
        self,
        number: str,
        campaign: str,
        product: str,
        at: datetime,
        *,
        attempt_id: str,
        caller_id: str | None = None,
        is_callback: bool = False,
        dialled_number: str | None = None,
        segment: str = "default",
        assigned_at: datetime | None = None,
    ) -> Decision:
        # The gate looks the lead up itself (segment, assignment time).
        try:
            return await self.gate.check_and_reserve(
                number,
                campaign,
                product,
                at,
                caller_id=caller_id,
                is_callback=is_callback,
                dialled_number=dialled_number,
                attempt_id=attempt_id,
                # The runner already holds the lead: passing its segment and assignment
                # time spares the gate a lead lookup on every call.
                segment=segment,
                assigned_at=assigned_at,
            )
        except IO_ERRORS as exc:
            raise GateUnavailable(f"{type(exc).__name__}: {exc}") from exc


class LedgerAdapter:
    def __init__(self, ledger: ContactLedger) -> None:
        self.ledger = ledger

    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        try:
            await self.ledger.resolve(attempt_id, outcome)
        except IO_ERRORS as exc:
            raise GateUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def record_refusal(
        self, number: str, campaign: str, product: str, at: datetime, attempt_id: str = ""
    ) -> None:
        await self.ledger.record_refusal(number, campaign, product, at, attempt_id)


class DncAdapter:
    def __init__(self, lists: ListStore, *, actor: str = "dialer") -> None:
        self.lists = lists
        self.actor = actor

    async def add_do_not_call(self, number: str, reason: str, at: datetime) -> None:
        await self.lists.add(
            number,
            ListReason.OPT_OUT,
            source="dialer disposition",
            actor=self.actor,
            note=reason,
            at=at,
        )


def dial_lead(lead: Lead) -> DialLead:
    return DialLead(
        lead_id=str(lead.id),
        campaign=lead.campaign,
        number=lead.number_key,
        product=lead.product,
        segment=lead.segment,
        assigned_at=lead.assigned_at,
        dialled_number=lead.dialled_number,
        attempts=lead.attempts,
        # A.5 / art. 35: every call to a lead that came from the customer's own call is a
        # return or care call and presents the number they dialled; a lead status of
        # callback_due without a dialled number follows our own call and does not
        # (see dialer.runner.presented_caller_id).
        is_callback=lead.dialled_number is not None,
    )


class LeadAdapter:
    """``LeadSource`` over ``compliance.leads.LeadStore``."""

    def __init__(self, store: LeadStore, *, claimer: str = "dialer") -> None:
        self.store = store
        self.claimer = claimer

    async def claim(self, campaign: str, now: datetime, limit: int) -> list[DialLead]:
        try:
            leads = await self.store.due_leads(campaign, now, limit, claimer=self.claimer)
        except IO_ERRORS as exc:
            raise GateUnavailable(f"lead store: {type(exc).__name__}: {exc}") from exc
        return [dial_lead(lead) for lead in leads]

    async def claim_lead(self, lead_id: str, now: datetime) -> DialLead | None:
        if not lead_id.isdigit():
            return None
        try:
            lead = await self.store.claim_lead(int(lead_id), now, claimer=self.claimer)
        except IO_ERRORS as exc:
            raise GateUnavailable(f"lead store: {type(exc).__name__}: {exc}") from exc
        return None if lead is None else dial_lead(lead)

    async def retry_at(
        self,
        lead: DialLead,
        at: datetime | None,
        reasons: Sequence[str],
        *,
        counted: bool,
        now: datetime,
    ) -> None:
        await self.store.update_lead(
            int(lead.lead_id),
            status=LeadStatus.RETRY,
            next_attempt_at=at or now,
            reasons=list(reasons),
            count_attempt=counted,
            now=now,
        )

    async def callback_at(self, lead: DialLead, at: datetime, *, now: datetime) -> None:
        await self.store.update_lead(
            int(lead.lead_id),
            status=LeadStatus.CALLBACK_DUE,
            next_attempt_at=at,
            reasons=["callback"],
            count_attempt=True,
            now=now,
        )

    async def finish(
        self, lead: DialLead, reasons: Sequence[str], *, counted: bool, now: datetime
    ) -> None:
        await self.store.update_lead(
            int(lead.lead_id),
            status=LeadStatus.DONE,
            next_attempt_at=None,
            reasons=list(reasons),
            count_attempt=counted,
            now=now,
        )

    async def release_claims(self, campaign: str, now: datetime) -> int:
        # Only this process's own claims (config ``dialer.claimer``): several dialer
        # processes on one campaign each need their own claimer, and a restart of one
        # must not hand back leads another is dialling right now.
        return await self.store.release_stale(campaign, timedelta(0), now=now, claimer=self.claimer)

    async def refuse(self, lead: DialLead, reasons: Sequence[str], *, now: datetime) -> None:
        await self.store.update_lead(
            int(lead.lead_id),
            status=LeadStatus.REFUSED,
            next_attempt_at=None,
            reasons=list(reasons),
            now=now,
        )


def campaign_plan(campaign: Campaign, tz: tzinfo | None = None) -> CampaignPlan:
    """The runner's view of a campaign; ``tz`` (the policy's) enables the campaign's hours."""
    spec = campaign.spec
    hours = spec.hours

    def allow(at: datetime) -> bool:
        assert tz is not None
        return hours.allows(at.astimezone(tz))

    return CampaignPlan(
        name=spec.name,
        products=spec.products,
        caller_id=spec.caller_id,
        ring_timeout=spec.ring_timeout,
        retry=dict(spec.retry),
        pacing_method=spec.pacing_method,
        pacing_params=dict(spec.pacing_params),
        hours_allow=allow if tz is not None else None,
    )


class AriRecordingSource:
    """``recordings.store.RecordingSource`` over ARI (``GET /recordings/stored/{name}/file``).

    Streams: the file goes from the socket to the store's temp file chunk by chunk
    (hashed on the way), so a long recording never sits whole in memory.
    """

    def __init__(self, client: AriClient, *, chunk_size: int = 65536) -> None:
        self.client = client
        self.chunk_size = chunk_size

    async def fetch(self, name: str) -> AsyncGenerator[bytes, None]:
        stream = self.client.stream_stored_recording_file(name, chunk_size=self.chunk_size)
        try:
            # A 404 is raised before the first chunk, so nothing partial was yielded.
            async for chunk in stream:
                yield chunk
        except AriNotFound as exc:
            raise FileNotFoundError(f"Asterisk has no stored recording {name!r}") from exc
        finally:
            await stream.aclose()


class _HashingSource:
    """A ``RecordingSource`` that hashes the bytes as they pass (what Asterisk really sent)."""

    def __init__(self, source: AriRecordingSource) -> None:
        self.source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    async def fetch(self, name: str) -> AsyncIterator[bytes]:
        stream = self.source.fetch(name)
        try:
            async for chunk in stream:
                self.sha256.update(chunk)
                self.size += len(chunk)
                yield chunk
        finally:
            await stream.aclose()


class RecordingIndexSink:
    """``RecordingSink`` over the recordings service: fetch the file from ARI and index it.

    With ``delete_from_spool`` (the default), the file is then deleted from
    Asterisk's spool (``DELETE /recordings/stored/{name}``), but only once the
    index holds it with the SHA-256 of the very bytes streamed: personal data
    then lives only in the store, under its retention and purge. A failed
    delete is logged and the file stays on Asterisk (nothing is lost).
    """

    def __init__(
        self,
        service: RecordingsService,
        source: AriRecordingSource,
        *,
        delete_from_spool: bool = True,
    ) -> None:
        self.service = service
        self.source = source
        self.delete_from_spool = delete_from_spool

    async def recording_finished(self, rec: FinishedRecording) -> None:
        meta = AttemptMeta(
            number=rec.number,
            started_at=rec.started_at,
            attempt_id=rec.attempt_id,
            campaign=rec.campaign,
            agent=rec.agent_id or "",
            duration_s=rec.duration,
            format=rec.fmt,
        )
        hashing = _HashingSource(self.source)
        indexed = await self.service.ingest_from_source(rec.name, meta, hashing)
        if not self.delete_from_spool:
            return
        streamed = hashing.sha256.hexdigest()
        if indexed.sha256 != streamed:
            logger.error(
                "recording %s: indexed SHA-256 %s differs from the %d bytes streamed "
                "(SHA-256 %s); kept on Asterisk",
                rec.name,
                indexed.sha256,
                hashing.size,
                streamed,
            )
            return
        try:
            await self.source.client.delete_stored_recording(rec.name)
        except AriNotFound:
            # Already gone (deleted by hand, or a retried delivery): nothing to keep.
            logger.info("recording %s: already gone from the Asterisk spool", rec.name)
        except AriError as exc:
            logger.warning(
                "recording %s: indexed, but DELETE from the Asterisk spool failed (%s); "
                "it stays there until deleted by hand",
                rec.name,
                exc,
            )
        else:
            logger.info(
                "recording %s: indexed (SHA-256 %s), deleted from spool", rec.name, streamed
            )
