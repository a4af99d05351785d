"""The ARI events WebSocket: connect, decode, dispatch in per-channel order, reconnect.

Invariants:

* Events that share an ordering key (by default the channel id, see
  :func:`dialer.ari.events.event_key`) reach the handlers one at a time, in
  arrival order; events of different channels are handled concurrently. Note a
  Local channel's ``;2`` half has its own id, hence its own key.
* The reader never waits for handlers; each key has at most one worker task,
  kept in a dict and awaited (or cancelled and awaited) at shutdown.
* Heartbeat: aiohttp sends a ping every ``heartbeat`` seconds and closes the
  socket when no pong comes back in time, so a dead peer is detected even when
  TCP says nothing.
* ARI does not replay events missed while disconnected, so after every
  successful connect (the first one too) the ``reconcile`` hook is called with
  the channels that exist (``GET /channels``), before any new event is handled.
* Reconnect uses exponential backoff with jitter. 401 (bad credentials) and 400
  (no ``app``) are not retried: they raise from :meth:`AriEvents.run`.
* A second socket for the same app takes the app over; this socket then gets
  ``ApplicationReplaced`` and nothing more (Asterisk does not close it). We log
  it, deliver it, and do not fight back by reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar, cast, overload

import aiohttp

from dialer.ari.client import AriClient
from dialer.ari.errors import AriBadRequest, AriError, AriUnauthorized
from dialer.ari.events import ApplicationReplaced, AriEvent, UnknownEvent, decode_event, event_key
from dialer.ari.models import AriDecodeError, Channel

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=AriEvent)
EventHandler = Callable[[AriEvent], Awaitable[None]]
ReconcileHook = Callable[[Sequence[Channel], bool], Awaitable[None]]
KeyFunction = Callable[[AriEvent], str | None]

_GLOBAL_KEY = "\x00global"


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Delay before reconnect ``attempt`` (1-based): exponential, capped, "equal jitter"."""
    base: float = min(maximum, initial * 2.0 ** max(0, attempt - 1))
    jitter: float = rng.uniform(0, base / 2)
    return base / 2 + jitter


