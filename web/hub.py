"""Live pushes to the browser: one WebSocket per page, small typed messages, coalesced.

Producers (the sections, fed by the dialer's domain events) publish typed
messages on topics (``agent:701``, ``floor``); every open page subscribed to
a topic gets them. Each connection has an outbox that keeps only the newest
message per (type, key): a page that falls behind gets the latest state of
each thing, never a backlog, so a busy floor cannot flood a browser and the
memory per page is bounded by the number of distinct things it shows.

The first message after a quiet spell goes out at once (a screen-pop must not
wait); whatever arrives while a frame is being written, or within
``coalesce`` seconds after it, leaves together in the next frame. Frames are
JSON ``{"messages": [{"type": ..., ...}, ...]}`` with Chinese as text.

A page connects (``hub.serve``) with the topics its section allowed for the
signed-in user and the snapshot messages that rebuild the page, so a reload
or a reconnect restores the screen from the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

from aiohttp import WSMsgType, web

logger = logging.getLogger(__name__)

JsonValue = str | int | float | bool | None | Sequence[Any] | Mapping[str, Any]


class Message(Protocol):
    """A typed push: a frozen dataclass with JSON-ready fields and a ``TYPE`` name.

    ``key`` says which thing the message is about; a newer message of the same
    type and key replaces an older one still waiting in an outbox.
    """

    TYPE: ClassVar[str]

    @property
    def key(self) -> str: ...


def encode(message: Message) -> dict[str, Any]:
    """The message as the JSON object the page receives (``type`` first)."""
    body: dict[str, Any] = {"type": message.TYPE}
    body.update(asdict(message))  # type: ignore[call-overload]
    return body


@dataclass(eq=False)
class Outbox:
    """What is waiting for one page: the newest message per (type, key)."""

    limit: int = 5000
    pending: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False

    def put(self, message: Message) -> None:
        slot = (message.TYPE, message.key)
        if slot not in self.pending and len(self.pending) >= self.limit:
            # A page this far behind cannot catch up: close it, the reload rebuilds it.
            self.overflowed = True
        else:
            self.pending[slot] = encode(message)
        self.ready.set()

    def take(self) -> list[dict[str, Any]]:
        batch = list(self.pending.values())
        self.pending.clear()
        self.ready.clear()
        return batch


class Hub:
    """Topics to open pages; ``publish`` never blocks and never awaits."""

    def __init__(self, *, coalesce: float = 0.05, outbox_limit: int = 5000) -> None:
        self.coalesce = coalesce
        self.outbox_limit = outbox_limit
        self._subscribers: dict[str, set[Outbox]] = {}
        self.frames_sent = 0
        self.messages_sent = 0

    def publish(self, topic: str, message: Message) -> None:
        for outbox in self._subscribers.get(topic, ()):
            outbox.put(message)

    def publish_many(self, topic: str, messages: Iterable[Message]) -> None:
        for message in messages:
            self.publish(topic, message)

    def subscribers(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))

    def _subscribe(self, topics: Sequence[str], outbox: Outbox) -> None:
        for topic in topics:
            self._subscribers.setdefault(topic, set()).add(outbox)

    def _unsubscribe(self, topics: Sequence[str], outbox: Outbox) -> None:
        for topic in topics:
            subs = self._subscribers.get(topic)
            if subs is not None:
                subs.discard(outbox)
                if not subs:
                    del self._subscribers[topic]

    async def serve(
        self,
        request: web.Request,
        topics: Sequence[str],
        snapshot: Sequence[Message],
    ) -> web.WebSocketResponse:
        """Run one page's socket until it closes: the snapshot first, then the pushes.

        The page only listens; it acts through ordinary CSRF-protected requests,
        so anything it sends here is ignored.
        """
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
        await ws.prepare(request)
        outbox = Outbox(limit=self.outbox_limit)
        # Subscribe before the snapshot is queued: nothing published meanwhile is lost,
        # and a newer push for the same thing replaces the snapshot's copy.
        self._subscribe(topics, outbox)
        try:
            for message in snapshot:
                outbox.put(message)
            sender = asyncio.create_task(self._send_loop(ws, outbox), name="web-hub-send")
            try:
                async for msg in ws:
                    if msg.type is WSMsgType.ERROR:
                        logger.info("page socket error: %s", ws.exception())
                        break
            finally:
                sender.cancel()
                await asyncio.wait([sender])
                if not sender.cancelled() and sender.exception() is not None:
                    raise sender.exception()  # type: ignore[misc]
        finally:
            self._unsubscribe(topics, outbox)
            await ws.close()
        return ws

    async def _send_loop(self, ws: web.WebSocketResponse, outbox: Outbox) -> None:
        while not ws.closed:
            await outbox.ready.wait()
            if outbox.overflowed:
                await ws.close(code=1013, message=b"too far behind; reload")
                return
            batch = outbox.take()
            try:
                await ws.send_str(json.dumps({"messages": batch}, ensure_ascii=False))
            except ConnectionResetError:
                return
            self.frames_sent += 1
            self.messages_sent += len(batch)
            await asyncio.sleep(self.coalesce)
