"""The supervisors' wallboard in headless Chromium against ``dialer serve`` with simpbx:
agents' tiles change state within a second, a campaign is paused and started from it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from harness import SUPERVISOR, Shots, assert_accessible, new_page, running_site, sign_in
from playwright.async_api import Browser, expect

from compliance.campaigns import CampaignState
from dialer.attempt_model import AttemptRecord
from dialer.monitor import AuditLogAuditor, FloorMonitor, RunnerLines
from recordings.audit import entries
from recordings.schema import open_engine as open_rec_engine
from simulation.demo_data import numbers_ending

TZ = ZoneInfo("Asia/Shanghai")


async def test_wallboard_follows_agents_and_controls_the_campaign(
    tmp_path: Path, browser: Browser, shots: Shots
) -> None:
    numbers = numbers_ending("2", 2, seed=6)  # people who stay on the line
    async with running_site(tmp_path, numbers) as site:
        page = await new_page(browser, site.base_url)
        await page.goto("/")
        await sign_in(page, SUPERVISOR)
        await page.goto("/floor/")
        await expect(page.get_by_role("heading", name="实时看板")).to_be_visible()
        camp = page.locator(f'.wb-camp[data-campaign="{site.campaign}"]')
        await expect(camp.locator(".why")).to_contain_text("无座席登录")
        await shots.take(page, "empty-floor")
        await assert_accessible(page, context="wallboard, nobody logged in")

        # An agent logs in: the tile appears and turns to talking, each within a second.
        await site.stack.runner.agent_login("701", site.campaign)
        tile = page.locator('.wb-agent[data-agent="701"]')
        await expect(tile).to_be_visible(timeout=1000)
        await expect(tile).to_have_attribute("data-state", "talking", timeout=5000)
        await shots.take(page, "agent-talking")
        await site.stack.runner.agent_hangup("701")
        await expect(tile).to_have_attribute("data-state", "wrapup", timeout=1000)
        await shots.take(page, "agent-wrapup")
        await assert_accessible(page, context="wallboard with an agent")

        # Pause the campaign from the board, then start it again.
        await camp.get_by_role("button", name="暂停").click()
        await expect(camp.locator(".why")).to_contain_text("已暂停")
        assert (await site.stack.stores.campaigns.get(site.campaign)).state is (
            CampaignState.PAUSED
        )
        await shots.take(page, "campaign-paused")
        await camp.get_by_role("button", name="开始").click()
        await expect(camp).to_have_attribute("data-dialling", "yes")
        assert (await site.stack.stores.campaigns.get(site.campaign)).state is (
            CampaignState.RUNNING
        )


async def test_report_for_a_date_range_chart_and_csv(
    tmp_path: Path, browser: Browser, shots: Shots
) -> None:
    async with running_site(tmp_path, []) as site:
        # 12 calls on 2 and 3 November (Shanghai), 5 connected, 2 orders, stored as the dialer does
        log = site.stack.attempts
        for n in range(12):
            at = datetime(2026, 11, 2 + n % 2, 2 + n, 0, tzinfo=UTC)
            answered = n % 2 == 0 and n < 10
            await log.insert(
                AttemptRecord(
                    attempt_id=f"r{n}", campaign=site.campaign, lead_id=str(n),
                    number=f"1380000{n:04d}", product="宽带", channel_id=f"dl-r{n}",
                    stage="done", phase="ended", created_at=at, updated_at=at,
                    outcome="answered" if answered else "busy", answered=answered,
                    connected=answered, agent_id="701" if answered else None,
                    disposition=("order" if n in (0, 4) else "refused") if answered else None,
                )
            )  # fmt: skip
        page = await new_page(browser, site.base_url)
        await page.goto("/")
        await sign_in(page, SUPERVISOR)
        await page.goto("/floor/")
        await page.get_by_role("link", name="报表").click()
        await page.get_by_label("起始日期").fill("2026-11-02")
        await page.get_by_label("结束日期").fill("2026-11-03")
        await page.get_by_role("button", name="生成报表").click()
        await expect(page.locator("#rp-trend svg")).to_be_visible()
        await expect(page.locator("#rp-funnel svg")).to_contain_text("订单量 orders")
        await expect(page.locator("#rp-table tbody tr")).to_have_count(2)
        await shots.take(page, "report")
        await assert_accessible(page, context="reports page")
        async with page.expect_download() as info:
            await page.locator("#rp-csv").click()
        download = await info.value
        path = tmp_path / "report.csv"
        await download.save_as(path)
        table = list(csv.DictReader(io.StringIO(path.read_text("utf-8").lstrip("\ufeff"))))
        stored = await log.for_campaign(site.campaign)
        by_day: dict[str, list[AttemptRecord]] = {}
        for r in stored:
            by_day.setdefault(r.created_at.astimezone(TZ).date().isoformat(), []).append(r)
        assert {r["日期 day"] for r in table} == set(by_day)
        for row in table:
            calls = by_day[row["日期 day"]]
            assert int(row["外呼量 outbound volume"]) == len(calls)
            assert int(row["接通量 connects"]) == sum(c.answered for c in calls)
            assert int(row["订单量 orders"]) == sum(c.disposition == "order" for c in calls)


async def test_listen_to_a_live_call(tmp_path: Path, browser: Browser, shots: Shots) -> None:
    numbers = numbers_ending("2", 1, seed=8)
    async with running_site(tmp_path, numbers) as site:
        stack = site.stack
        # dialer serve opens this where the recordings index (its audit log) is on
        audit_engine = await open_rec_engine(stack.settings.database.url)
        monitor = FloorMonitor(
            stack.client, stack.runner.control, RunnerLines(stack.runner), stack.directory,
            AuditLogAuditor(audit_engine), stack.runner.clock, app=stack.settings.ari.app,
        )  # fmt: skip
        stack.events.on_any(monitor.handle_event)
        stack.monitor = monitor
        try:
            await stack.runner.agent_login("701", site.campaign)
            page = await new_page(browser, site.base_url)
            await sign_in(page, SUPERVISOR)
            await page.goto("/floor/")
            tile = page.locator('.wb-agent[data-agent="701"]')
            await expect(tile).to_have_attribute("data-state", "talking")
            await page.locator("#mon-agent").fill("701")
            await page.get_by_label("方式").select_option("listen")
            await page.get_by_label("我的话机").fill("901")
            await page.get_by_label("原因").fill("质检抽听")
            await page.get_by_role("button", name="呼叫我的话机").click()
            await expect(page.locator("#mon-status")).to_contain_text("listen 701")
            [snoop] = site.sim.engine.snoops
            agent = stack.runner.campaigns[site.campaign].pool.get("701")
            assert agent is not None and snoop.target == agent.channel_id
            assert (snoop.spy, snoop.whisper) == ("both", "none")
            await shots.take(page, "listening")
            await assert_accessible(page, context="wallboard while listening")
            audit = [e async for e in entries(audit_engine) if e.action == "monitor.listen"]
            assert [(e.actor, e.target, e.reason) for e in audit] == [
                ("王主管", "agent:701", "质检抽听")
            ]
            await page.locator("#mon-stop").click()
            await expect(page.locator("#mon-stop")).to_have_count(0)
            assert monitor.sessions() == []
            await stack.runner.agent_hangup("701")
        finally:
            await audit_engine.dispose()
