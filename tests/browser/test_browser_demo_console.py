"""``make demo``: the console address it prints lets a person sign in and take a simulated call."""

from __future__ import annotations

import asyncio
import re
import sys

from harness import Person, Shots, new_page, sign_in
from playwright.async_api import Browser, expect

from identity.model import Role
from simulation.demo import DEMO_PERSON


async def test_demo_prints_a_console_where_the_demo_agent_takes_calls(
    browser: Browser, shots: Shots
) -> None:
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer.cli", "demo", "--console-port", "0",
        "--seconds", "90", "--time-scale", "2", "--quiet",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert demo.stderr is not None
        address = ""
        async with asyncio.timeout(60):
            while not address:
                line = (await demo.stderr.readline()).decode()
                assert line, "dialer demo ended before printing the console address"
                found = re.search(r"(http://127\.0\.0\.1:\d+/)\s+user (\S+)\s+password (\S+)", line)
                if found:
                    address = found.group(1)
                    assert (found.group(2), found.group(3)) == DEMO_PERSON[:2]
        name, password, agent_id = DEMO_PERSON
        page = await new_page(browser, address.rstrip("/"))
        await sign_in(page, Person(name, password, Role.AGENT, agent_id))
        await page.get_by_label("营销活动", exact=True).select_option("demo")
        await page.get_by_role("button", name="登录营销活动").click()
        await expect(page.locator("#customer")).to_be_visible(timeout=45_000)
        await expect(page.locator("#panel-opening")).to_contain_text(
            "您好！我是示例通信的客服代表700"
        )
        await shots.take(page, "demo-console-call")
    finally:
        if demo.returncode is None:
            demo.terminate()
        await demo.wait()
