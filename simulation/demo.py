"""``dialer demo``: the whole dialer against the simulated Asterisk, in one command.

Nothing to set up: simpbx runs in-process (time scaled so that calls are
lively), the dialer uses an embedded SQLite database in a temporary directory
(no Redis), a sample campaign with a sample lead list (valid mobile numbers
whose last digit picks the callee's behaviour), N simulated agents. It prints a
live progress line, then the campaign funnel (appendix 4 figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web

from compliance.campaigns import CampaignState, parse_campaign_spec
from compliance.lists import ListReason
from compliance.numbers import mask
from compliance.policy import Policy, parse_policy
from dialer.agent_directory import AgentDirectory
from dialer.app import DialerStack, http_app, open_stack, running
from dialer.attempts import Funnel
from dialer.config import AriSettings, DatabaseSettings, RecordingsSettings, Settings
from dialer.config import DialerSection as DialerSettings
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from identity.model import Principal, Role
from simulation.agents import SimulatedAgents
from simulation.demo_data import DEMO_POLICY, campaign_spec, leads_csv, sample_numbers
from simulation.simpbx.server import running_simpbx
from web.agent.script import SAMPLE_SCRIPT

logger = logging.getLogger(__name__)

CAMPAIGN = "demo"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seconds: float = 60.0
    agents: int = 10
    leads: int = 500
    time_scale: float = 10.0
    pacing: str = "predictive"
    target_abandon: float = 0.03
    seed: int = 2026
    progress: bool = True
    blacklisted: int = 5
    verbose: bool = False
    amd: bool = True
    # Serve the pages on this port: a person signs in as the demo agent (DEMO_PERSON) and
    # takes the simulated calls in the browser beside the simulated agents.
    console_port: int | None = None


# The person who tries the agent console in the demo (agent 700: not a simulated agent).
DEMO_PERSON = ("demo", "demo-2026", "700")


def business_hours_start(policy: Policy, now: datetime | None = None) -> datetime:
    """The next Tuesday 10:00 in the policy's time zone: inside every default calling window."""
    tz = policy.tz
    local = (now or datetime.now(tz)).astimezone(tz)
    days = (1 - local.weekday()) % 7 or 7
    day = (local + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=tz)


@contextlib.asynccontextmanager
async def demo_stack(
    workdir: Path,
    pbx_url: str,
    *,
    policy: Policy,
    clock: ShiftedClock,
    config: RunnerConfig,
    db_url: str | None = None,
    db_schema: str = "",
    redis_url: str = "",
    redis_prefix: str = "dialer-demo:",
    with_recordings: bool = False,
) -> AsyncIterator[DialerStack]:
    settings = Settings(
        ari=AriSettings(url=pbx_url, username="dialer", password="dialer-secret", app="dialer"),
        database=DatabaseSettings(
            url=db_url or f"sqlite+aiosqlite:///{workdir / 'dialer.sqlite3'}", schema=db_schema
        ),
        dialer=DialerSettings(
            customer_endpoint="Local/{number}@sim-customers",
        ),
        recordings=RecordingsSettings(enabled=with_recordings, root=str(workdir / "evidence")),
    )
    if redis_url:
        from dataclasses import replace

        from dialer.config import RedisSettings

        settings = replace(settings, redis=RedisSettings(url=redis_url, prefix=redis_prefix))
    stack = await open_stack(
        settings, clock=clock, config=config, policy=policy, with_recordings=with_recordings
    )
    try:
        await register_sim_agents(stack)
        yield stack
    finally:
        await stack.close()


async def register_sim_agents(stack: DialerStack) -> None:
    """The demo site's administrator: simpbx's softphones 100-999 in the agent directory
    (the dialer calls an agent only at the directory's endpoint)."""
    directory = AgentDirectory(stack.stores.engine)
    await directory.add_many(
        [(str(n), f"Local/{n}@sim-agents") for n in range(100, 1000)],
        pbx="simpbx",
        added_by="demo",
    )


async def seed_campaign(
    stack: DialerStack,
    numbers: list[str],
    *,
    spec: dict[str, object],
    blacklist: list[str],
    at: datetime,
) -> None:
    await register_sim_agents(stack)
    parsed = parse_campaign_spec(spec)
    await stack.stores.campaigns.create(parsed)
    await stack.stores.leads.import_text(
        leads_csv(numbers, parsed.products[0]),
        "sample-leads.csv",
        parsed.name,
        tz=stack.policy.tz,
        now=at,
    )
    for n in blacklist:
        await stack.stores.lists.add(
            n, ListReason.COMPLAINT, source="demo", actor="demo", note="sample complaint", at=at
        )
    await stack.stores.campaigns.set_state(parsed.name, CampaignState.RUNNING)
    await stack.load_campaign(parsed.name)


