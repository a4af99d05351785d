"""Fixtures for the FastAGI tests: captured environment blocks and a server factory.

The blocks in ``data/`` are the exact bytes Asterisk 22.10.1 sent (copied from
shared/asterisk-reference/agi so CI does not depend on it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import pytest

from agi_scripts.routes import Route, RouteTable
from agi_scripts.server import AgiServer, AgiServerConfig

DATA = Path(__file__).parent / "data"

ServerFactory = Callable[..., Awaitable[AgiServer]]


@pytest.fixture
def desk_env() -> bytes:
    """desk-check, agi_arg_1 5550001, caller id 201 (outbound-desk)."""
    return (DATA / "fastagi_desk-check_5550001_env.raw").read_bytes()


@pytest.fixture
def dialer_env() -> bytes:
    """dialer-check, args 5550001 and demo, caller id 5551000 (outbound-dialer)."""
    return (DATA / "fastagi_dialer-check_5550001_env.raw").read_bytes()


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Start AgiServers on 127.0.0.1, random port; all stopped at teardown."""
    servers: list[AgiServer] = []

    async def factory(routes: Iterable[Route], **config: object) -> AgiServer:
        options: dict[str, object] = {"host": "127.0.0.1", "port": 0}
        options.update(config)
        server = AgiServer(RouteTable(routes), AgiServerConfig(**options))  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()
        assert server.open_connections == 0, "sessions left open after stop()"
