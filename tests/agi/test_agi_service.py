"""AgiService: what `dialer serve` embeds (start/stop in the caller's loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agi_scripts.app import ROUTE_NAMES, AgiService, AgiSettings
from agi_scripts.desk_config import DeskConfigError
from agi_scripts.server import AgiServerConfig
from agi_scripts.testing import FakeAsterisk, call_env
from compliance.gate import open_compliance
from compliance.policy import default_policy

DESK = Path(__file__).parents[2] / "asterisk_conf" / "desk.toml"


def settings(url: str, **extra: object) -> AgiSettings:
    return AgiSettings(server=AgiServerConfig(port=0), db_url=url, desk_config=str(DESK), **extra)  # type: ignore[arg-type]


async def test_embedded_with_the_dialers_own_gate(sqlite_url, desk_env) -> None:
    stores = await open_compliance(sqlite_url, default_policy())
    try:
        # as dialer/app.py does: the gate only; its lists are taken from it
        agi = await AgiService.start(settings(sqlite_url), gate=stores.gate)
        assert agi._compliance is None  # nothing opened beside the dialer's own stores
        assert sorted(agi.server.routes) == sorted(ROUTE_NAMES)
        result = await FakeAsterisk("127.0.0.1", agi.port).run(
            call_env(desk_env, args=["88886666"])
        )
        assert result.set_vars["DESK_DECISION"] == "ALLOW"
        port = agi.port
        await agi.stop()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        # the gate the dialer passed in is still usable: stop() closed only what it opened
        assert await stores.campaigns.find("nope") is None
    finally:
        await stores.close()


async def test_standalone_opens_and_closes_its_own_stores(sqlite_url, dialer_env) -> None:
    agi = await AgiService.start(settings(sqlite_url))
    try:
        result = await FakeAsterisk("127.0.0.1", agi.port).run(
            call_env(dialer_env, args=["13812345678", "no-such-campaign"])
        )
        assert result.set_vars["DIALER_REASON"] == "unknown_campaign"
    finally:
        await agi.stop()


async def test_bad_desk_file_fails_before_binding(sqlite_url, tmp_path) -> None:
    bad = tmp_path / "desk.toml"
    bad.write_text("[policy]\nquota = 3\n")
    with pytest.raises(DeskConfigError, match=r"desk\.toml:2"):
        await AgiService.start(
            AgiSettings(server=AgiServerConfig(port=0), db_url=sqlite_url, desk_config=str(bad))
        )
