"""The explicit route table: script name -> handler, plus what to set when the handler fails.

No import-time registration: the composition root builds a ``RouteTable``
from the handlers it wired. Names are snake_case; the dialplan may spell them
with dashes (``agi://host:4573/desk-check``, as in the reference captures):
``protocol.route_key`` maps both to the same key.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from agi_scripts.errors import RouteConfigError
from agi_scripts.protocol import route_key
from agi_scripts.session import AgiSession

Handler = Callable[[AgiSession], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    """One AGI script. ``failure_variables`` are set when the handler fails or cannot run,
    so the dialplan always has a variable to branch on (fail closed)."""

    name: str
    handler: Handler
    failure_variables: Mapping[str, str] = field(default_factory=dict)


class RouteTable:
    """An immutable mapping of route keys to routes, validated when built."""

    def __init__(self, routes: Iterable[Route]) -> None:
        table: dict[str, Route] = {}
        for route in routes:
            key = route_key(route.name)
            if key != route.name:
                raise RouteConfigError(
                    f"route name {route.name!r} must be its canonical key {key!r} (snake_case)"
                )
            if key in table:
                raise RouteConfigError(f"route {key!r} is registered twice")
            # panoramisk 1.4 wraps plain functions with asyncio.coroutine, gone in 3.11:
            # refuse them here, with a message, instead of an AttributeError at start-up.
            if not inspect.iscoroutinefunction(route.handler):
                raise RouteConfigError(f"route {key!r}: handler must be an 'async def' function")
            table[key] = route
        self._table = table

    def get(self, script: str) -> Route | None:
        return self._table.get(route_key(script))

    def __contains__(self, script: object) -> bool:
        return isinstance(script, str) and route_key(script) in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)
