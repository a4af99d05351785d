"""Event routing: ARI event names -> the handlers of the slices that subscribed to them.

Each slice declares its subscriptions as a table of verbatim ARI event names
(``"StasisStart"``, ``"ChannelDestroyed"`` ...), as wazo-calld's ``_subscribe``
does; the router calls every handler subscribed to an event's ``type`` in the
order the slices were added. Each handler picks the channels it owns by id
(``dl-`` customer legs, ``ag-`` softphones, ``rec-``/``ab-`` media).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from dialer.ari.events import AriEvent

EventHandler = Callable[[AriEvent], Awaitable[None]]


class EventRouter:
    def __init__(self) -> None:
        self._table: dict[str, list[EventHandler]] = {}

    def subscribe(self, table: Mapping[str, EventHandler]) -> None:
        for name, handler in table.items():
            self._table.setdefault(name, []).append(handler)

    @property
    def names(self) -> frozenset[str]:
        """Every ARI event name some slice handles."""
        return frozenset(self._table)

    async def route(self, event: AriEvent) -> None:
        for handler in self._table.get(event.type, ()):
            await handler(event)
