"""Browser tests' harness: the whole ``dialer serve`` stack with simpbx, and headless Chromium.

``running_site`` starts what ``dialer serve`` runs (the runner, the ARI events,
the HTTP app with the JSON API and the pages) against the simulated Asterisk,
on 127.0.0.1 with a port of its own (port 0), with a seeded campaign and users
who sign in with passwords. ``chromium_page`` drives Debian's Chromium through
Playwright (``executable_path`` = ``shutil.which("chromium")``, ``--no-sandbox``:
the tests run as root; Playwright's own browser download cannot work here) at
1366x768. ``Shots`` saves a screenshot per step under ``var/screenshots/<test>/``
to look at; ``assert_accessible`` runs axe-core and fails on serious or
critical violations.

Without Chromium the tests skip with the reason, except in CI
(``DIALER_REQUIRE_SERVICES=1``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from compliance.policy import Policy, parse_policy
from dialer.app import DialerStack, http_app, running
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from identity.model import Principal, Role
from identity.passwords import PasswordHasher
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec
from simulation.simpbx.server import SimPbx, running_simpbx
from web.agent.script import SAMPLE_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("DIALER_SCREENSHOTS", ROOT / "var" / "screenshots"))
REQUIRE = os.environ.get("DIALER_REQUIRE_SERVICES") == "1"
ADMIN = Principal("cli:browser-tests", Role.ADMIN)
VIEWPORT = {"width": 1366, "height": 768}


def chromium_path() -> str:
    """Debian's Chromium, or skip (fail in CI) naming the package to install."""
    path = shutil.which("chromium")
    if path is None:
        message = "Chromium not installed: apt-get install -y chromium fonts-wqy-microhei"
        if REQUIRE:
            pytest.fail(f"{message} [DIALER_REQUIRE_SERVICES=1 turns this skip into a failure]")
        pytest.skip(message)
    return path


class TravelClock(ShiftedClock):
    """The shifted clock a test can move forward (a callback due in a month)."""

    def jump(self, delta: timedelta) -> None:
        self._start += delta


@dataclass(frozen=True)
class Person:
    name: str
    password: str
    role: Role
    agent_id: str = ""


AGENT = Person("李娜", "agent-pass-2026", Role.AGENT, "701")
AGENT2 = Person("zhang", "agent2-pass-2026", Role.AGENT, "702")
SUPERVISOR = Person("王主管", "super-pass-2026", Role.SUPERVISOR)
PEOPLE = (AGENT, AGENT2, SUPERVISOR)


@dataclass
class Site:
    base_url: str
    stack: DialerStack
    sim: SimPbx
    clock: TravelClock
    policy: Policy
    numbers: list[str] = field(default_factory=list)

    @property
    def campaign(self) -> str:
        return "春季宽带"


def sample_campaign(name: str = "春季宽带") -> dict[str, Any]:
    """A Chinese-named campaign with the six-part sample script (``web/agent``)."""
    spec = campaign_spec(name, pacing="progressive", products=("宽带",))
    spec["script"] = SAMPLE_SCRIPT.read_text(encoding="utf-8")
    return spec


def site_config() -> RunnerConfig:
    return RunnerConfig(
        customer_endpoint="Local/{number}@sim-customers",
        wrapup_limit=120.0,
        drain_timeout=5.0,
        tick=0.02,
        max_claim=5,
    )


@contextlib.asynccontextmanager
async def running_site(
    tmp_path: Path,
    numbers: Sequence[str],
    *,
    people: Sequence[Person] = PEOPLE,
    spec: dict[str, Any] | None = None,
    time_scale: float = 1.0,
) -> AsyncIterator[Site]:
    """``dialer serve`` on port 0 with simpbx, a running campaign and users who sign in."""
    policy = parse_policy(DEMO_POLICY, "demo policy")
    clock = TravelClock(business_hours_start(policy))
    async with contextlib.AsyncExitStack() as stack_ctx:
        sim = await stack_ctx.enter_async_context(
            running_simpbx(time_scale=time_scale, recordings_dir=tmp_path / "rec")
        )
        stack = await stack_ctx.enter_async_context(
            demo_stack(tmp_path, sim.base_url, policy=policy, clock=clock, config=site_config())
        )
        stack.identity.hasher = PasswordHasher(log_n=12)  # sign-ins stay quick in tests
        for p in people:
            await stack.identity.add_user(
                ADMIN, p.name, p.role, agent_id=p.agent_id, password=p.password
            )
        campaign = spec or sample_campaign()
        await seed_campaign(
            stack,
            list(numbers),
            spec=campaign,
            blacklist=[],
            at=clock.wall() - timedelta(hours=1),
        )
        runner = web.AppRunner(http_app(stack))
        await runner.setup()
        stack_ctx.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        await stack_ctx.enter_async_context(running(stack))
        yield Site(f"http://127.0.0.1:{port}", stack, sim, clock, policy, list(numbers))


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, base_url: str) -> Page:
    context = await browser.new_context(
        base_url=base_url, viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


class Shots:
    """Numbered screenshots of one test's steps, to look at after the run."""

    def __init__(self, test_name: str) -> None:
        self.dir = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", test_name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0

    async def take(self, page: Page, step: str) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


async def assert_accessible(page: Page, *, context: str = "") -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    assert not bad, f"accessibility violations {context}: " + " | ".join(bad)


async def sign_in(page: Page, person: Person) -> None:
    await page.goto("/")
    await page.get_by_label("用户名").fill(person.name)
    await page.get_by_label("密码").fill(person.password)
    await page.get_by_role("button", name="登录").click()