def format_funnel(funnel: Funnel, *, seats: int, occupancy: float, seconds: float) -> str:
    per_seat = funnel.attempts / seats if seats else 0.0
    rows = [
        ("seats (agents)", f"{seats}"),
        ("run time (with the drain of live calls)", f"{seconds:.0f} s"),
        ("attempts", f"{funnel.attempts}"),
        ("refused by the compliance gate", f"{funnel.refused_by_gate}"),
        ("average attempts per seat", f"{per_seat:.1f}"),
        ("answered (a person)", f"{funnel.answered}"),
        ("answering machines", f"{funnel.machines}"),
        ("connects (customer + agent)", f"{funnel.connects}"),
        ("connect rate", f"{funnel.connect_rate:.1%}"),
        ("effective conversations", f"{funnel.effective}"),
        ("effective-conversation rate", f"{funnel.effective_rate:.1%}"),
        ("orders", f"{funnel.orders}"),
        ("success rate", f"{funnel.success_rate:.1%}"),
        ("abandoned", f"{funnel.abandoned}"),
        ("abandon rate (abandoned / answered)", f"{funnel.abandon_rate:.1%}"),
        ("agent occupancy (talk / logged-in)", f"{occupancy:.1%}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


async def run_demo(options: DemoOptions) -> int:
    quiet = () if options.verbose else ("dialer", "compliance", "aiohttp.access")
    levels = {name: logging.getLogger(name).level for name in quiet}
    # Per-call log lines would scroll the progress line away; -v brings them back.
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return await _run_demo(options)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def _run_demo(options: DemoOptions) -> int:
    policy = parse_policy(DEMO_POLICY, "demo policy")
    start = business_hours_start(policy)
    clock = ShiftedClock(start)
    numbers = sample_numbers(options.leads, seed=options.seed)
    blacklist = numbers[: options.blacklisted]
    config = RunnerConfig(
        wrapup_limit=10.0,
        drain_timeout=5.0,
        amd=options.amd,
    )
    with tempfile.TemporaryDirectory(prefix="dialer-demo-") as tmp:
        workdir = Path(tmp)
        async with running_simpbx(
            time_scale=options.time_scale, recordings_dir=workdir / "recordings"
        ) as pbx:
            async with demo_stack(
                workdir, pbx.base_url, policy=policy, clock=clock, config=config
            ) as stack:
                spec = campaign_spec(
                    CAMPAIGN, pacing=options.pacing, target_abandon=options.target_abandon
                )
                spec["script"] = SAMPLE_SCRIPT.read_text(encoding="utf-8")
                await seed_campaign(stack, numbers, spec=spec, blacklist=blacklist, at=clock.wall())
                agent_ids = [f"{101 + i}" for i in range(options.agents)]
                sim = SimulatedAgents(
                    stack.runner,
                    CAMPAIGN,
                    agent_ids,
                    seed=options.seed,
                    max_talk=12.0,
                    wrap_seconds=0.5,
                )
                print(
                    f"dialer demo: {options.leads} leads ({len(blacklist)} on the do-not-call "
                    f"list, e.g. {mask(blacklist[0])}), {options.agents} agents, "
                    f"{options.pacing} pacing, PBX time x{options.time_scale:g}, "
                    f"{options.seconds:g} s",
                    file=sys.stderr,
                )
                t0 = time.monotonic()
                async with running(stack) as runner_task, _console(stack, options):
                    await sim.login_all()
                    async with asyncio.TaskGroup() as tg:
                        agents_task = tg.create_task(sim.run())
                        deadline = t0 + options.seconds
                        while time.monotonic() < deadline and not runner_task.done():
                            await asyncio.sleep(0.5)
                            if options.progress:
                                await _progress(stack, t0)
                        stack.runner.pause_dialling(CAMPAIGN)
                        await stack.runner.stop()
                        await runner_task
                        sim.stop()
                        await agents_task
                if options.progress:
                    print(file=sys.stderr)
                elapsed = time.monotonic() - t0
                funnel = await stack.attempts.funnel(CAMPAIGN)
                run = stack.runner.campaigns[CAMPAIGN]
                occupancy = run.pool.occupancy(stack.runner.clock.now())
                print(f"\nCampaign {CAMPAIGN!r} funnel")
                print(
                    format_funnel(
                        funnel, seats=options.agents, occupancy=occupancy, seconds=elapsed
                    )
                )
                if stack.runner.halted:
                    print(f"\ndialling stopped: {stack.runner.halted}")
                    return 1
    return 0


@contextlib.asynccontextmanager
async def _console(stack: DialerStack, options: DemoOptions) -> AsyncIterator[None]:
    """The pages of ``dialer serve`` on ``options.console_port``, with a demo agent's login."""
    if options.console_port is None:
        yield
        return
    name, password, agent_id = DEMO_PERSON
    await stack.identity.add_user(
        Principal("demo", Role.ADMIN), name, Role.AGENT, agent_id=agent_id, password=password
    )
    site_runner = web.AppRunner(http_app(stack))
    await site_runner.setup()
    try:
        site = web.TCPSite(site_runner, "127.0.0.1", options.console_port)
        try:
            await site.start()
        except OSError as exc:
            raise ValueError(f"cannot listen on 127.0.0.1:{options.console_port}: {exc}") from exc
        port = site_runner.addresses[0][1]
        print(
            f"\nAgent console / 坐席工作台: http://127.0.0.1:{port}/  "
            f"user {name}  password {password}  (agent {agent_id}; log in to campaign "
            f"{CAMPAIGN!r}, then take the calls)\n",
            file=sys.stderr,
            flush=True,
        )
        yield
    finally:
        await site_runner.cleanup()


async def _progress(stack: DialerStack, t0: float) -> None:
    f = stack.runner.figures(CAMPAIGN)
    funnel = await stack.attempts.funnel(CAMPAIGN)
    line = (
        f"\r[{time.monotonic() - t0:5.1f}s] placed {f.calls_placed:4d}  "
        f"ringing {f.dials_in_flight:3d}  talking {f.agents_talking:3d}  "
        f"wrap-up {f.agents_wrapping:3d}  ready {f.agents_ready:3d}  "
        f"connects {funnel.connects:4d}  abandon {funnel.abandon_rate:5.1%}  "
        f"orders {funnel.orders:3d}"
    )
    print(line, end="", file=sys.stderr, flush=True)


__all__ = ["DemoOptions", "run_demo"]
