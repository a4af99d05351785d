"""The agent console in headless Chromium against ``dialer serve`` with simpbx."""

from __future__ import annotations

from pathlib import Path

from harness import AGENT, Shots, assert_accessible, new_page, running_site, sign_in
from playwright.async_api import Browser, expect

from simulation.demo_data import numbers_ending


async def test_sign_in_screen_pop_order_confirmation_reload_sign_out(
    tmp_path: Path, browser: Browser, shots: Shots
) -> None:
    numbers = numbers_ending("2", 2, seed=5)  # people who stay on the line until the agent ends
    async with running_site(tmp_path, numbers) as site:
        page = await new_page(browser, site.base_url)
        await page.goto("/")
        await expect(page.get_by_role("heading", name="登录")).to_be_visible()
        await shots.take(page, "signin")
        await assert_accessible(page, context="sign-in page")
        await sign_in(page, AGENT)
        await expect(page).to_have_url(site.base_url + "/agent/")
        await expect(page.locator("#status")).to_have_text("离线")
        await shots.take(page, "console-offline")
        await assert_accessible(page, context="agent console, offline")

        # Log in to the campaign: the phone is called, the agent is ready, a customer is put
        # through and the screen pops with the filled script.
        await page.get_by_role("button", name="登录营销活动").click()
        await expect(page.locator("#status")).to_have_attribute("data-status", "talking")
        customer = page.locator("#customer")
        await expect(customer).to_be_visible()
        await expect(page.locator("#c-name")).to_have_text("Customer 1")
        number = await page.locator("#c-number").text_content()
        assert number is not None and "****" in number and number not in site.numbers
        await expect(page.get_by_role("tab", name="开场")).to_have_attribute(
            "aria-selected", "true"
        )
        await expect(page.locator("#panel-opening")).to_contain_text("Customer 1您好！我是")
        await page.get_by_role("tab", name="导入").click()
        await expect(page.locator("#panel-proposal")).to_contain_text(
            "「宽带」正好适合您：每月 99 元，话费账户代扣"
        )
        html = await page.content()
        assert all(n not in html for n in site.numbers), "a full number reached the page"
        await shots.take(page, "screen-pop")
        await assert_accessible(page, context="agent console with a customer")

        # Reload in the middle of the call: the screen is rebuilt from the server.
        await page.reload()
        await expect(page.locator("#status")).to_have_attribute("data-status", "talking")
        await expect(page.locator("#c-name")).to_have_text("Customer 1")
        await expect(page.locator("#panel-opening")).to_contain_text("Customer 1您好！")
        await shots.take(page, "after-reload")

        # An order cannot be saved until the art. 23 checklist is ticked.
        await page.keyboard.press("1")
        await expect(page.locator("#checklist")).to_be_visible()
        await page.get_by_label("已告知产品名称").check()
        await page.get_by_role("button", name="保存处理结果").click()
        await expect(page.locator("#dispo-message")).to_contain_text("确认之前不能保存订单")
        await shots.take(page, "order-refused-unconfirmed")
        for label in ("已告知资费", "已告知付款方式", "客户明确表示同意"):
            await page.get_by_label(label).check()
        await page.get_by_role("button", name="保存处理结果").click()
        await expect(page.locator("#dispo-message")).to_contain_text("已保存")
        await expect(page.locator("#status")).not_to_have_attribute("data-status", "wrapup")
        await shots.take(page, "order-saved")
        rec = [r for r in await site.stack.attempts.all() if r.disposition == "order"]
        assert len(rec) == 1 and rec[0].order_confirmed and rec[0].agent_id == AGENT.agent_id
        desk = site.stack.desk
        assert desk is not None
        answers = await desk.answers(rec[0].attempt_id)
        assert {a.item for a in answers if a.kind == "confirmation"} == {
            "product", "price", "payment", "yes"
        }

        await page.get_by_role("button", name="退出登录").click()
        await expect(page.get_by_role("heading", name="登录")).to_be_visible()
        await page.goto("/agent/")
        await expect(page.get_by_role("heading", name="登录")).to_be_visible()
