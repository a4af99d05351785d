"""The composition root: the only module that knows the concrete classes behind the ports.

``open_stack`` wires ARI (client + events WebSocket), the compliance stores
(gate, ledger, leads, lists, campaigns), the attempt log, the recordings index
and the campaign runner. ``run_stack`` runs them with the right order of
start-up (recover a crashed run, start the dispatcher, then the WebSocket,
whose first reconcile hangs up what nobody owns) and shutdown (stop pacing,
drain calls, close the socket, close the stores). ``serve`` adds the HTTP API,
the FastAGI server and the recordings HTTP app for ``dialer serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from aiohttp import web

from agi_scripts.app import AgiService
from agi_scripts.app import AgiSettings as AgiAppSettings
from agi_scripts.server import AgiServerConfig
from compliance.campaigns import CampaignState
from compliance.gate import ComplianceStores, open_compliance
from compliance.policy import Policy, default_policy, load_policy
from dialer.adapters import (
    AriCallControl,
    AriRecordingSource,
    DncAdapter,
    GateAdapter,
    LeadAdapter,
    LedgerAdapter,
    RecordingIndexSink,
    campaign_plan,
)
from dialer.agent_directory import AgentDirectory
from dialer.ari.client import AriClient
from dialer.ari.errors import AriError, AriUnauthorized
from dialer.ari.ws import AriEvents
from dialer.attempts import AttemptLog
from dialer.config import Settings
from dialer.desk_records import DeskRecords
from dialer.http_api import RECORDINGS_PREFIX, make_api_app
from dialer.logmasking import MaskingAccessLogger
from dialer.metrics import (
    DialerMetrics,
    LiveSource,
    MeteredAttempts,
    MeteredControl,
    MeteredGate,
    live_lines,
    mount_metrics,
)
from dialer.monitor import AuditLogAuditor, FloorMonitor, RunnerLines, mount_monitor
from dialer.pbx_checks import PbxNeeds, check_pbx, report
from dialer.ports import CallControl, Clock, SystemClock
from dialer.runner import InboundPolicy, Runner, RunnerConfig
from dialer.timeline import AttemptCallTimeline
from identity.store import IdentityStore
from recordings.audit import AccessAudit
from recordings.blacklist import ListStoreBlacklist
from recordings.config import RecordingsConfig
from recordings.http import make_recordings_app
from recordings.pii import NumberKeyError, NumberKeys
from recordings.service import RecordingsService
from reports.store import ReportStore, keep_rollup
from web.app import install_web
from web.context import WebContext
from web.hub import Hub
from web.i18n import I18n

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The dialer cannot start (ARI unreachable or refusing us, bad store URL): exit 3."""


async def check_ari(client: AriClient) -> str:
    """Fail fast with a clear message when ARI is wrong; returns the Asterisk version."""
    try:
        info = await client.asterisk_info()
    except AriUnauthorized as exc:
        raise StartupError(
            f"ARI at {client.base_url} refused user {client.username!r}: check ari.username "
            "and ari.password (DIALER__ARI__PASSWORD)"
        ) from exc
    except AriError as exc:
        raise StartupError(f"cannot reach ARI at {client.base_url}: {exc}") from exc
    return info.version


def runner_config(settings: Settings) -> RunnerConfig:
    d = settings.dialer
    return RunnerConfig(
        customer_endpoint=d.customer_endpoint,
        app=settings.ari.app,
        connect_limit=d.connect_limit,
        wrapup_limit=d.wrapup_limit,
        abandon_media=d.abandon_media,
        abandon_context=d.abandon_context,
        amd=d.amd,
        amd_after_greeting_ms=d.amd_after_greeting_ms,
        inbound_policy=InboundPolicy(d.inbound_policy),
        claimer=d.claimer,
    )


@dataclass
class DialerStack:
    settings: Settings
    client: AriClient
    events: AriEvents
    stores: ComplianceStores
    attempts: AttemptLog
    runner: Runner
    policy: Policy
    identity: IdentityStore
    recordings: RecordingsService | None = None
    directory: AgentDirectory | None = None
    # Pause codes, pauses, questionnaire answers, personal callbacks (the agents' desk).
    desk: DeskRecords | None = None
    metrics: DialerMetrics = field(default_factory=DialerMetrics)
    monitor: FloorMonitor | None = None

    async def load_campaign(self, name: str) -> None:
        campaign = await self.stores.campaigns.get(name)
        self.runner.add_campaign(campaign_plan(campaign, self.policy.tz))
        if campaign.state is CampaignState.RUNNING:
            self.runner.start_dialling(name)

    async def load_all_campaigns(self) -> None:
        for campaign in await self.stores.campaigns.list_all():
            if campaign.state is not CampaignState.STOPPED:
                await self.load_campaign(campaign.name)

    async def close(self) -> None:
        await self.events.stop()
        await self.client.close()
        await self.stores.close()
        await self.identity.aclose()
        if self.recordings is not None:
            await self.recordings.aclose()


