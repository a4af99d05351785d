"""Composition of the AGI side: stores, gate, route table and server, started and stopped as one.

``dialer agi serve`` runs an ``AgiService`` on its own; ``dialer serve``
embeds one in its event loop and passes the gate it already has::

    agi = await AgiService.start(settings, gate=compliance.gate, lists=compliance.lists)
    ...
    await agi.stop()
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from agi_scripts.desk import DeskService
from agi_scripts.desk_check import DeskScripts
from agi_scripts.desk_config import load_desk_config
from agi_scripts.desk_store import DeskStore
from agi_scripts.dialer_check import CheckAndReserve, DialerCheck
from agi_scripts.errors import RouteConfigError
from agi_scripts.optout import DoNotCallList, OptOut
from agi_scripts.routes import RouteTable
from agi_scripts.server import AgiServer, AgiServerConfig
from compliance.gate import ComplianceGate, ComplianceStores, open_compliance
from compliance.policy import Policy, default_policy

ROUTE_NAMES: tuple[str, ...] = (
    "desk_check",
    "desk_rate",
    "dialer_check",
    "dialer_result",
    "optout",
)


def build_routes(*, desk: DeskService, gate: CheckAndReserve, lists: DoNotCallList) -> RouteTable:
    """Every AGI script the dialplan in ``asterisk_conf/extensions.conf`` may call."""
    table = RouteTable(
        [
            *DeskScripts(desk).routes(),
            *DialerCheck(gate).routes(),
            *OptOut(lists).routes(),
        ]
    )
    if sorted(table) != sorted(ROUTE_NAMES):
        raise RouteConfigError(f"route table {sorted(table)} differs from ROUTE_NAMES")
    return table


@dataclass(frozen=True, slots=True)
class AgiSettings:
    """Where the AGI side listens and what it reads. Secrets stay in the URLs' environment."""

    server: AgiServerConfig = field(default_factory=AgiServerConfig)
    db_url: str = "sqlite+aiosqlite:///var/dialer.sqlite3"
    db_schema: str | None = None
    redis_url: str | None = None
    desk_config: str | None = None  # None: env DIALER_DESK_CONFIG, else built-in defaults
    desk_cache_ttl_s: float = 2.0


class AgiService:
    """A running AGI server with the stores it opened; ``stop()`` releases all of it."""

    def __init__(
        self,
        server: AgiServer,
        desk: DeskService,
        *,
        owned_compliance: ComplianceStores | None = None,
    ) -> None:
        self.server = server
        self.desk = desk
        self._compliance = owned_compliance

    @classmethod
    async def start(
        cls,
        settings: AgiSettings,
        *,
        gate: CheckAndReserve | None = None,
        lists: DoNotCallList | None = None,
        policy: Policy | None = None,
    ) -> AgiService:
        """Open the stores (and the compliance side unless given gate and lists), bind, serve."""
        # bad file: fail before binding. Unset: env DIALER_DESK_CONFIG, else built-in defaults.
        desk_config = load_desk_config(
            settings.desk_config or os.environ.get("DIALER_DESK_CONFIG") or None
        )
        desk_store = await DeskStore.open(settings.db_url, schema=settings.db_schema)
        stores: ComplianceStores | None = None
        started = False
        try:
            if lists is None and isinstance(gate, ComplianceGate):
                lists = gate.lists  # the dialer's own gate: its lists too, no second stack
            if gate is None or lists is None:
                stores = await open_compliance(
                    settings.db_url,
                    policy or default_policy(),
                    schema=settings.db_schema,
                    redis_url=settings.redis_url,
                )
                gate = gate or stores.gate
                lists = lists or stores.lists
            desk = DeskService(desk_config, desk_store, cache_ttl_s=settings.desk_cache_ttl_s)
            routes = build_routes(desk=desk, gate=gate, lists=lists)
            server = AgiServer(routes, settings.server)
            await server.start()
            started = True
        finally:
            if not started:  # nothing half-open is left behind, whatever stopped the start
                await desk_store.close()
                if stores is not None:
                    await stores.close()
        return cls(server, desk, owned_compliance=stores)

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        """Stop the server (sessions get the grace period, then are cancelled), close stores."""
        try:
            await self.server.stop()
        finally:
            await self.desk.aclose()
            await self.desk.store.close()
            if self._compliance is not None:
                await self._compliance.close()
