"""The supervisors' wallboard in headless Chromium against ``dialer serve`` with simpbx:
agents' tiles change state within a second, a campaign is paused and started from it."""

from __future__ import annotations

from pathlib import Path

from harness import SUPERVISOR, Shots, assert_accessible, new_page, running_site, sign_in
from playwright.async_api import Browser, expect

from compliance.campaigns import CampaignState
from simulation.demo_data import numbers_ending


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
