"""Lawful callbacks, pause codes and a personal callback coming back, in headless Chromium."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from harness import AGENT, AGENT2, Shots, assert_accessible, new_page, running_site, sign_in
from playwright.async_api import Browser, expect

from simulation.demo_data import numbers_ending


async def test_callback_refused_then_proposed_pause_recorded_and_personal_callback_returns(
    tmp_path: Path, browser: Browser, shots: Shots
) -> None:
    numbers = numbers_ending("2", 3, seed=9)  # people who stay on the line
    async with running_site(tmp_path, numbers) as site:
        page = await new_page(browser, site.base_url)
        await sign_in(page, AGENT)
        await page.get_by_role("button", name="登录营销活动").click()
        await expect(page.locator("#c-name")).to_have_text("Customer 1")
        first_number = await page.locator("#c-number").text_content()

        # Pause after this call, with a supervisor-defined reason.
        await page.get_by_label("暂停原因").select_option(label="培训")
        await page.get_by_role("button", name="暂停").click()
        await expect(page.locator("#status")).to_contain_text("本通话后暂停")

        # A callback: the form proposes the earliest lawful time (the same product may be
        # offered again only after 30 days); a time the rules forbid is refused, saying why.
        await page.keyboard.press("3")
        proposal = page.locator("#proposal")
        await expect(proposal).to_contain_text("最早允许时间")
        proposed = await page.locator("#d-callback-at").input_value()
        assert proposed, "the form proposes a time"
        tomorrow_night = (site.clock.wall().astimezone(site.policy.tz) + timedelta(days=1)).replace(
            hour=21, minute=30
        )
        await page.locator("#d-callback-at").fill(tomorrow_night.strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_label("您暂不办理的主要原因是？").select_option("需要和家人商量")
        await page.get_by_role("button", name="保存处理结果").click()
        message = page.locator("#dispo-message")
        await expect(message).to_contain_text("不允许在该时间回访")
        await expect(message).to_contain_text("不在允许的呼叫时段")
        await expect(message).to_contain_text("30 天内已向该客户营销过此产品")
        await shots.take(page, "callback-refused")
        await assert_accessible(page, context="callback refused")
        await page.get_by_role("button", name="使用该时间").click()
        assert await page.locator("#d-callback-at").input_value() == proposed
        await page.get_by_role("button", name="保存处理结果").click()
        await expect(message).to_contain_text("已预约回访")
        await expect(page.locator("#status")).to_have_attribute("data-status", "paused")
        await expect(page.locator("#status")).to_contain_text("培训")
        await expect(page.locator("#callbacks")).to_contain_text(first_number or "?")
        await shots.take(page, "callback-saved-paused")

        desk = site.stack.desk
        assert desk is not None
        [pause] = await desk.pauses(AGENT.agent_id)
        assert (pause.code, pause.label, pause.ended_at) == ("training", "培训", None)
        [cb] = await desk.callbacks_for(AGENT.agent_id)
        due_local = datetime.fromisoformat(proposed).replace(tzinfo=site.policy.tz)
        assert cb.due_at == due_local and cb.grace_until == due_local + timedelta(minutes=30)
        assert await desk.callbacks_for(AGENT2.agent_id) == []
        [answer] = await desk.answers(cb.attempt_id)
        assert answer.answer == "需要和家人商量"

        # A month later, when it is due, the callback comes back to the same agent.
        site.clock.jump(due_local - site.clock.wall() + timedelta(minutes=1))
        await page.reload()  # the session has long expired: sign in again
        await sign_in(page, AGENT)
        await expect(page).to_have_url(site.base_url + "/agent/")
        due = page.locator('#callbacks li[data-due="now"]')
        await expect(due).to_contain_text(first_number or "?")
        await shots.take(page, "callback-due")
        await due.get_by_role("button", name="呼叫").click()
        await expect(page.locator("#status")).to_have_attribute("data-status", "talking")
        await expect(page.locator("#c-number")).to_have_text(first_number or "?")
        await expect(page.locator("#c-name")).to_have_text("Customer 1")
        await expect(page.locator("#c-history")).to_contain_text("预约回访")
        await shots.take(page, "callback-connected")
        assert await desk.callbacks_for(AGENT.agent_id) == []
        [pause] = await desk.pauses(AGENT.agent_id)
        assert pause.ended_at is not None  # the pause ended when the agent took the call
