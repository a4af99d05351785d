"""Browser tests (marker ``browser``): see ``harness`` for the stack and Chromium set-up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness import Shots, chromium
from playwright.async_api import Browser


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)