class AriEvents:
    """Events WebSocket of one or more Stasis apps, with typed dispatch.

    Use ``on("StasisStart", handler)`` (or ``on(StasisStart, handler)``) and
    ``on_any(handler)`` before :meth:`start`; handlers are ``async def h(event)``.
    """

    def __init__(
        self,
        client: AriClient,
        *,
        apps: Sequence[str] | None = None,
        subscribe_all: bool = False,
        heartbeat: float = 5.0,
        connect_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        reconcile: ReconcileHook | None = None,
        key: KeyFunction = event_key,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.apps = tuple(apps) if apps else (client.app,)
        self.subscribe_all = subscribe_all
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.reconcile = reconcile
        self._key = key
        self._rng = rng if rng is not None else random.Random()
        self._handlers: dict[str, list[EventHandler]] = {}
        self._any_handlers: list[EventHandler] = []
        self._queues: dict[str, deque[AriEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._run_task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.replaced = False
        self.connection_count = 0
        self.events_received = 0
        self.events_ignored = 0
        self.handler_errors = 0
        self.last_close_reason = ""

    # --- registration -----------------------------------------------------------------------

    @overload
    def on(self, event_type: str, handler: EventHandler) -> None: ...

    @overload
    def on(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None: ...

    def on(self, event_type: str | type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        """Call ``handler`` for every event of that ARI type (verbatim name or class).

        With a class, the handler is typed for it: ``on(StasisStart, h)`` where
        ``async def h(event: StasisStart)``.
        """
        name = event_type if isinstance(event_type, str) else event_type.__name__
        # Dispatch is by the verbatim ``type`` field, so the handler only ever gets E.
        self._handlers.setdefault(name, []).append(cast(EventHandler, handler))

    def on_any(self, handler: EventHandler) -> None:
        """Call ``handler`` for every event, after the type-specific handlers."""
        self._any_handlers.append(handler)

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        base = self.client.base_url
        if base.startswith("https://"):
            base = "wss://" + base[len("https://") :]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://") :]
        return base + "/events"

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` in a task owned by this object (awaited by :meth:`stop`)."""
        if self._run_task is None or self._run_task.done():
            self._stop.clear()
            self._run_task = asyncio.create_task(self.run(), name="ari-events")
        return self._run_task

    async def stop(self) -> None:
        """Close the socket, stop reconnecting, cancel and await every worker."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            await ws.close()
        task = self._run_task
        self._run_task = None
        if task is not None:
            task.cancel()
            # asyncio.wait does not raise, so our own cancellation is never swallowed here.
            await asyncio.wait([task])
        await self._cancel_workers()
        if task is not None and not task.cancelled():
            exc = task.exception()
            if exc is not None:
                # The loop died on its own (e.g. 401): surface it instead of losing it.
                raise exc

    async def __aenter__(self) -> AriEvents:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_connected(self, within: float = 5.0) -> None:
        await asyncio.wait_for(self.connected.wait(), within)

    async def drain(self, within: float = 5.0) -> None:
        """Wait until every queued event has been handled (tests, graceful shutdown)."""
        async with asyncio.timeout(within):
            while self._workers:
                await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def disconnect(self) -> None:
        """Close the current socket (the run loop reconnects). For tests and operators."""
        ws = self._ws
        if ws is not None:
            await ws.close()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and read until :meth:`stop`; reconnect with backoff on any loss."""
        attempt = 0
        while not self._stop.is_set():
            try:
                ws = await self._connect()
            except (AriUnauthorized, AriBadRequest):
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                attempt += 1
                self.last_close_reason = f"connect failed: {type(exc).__name__}: {exc}"
                delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max, self._rng)
                logger.warning(
                    "ARI events: %s; retry %d in %.2fs", self.last_close_reason, attempt, delay
                )
                await self._sleep(delay)
                continue
            attempt = 0
            first = self.connection_count == 0
            self.connection_count += 1
            self._ws = ws
            try:
                if await self._reconcile(first):
                    self.connected.set()
                    await self._read(ws)
            finally:
                self.connected.clear()
                self._ws = None
                await ws.close()
            if self._stop.is_set():
                break
            logger.warning("ARI events: socket lost (%s); reconnecting", self.last_close_reason)
            attempt = 1
            await self._sleep(
                backoff_delay(attempt, self.backoff_initial, self.backoff_max, self._rng)
            )

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        params = {"app": ",".join(self.apps)}
        if self.subscribe_all:
            params["subscribeAll"] = "true"
        try:
            return await self.client.session.ws_connect(
                self.url,
                params=params,
                headers=self.client.auth_headers,
                heartbeat=self.heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.connect_timeout),
                max_msg_size=16 * 1024 * 1024,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise AriUnauthorized(
                    "events WebSocket refused the credentials", status=401, path="/events"
                ) from exc
            if exc.status == 400:
                raise AriBadRequest(
                    f"events WebSocket refused app={params['app']!r}", status=400, path="/events"
                ) from exc
            raise

    async def _reconcile(self, first: bool) -> bool:
        """Run the hook with GET /channels; False means: drop this socket and retry."""
        if self.reconcile is None:
            return True
        try:
            channels = await self.client.list_channels()
        except AriError as exc:
            self.last_close_reason = f"reconcile could not list channels: {exc}"
            return False
        try:
            await self.reconcile(channels, first)
        except Exception:
            # A failing hook must not stop event delivery; it is logged with its traceback.
            self.handler_errors += 1
            logger.exception("ARI events: reconcile hook failed")
        return True

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._on_frame(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._on_frame(msg.data)
            elif msg.type == aiohttp.WSMsgType.ERROR:
                self.last_close_reason = f"error: {ws.exception()!r}"
                return
        exc = ws.exception()
        self.last_close_reason = f"closed code={ws.close_code}" + (
            f" ({type(exc).__name__}: {exc})" if exc else ""
        )

    def _on_frame(self, data: str | bytes) -> None:
        self.events_received += 1
        try:
            parsed = json.loads(data)
            etype = parsed.get("type") if isinstance(parsed, dict) else None
            if (
                etype is not None
                and not self._any_handlers
                and etype not in self._handlers
                and etype != "ApplicationReplaced"
            ):
                # Nobody listens to this type (e.g. the ;2 half's ChannelDialplan): skip the
                # typed decoding, which is most of the cost of an event.
                self.events_ignored += 1
                return
            event = decode_event(parsed if isinstance(parsed, dict) else data)
        except (AriDecodeError, ValueError) as exc:
            # Not even a JSON object: keep it visible to handlers as an UnknownEvent.
            logger.error("ARI events: undecodable frame: %s", exc)
            event = UnknownEvent("", "", _epoch(), "", {"frame": str(data)[:10000]}, str(exc))
        if isinstance(event, ApplicationReplaced):
            self.replaced = True
            logger.error(
                "ARI events: app %r was taken over by another WebSocket; no more events here",
                event.application,
            )
        self.dispatch(event)

    # --- dispatch ---------------------------------------------------------------------------

    def dispatch(self, event: AriEvent) -> None:
        """Queue ``event`` behind earlier events with the same key (public for replay tests)."""
        key = self._key(event) or _GLOBAL_KEY
        queue = self._queues.get(key)
        if queue is None:
            queue = deque()
            self._queues[key] = queue
            self._workers[key] = asyncio.create_task(self._work(key, queue))
        queue.append(event)

    async def _work(self, key: str, queue: deque[AriEvent]) -> None:
        try:
            while queue:
                await self._handle(queue[0])
                queue.popleft()
        finally:
            # No await between the empty check and here: nothing can be appended meanwhile.
            self._queues.pop(key, None)
            self._workers.pop(key, None)

    async def _handle(self, event: AriEvent) -> None:
        for handler in (*self._handlers.get(event.type, ()), *self._any_handlers):
            try:
                await handler(event)
            except Exception:
                # One failing handler must not block the channel's later events; logged
                # with the traceback and counted (callers drive the call to a safe end).
                self.handler_errors += 1
                logger.exception(
                    "ARI handler %r failed on %s (channel %s)",
                    getattr(handler, "__qualname__", handler),
                    event.type,
                    event.channel_id,
                )

    async def _cancel_workers(self) -> None:
        tasks = list(self._workers.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)