async def open_stack(
    settings: Settings,
    *,
    clock: Clock | None = None,
    config: RunnerConfig | None = None,
    policy: Policy | None = None,
    control: CallControl | None = None,
    with_recordings: bool = True,
) -> DialerStack:
    """Open every part; on any failure, close what was opened and raise ``StartupError``."""
    async with contextlib.AsyncExitStack() as opened:
        client = AriClient(
            settings.ari.url, settings.ari.username, settings.ari.password, app=settings.ari.app
        )
        opened.push_async_callback(client.close)
        version = await check_ari(client)
        logger.info("ARI at %s: Asterisk %s", settings.ari.url, version)
        errors = report(await check_pbx(client, PbxNeeds.of(config or runner_config(settings))))
        if errors:
            raise StartupError(
                "the PBX lacks what this configuration relies on: "
                + " | ".join(str(e) for e in errors)
            )
        pol = policy or (
            load_policy(settings.dialer.policy) if settings.dialer.policy else default_policy()
        )
        try:
            stores = await open_compliance(
                settings.database.url,
                pol,
                schema=settings.database.schema or None,
                redis_url=settings.redis.url or None,
                redis_prefix=settings.redis.prefix,
            )
        except (OSError, ValueError) as exc:
            raise StartupError(
                f"cannot open the database {settings.database.url!r}: {exc}"
            ) from exc
        opened.push_async_callback(stores.close)
        metrics = DialerMetrics()
        attempts = MeteredAttempts(stores.engine, metrics)
        await attempts.create_schema()
        desk = DeskRecords(stores.engine)
        await desk.create_schema((clock or SystemClock()).wall())
        sink = None
        service = None
        if with_recordings and settings.recordings.enabled:
            service = await _open_recordings(settings, stores, attempts, pol)
            if service is not None:
                opened.push_async_callback(service.aclose)
                sink = RecordingIndexSink(
                    service,
                    AriRecordingSource(client),
                    delete_from_spool=settings.recordings.delete_from_spool,
                )
        # Users, tokens and sessions for every API and page; changes and sign-ins go to the
        # access audit log once the recordings index has made its tables.
        identity = await IdentityStore.open(
            settings.database.url,
            schema=settings.database.schema or None,
            audit=AccessAudit() if service is not None else None,
            clock=clock,
        )
        opened.push_async_callback(identity.aclose)
        directory = AgentDirectory(stores.engine)
        run_config = config or runner_config(settings)
        runner = Runner(
            control=MeteredControl(
                control
                or AriCallControl(
                    client, directory=directory, customer_endpoint=run_config.customer_endpoint
                ),
                metrics,
            ),
            directory=directory,
            gate=MeteredGate(GateAdapter(stores.gate), metrics),
            ledger=LedgerAdapter(stores.ledger),
            leads=LeadAdapter(stores.leads, claimer=settings.dialer.claimer),
            dnc=DncAdapter(stores.lists),
            attempts=attempts,
            clock=clock or SystemClock(),
            recordings=sink,
            config=run_config,
        )
        events = AriEvents(client, apps=[settings.ari.app], reconcile=runner.reconcile)
        events.on_any(runner.handle_event)
        monitor = None
        if service is not None:
            # listen-in only where its every use can be audited (the recordings' audit log)
            monitor = FloorMonitor(
                client,
                runner.control,
                RunnerLines(runner),
                directory,
                AuditLogAuditor(service.engine),
                clock or SystemClock(),
                app=settings.ari.app,
            )
            events.on_any(monitor.handle_event)
        # Everything opened: from here on DialerStack.close() owns it.
        opened.pop_all()
    metrics.watch(LiveSource(lambda: live_lines(runner)))
    return DialerStack(
        settings,
        client,
        events,
        stores,
        attempts,
        runner,
        pol,
        identity,
        recordings=service,
        directory=directory,
        desk=desk,
        metrics=metrics,
        monitor=monitor,
    )


async def _open_recordings(
    settings: Settings, stores: ComplianceStores, attempts: AttemptLog, policy: Policy
) -> RecordingsService | None:
    """The recordings index, when its secret is configured (``DIALER_NUMBER_KEY``); numbers
    are keyed under the policy's numbering plan, as the gate and the lists key them."""
    try:
        keys = NumberKeys.from_env(plan=policy.numbers)
    except NumberKeyError as exc:
        logger.warning("recordings index disabled: %s", exc)
        return None
    config = replace(
        RecordingsConfig.from_env(db_url=settings.database.url, store_dir=settings.recordings.root),
        db_schema=settings.database.schema or None,
    )
    # A complaint registered on a recording blacklists the number at once (rule C); its
    # evidence bundle carries each call's timeline and the gate's decisions.
    return await RecordingsService.open(
        config,
        keys,
        blacklist=ListStoreBlacklist(stores.lists),
        timeline=AttemptCallTimeline(attempts, stores.ledger),
    )


