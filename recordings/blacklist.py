"""The complaint -> do-not-call adapter over ``compliance.lists.ListStore``.

``recordings.service.Blacklist`` is the port; this is its production
implementation (the compliance side owns the list and its audit trail).
"""

from __future__ import annotations

from compliance.lists import ListReason, ListStore


class ListStoreBlacklist:
    """Puts a number on the do-not-call list of the compliance ``ListStore``."""

    def __init__(self, store: ListStore) -> None:
        self.store = store

    async def add(
        self, number: str, *, reason: str, source: str, actor: str, note: str = ""
    ) -> None:
        await self.store.add(number, ListReason(reason), source=source, actor=actor, note=note)