@contextlib.asynccontextmanager
async def running(
    stack: DialerStack, *, burst: bool = False, recover: bool = True
) -> AsyncIterator[asyncio.Task[None]]:
    """Run the runner and the events socket; on exit: stop pacing, drain calls, close the socket."""
    if recover:
        await stack.runner.recover()
    task = asyncio.create_task(stack.runner.run(burst=burst), name="dialer-runner")
    try:
        stack.events.start()
        await stack.events.wait_connected(10.0)
        yield task
    finally:
        await stack.runner.stop()
        try:
            await task
        finally:
            await stack.events.stop()


def http_app(stack: DialerStack) -> web.Application:
    """What ``dialer serve`` listens with: the dialer API, and the recordings API under
    ``/api/recordings/`` when the recordings index is open.

    Both read ``Authorization: Bearer``. The dialer API takes the shared ``http.token``
    and the users' tokens (``dialer user token``, the ``identity`` store), each user
    acting with its role (``dialer.http_api``). aiohttp runs a parent app's middlewares for its
    sub-apps too: the dialer's guard leaves the recordings prefix to the recordings
    app's own guard.
    """
    app = make_api_app(stack, token=stack.settings.http.token, users=stack.identity)
    mount_metrics(app, stack.metrics)
    if stack.monitor is not None:
        mount_monitor(app, stack.monitor)
    if stack.recordings is not None:
        app.add_subapp(RECORDINGS_PREFIX, make_recordings_app(stack.recordings, stack.identity))
    if stack.settings.web.enabled:
        install_web(app, web_context(stack))
    return app


def web_context(stack: DialerStack) -> WebContext:
    """What the pages share: sign-in through the identity store, the live hub, the
    policy's time zone for every time shown."""
    return WebContext(
        sessions=stack.identity,
        hub=Hub(),
        i18n=I18n.load(stack.policy.tz),
        stack=stack,
        secure_cookies=stack.settings.web.secure_cookies,
    )


async def serve(settings: Settings) -> int:
    """``dialer serve``: ARI app + HTTP API + FastAGI + recordings, until SIGTERM/SIGINT."""
    stack = await open_stack(settings)
    error_counter = stack.metrics.log_handler()
    logging.getLogger().addHandler(error_counter)
    stop = asyncio.Event()
    rollup = ReportStore(stack.stores.engine, stack.policy.tz)
    rollup_task: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    agi: AgiService | None = None
    site_runner: web.AppRunner | None = None
    try:
        await stack.load_all_campaigns()
        app = http_app(stack)
        if not settings.http.token and not await stack.identity.has_users():
            logger.warning(
                "the dialer HTTP API on %s:%s is OPEN until a user exists: set http.token, "
                "or add users and give each a token (dialer user add / dialer user token)",
                settings.http.host,
                settings.http.port,
            )
        if settings.agi.enabled:
            agi = await _start_agi(settings, stack)
            stack.metrics.watch_agi(agi.server.route_stats)
        site_runner = web.AppRunner(app, access_log_class=MaskingAccessLogger)
        await site_runner.setup()
        site = web.TCPSite(site_runner, settings.http.host, settings.http.port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.http.host}:{settings.http.port}: {exc}"
            ) from exc
        logger.info(
            "dialer serving: HTTP %s:%d, ARI app %r",
            settings.http.host,
            settings.http.port,
            settings.ari.app,
        )
        await rollup.create_schema()
        rollup_task = asyncio.create_task(keep_rollup(rollup, stop), name="report-rollup")
        async with running(stack):
            await stop.wait()
            logger.info("dialer: stopping (no new calls; draining live calls)")
    finally:
        stop.set()
        if rollup_task is not None:
            await rollup_task
        logging.getLogger().removeHandler(error_counter)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if site_runner is not None:
            await site_runner.cleanup()
        if agi is not None:
            await agi.stop()
        await stack.close()
    return 0


async def _start_agi(settings: Settings, stack: DialerStack) -> AgiService:
    """The FastAGI server (dialplan checks), sharing the dialer's compliance gate."""
    agi_settings = AgiAppSettings(
        server=AgiServerConfig(host=settings.agi.host, port=settings.agi.port),
        db_url=settings.database.url,
        db_schema=settings.database.schema or None,
        redis_url=settings.redis.url or None,
        # Empty: DIALER_DESK_CONFIG, else the built-in desk-phone defaults.
        desk_config=settings.agi.desk_config or None,
    )
    try:
        return await AgiService.start(agi_settings, gate=stack.stores.gate, policy=stack.policy)
    except OSError as exc:
        raise StartupError(
            f"cannot start the FastAGI server on {settings.agi.host}:{settings.agi.port}: {exc}"
        ) from exc
