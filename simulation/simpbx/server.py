"""simpbx over HTTP: the ARI subset on aiohttp, the events WebSocket, and the test controls.

* ``/ari/...``: the routes of :data:`ARI_ROUTES` (each one exists in the real
  ARI api-docs; a test checks it), Basic auth or ``api_key=user:pass``, the real
  status codes and error bodies (``{"message": ...}``; ``{"error": ...}`` for
  500 Allocation failed; reason "Not found" on bridge routes).
* ``/ari/events?app=a[,b][&subscribeAll=true]``: 401 JSON on bad credentials,
  400 HTML without ``app``, nothing sent on connect, a second socket for an app
  takes it over (the old one gets ``ApplicationReplaced`` and stays open).
* ``/_sim/...``: the control plane (journal, failure injection, dropping
  sockets, race mode, clock, behaviours, remote hangup, state). The same
  operations are methods of :class:`SimPbx` for in-process tests.

Ordering of a REST reply and the events it causes: normally the reply is
written first and then the events; in race mode the events are sent (and
flushed) before the reply, to catch code that maps ids only after the HTTP 200.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fnmatch
import json
import logging
import struct
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from simulation.simpbx.behaviours import Behaviour
from simulation.simpbx.clock import ClockMode, SimScheduler
from simulation.simpbx.engine import Engine, JsonDict, SimHttpError

logger = logging.getLogger(__name__)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

REST_ERROR_HEADERS = {"Cache-Control": "no-cache, no-store", "Server": "Asterisk"}
AUTH_HEADERS = {**REST_ERROR_HEADERS, "WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'}
MISSING_APP_HTML = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n'
    "<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n"
    "<p>HTTP request is missing param: [app]</p>\r\n<hr />\r\n"
    "<address>Asterisk</address>\r\n</body></html>\r\n"
)


@dataclass(frozen=True, slots=True)
class AriRoute:
    """One ARI route simpbx serves; ``path`` uses the api-docs spelling (``{channelId}``)."""

    method: str
    path: str
    handler: str
    query: frozenset[str] = frozenset()
    body: frozenset[str] = frozenset()


def _r(method: str, path: str, handler: str, *query: str, body: Iterable[str] = ()) -> AriRoute:
    return AriRoute(method, path, handler, frozenset(query), frozenset(body))


_ORIGINATE = ("endpoint", "extension", "context", "priority", "label", "app", "appArgs",
              "callerId", "timeout", "otherChannelId", "originator", "formats")  # fmt: skip

# Plain paths come before templated ones: aiohttp matches in registration order
# (POST /channels/create must not be taken for POST /channels/{channelId}).
ARI_ROUTES: tuple[AriRoute, ...] = (
    _r("GET", "/channels", "list_channels"),
    _r("POST", "/channels", "originate", *_ORIGINATE, "channelId", body=["variables"]),
    _r(
        "POST",
        "/channels/create",
        "create_channel",
        "endpoint",
        "app",
        "appArgs",
        "channelId",
        "otherChannelId",
        "originator",
        "formats",
        body=["variables"],
    ),
    _r("GET", "/channels/{channelId}", "get_channel"),
    _r("POST", "/channels/{channelId}", "originate_with_id", *_ORIGINATE, body=["variables"]),
    _r("DELETE", "/channels/{channelId}", "hangup", "reason_code", "reason"),
    _r("POST", "/channels/{channelId}/answer", "answer"),
    _r(
        "POST",
        "/channels/{channelId}/continue",
        "continue_in_dialplan",
        "context",
        "extension",
        "priority",
        "label",
    ),
    _r("POST", "/channels/{channelId}/dial", "dial", "caller", "timeout"),
    _r("POST", "/channels/{channelId}/moh", "start_moh", "mohClass"),
    _r("DELETE", "/channels/{channelId}/moh", "stop_moh"),
    _r(
        "POST",
        "/channels/{channelId}/play",
        "play",
        "media",
        "lang",
        "offsetms",
        "skipms",
        "playbackId",
    ),
    _r(
        "POST",
        "/channels/{channelId}/play/{playbackId}",
        "play_with_id",
        "media",
        "lang",
        "offsetms",
        "skipms",
    ),
    _r(
        "POST",
        "/channels/{channelId}/snoop",
        "snoop",
        "spy",
        "whisper",
        "app",
        "appArgs",
        "snoopId",
    ),
    _r(
        "POST",
        "/channels/{channelId}/snoop/{snoopId}",
        "snoop_with_id",
        "spy",
        "whisper",
        "app",
        "appArgs",
    ),
    _r("GET", "/channels/{channelId}/variable", "get_variable", "variable"),
    _r("POST", "/channels/{channelId}/variable", "set_variable", "variable", "value"),
    _r("GET", "/bridges", "list_bridges"),
    _r("POST", "/bridges", "create_bridge", "type", "bridgeId", "name"),
    _r("GET", "/bridges/{bridgeId}", "get_bridge"),
    _r("DELETE", "/bridges/{bridgeId}", "destroy_bridge"),
    _r("POST", "/bridges/{bridgeId}/addChannel", "add_channel", "channel", "role"),
    _r("POST", "/bridges/{bridgeId}/removeChannel", "remove_channel", "channel"),
    _r(
        "POST",
        "/bridges/{bridgeId}/record",
        "record_bridge",
        "name",
        "format",
        "maxDurationSeconds",
        "maxSilenceSeconds",
        "ifExists",
        "beep",
        "terminateOn",
    ),
    _r("GET", "/recordings/live/{recordingName}", "get_live_recording"),
    _r("POST", "/recordings/live/{recordingName}/stop", "stop_recording"),
    _r("GET", "/recordings/stored", "list_stored"),
    _r("GET", "/recordings/stored/{recordingName}", "get_stored"),
    _r("DELETE", "/recordings/stored/{recordingName}", "delete_stored"),
    _r("GET", "/recordings/stored/{recordingName}/file", "stored_file"),
    _r("GET", "/sounds/{soundId}", "get_sound"),
    _r("GET", "/deviceStates/{deviceName}", "get_device_state"),
    _r("GET", "/playbacks/{playbackId}", "get_playback"),
    _r("DELETE", "/playbacks/{playbackId}", "stop_playback"),
    _r("GET", "/applications", "list_applications"),
    _r("GET", "/applications/{applicationName}", "get_application"),
    _r("POST", "/applications/{applicationName}/subscription", "subscribe", "eventSource"),
    _r("DELETE", "/applications/{applicationName}/subscription", "unsubscribe", "eventSource"),
    _r("GET", "/asterisk/info", "asterisk_info", "only"),
    _r("GET", "/asterisk/ping", "ping"),
    _r("GET", "/endpoints", "list_endpoints"),
)
EVENTS_QUERY = frozenset({"app", "subscribeAll", "api_key"})
# The stock prompts of asterisk-core-sounds-en the dialplan falls back on; a test
# adds a site prompt with ``sim.sounds.add("dialer/abandon-message")``.
STOCK_SOUNDS = frozenset(
    {"vm-nobodyavail", "vm-press", "digits/9", "sorry", "please-try-again", "removed", "goodbye"}
)
_Result = tuple[int, Any]


class _FileReply(web.StreamResponse):
    """A stored recording's bytes, read and sent a chunk at a time, never whole in memory
    (recordings of long calls are tens of MB).

    Not ``web.FileResponse``: the request handler prepares and ends every reply itself
    (the reply must go out before the events it caused), and aiohttp then prepares the
    returned response again, which ``FileResponse`` does not tolerate. The body goes
    out in ``write_eof``, once, whoever calls it first.
    """

    CHUNK = 1 << 16

    def __init__(self, path: Path, content_type: str) -> None:
        super().__init__(status=200, headers=REST_ERROR_HEADERS)
        self.content_type = content_type
        self.content_length = path.stat().st_size
        self._path = path
        self._body_sent = False

    async def write_eof(self, data: bytes = b"") -> None:
        if not self._body_sent:
            self._body_sent = True
            handle = await asyncio.to_thread(self._path.open, "rb")
            try:
                while chunk := await asyncio.to_thread(handle.read, self.CHUNK):
                    await self.write(chunk)
            finally:
                handle.close()
        await super().write_eof(data)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One REST request as simpbx saw it (path relative to ``/ari``)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    status: int
    time: float


@dataclass(slots=True)
class FailRule:
    method: str
    path: str
    status: int
    message: str
    remaining: int
    channel_prefix: str = ""  # only requests whose channelId starts so (originates)

    def matches(self, method: str, path: str, channel_id: str = "") -> bool:
        return (
            (self.method in ("*", method))
            and fnmatch.fnmatchcase(path, self.path)
            and channel_id.startswith(self.channel_prefix)
        )


WRITE_HIGH_WATER = 4 * 1024 * 1024
LOST_REPLY = 0  # a FailRule status: carry the request out, never answer it


def text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final WebSocket text frame (RFC 6455 5.2), server side."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


@dataclass(eq=False)
class WsConn:
    """One events socket; frames queue here and a writer task sends them in order."""

    ws: web.WebSocketResponse
    request: web.Request
    apps: set[str]
    subscribe_all: bool
    queue: deque[str] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    stalled: bool = False
    sent: int = 0

    def send(self, text: str) -> None:
        if self.stalled:
            return
        self.queue.append(text)
        self.idle.clear()
        self.wakeup.set()

    async def writer(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue and not self.stalled:
                transport = self.request.transport
                if transport is None or transport.is_closing() or self.ws.closed:
                    self.queue.clear()
                    break
                # One write per burst instead of one per frame: a send() syscall per event
                # was a third of simpbx's CPU. Each write holds whole frames, so aiohttp's own
                # control frames (pong, close) can never land inside one of ours.
                batch: list[bytes] = []
                while self.queue and len(batch) < 512:
                    batch.append(text_frame(self.queue.popleft().encode()))
                transport.write(b"".join(batch))
                self.sent += len(batch)
                while transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                    if transport.is_closing():
                        break
                    await asyncio.sleep(0.005)
            self.idle.set()

    async def flushed(self) -> None:
        if self.queue and not self.stalled and not self.ws.closed:
            await self.idle.wait()


class SimPbx:
    """The simulated Asterisk and its controller (the object tests and the demo hold)."""

    def __init__(
        self,
        *,
        clock: str | ClockMode = ClockMode.REAL,
        time_scale: float = 1.0,
        recordings_dir: Path | str | None = None,
        username: str = "dialer",
        password: str = "dialer-secret",
        epoch: float | None = None,
        keep_events: int = 10000,
        keep_requests: int = 100000,
    ) -> None:
        self.sched = SimScheduler(ClockMode(clock), time_scale=time_scale, epoch=epoch)
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if recordings_dir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="simpbx-rec-")
            recordings_dir = self._tmpdir.name
        self.recordings_dir = Path(recordings_dir)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(self.sched, self._deliver, self.recordings_dir)
        self.username = username
        self.password = password
        # Bounded so a long demo or load run cannot grow without limit.
        self.requests: deque[JournalEntry] = deque(maxlen=keep_requests)
        self.events_sent: deque[tuple[str, JsonDict]] = deque(maxlen=keep_events)
        self.race_mode = False
        self.race_delay = 0.02
        self.sounds: set[str] = set(STOCK_SOUNDS)
        self._fail_rules: list[FailRule] = []
        self._conns: set[WsConn] = set()
        self._stalled: set[WsConn] = set()
        self._app_conn: dict[str, WsConn] = {}
        # Events wait here while a REST reply is being written (they must follow it) and
        # everything emitted meanwhile queues behind them, so the order is never broken.
        self._pending: deque[tuple[Iterable[str], JsonDict]] = deque()
        self._holds = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self.base_url = ""
        self.app = self._build_app()

    # --- lifecycle --------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/ari/events", self._events)
        for route in ARI_ROUTES:
            app.router.add_route(route.method, "/ari" + route.path, self._make_handler(route))
        app.router.add_route("*", "/ari/{tail:.*}", self._unknown)
        control: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("GET", "/_sim/requests", self._c_requests),
            ("DELETE", "/_sim/requests", self._c_clear_requests),
            ("POST", "/_sim/fail", self._c_fail),
            ("POST", "/_sim/drop_websocket", self._c_drop),
            ("POST", "/_sim/race", self._c_race),
            ("GET", "/_sim/clock", self._c_clock),
            ("POST", "/_sim/advance", self._c_advance),
            ("POST", "/_sim/behaviours", self._c_behaviour),
            ("GET", "/_sim/behaviours", self._c_behaviours),
            ("DELETE", "/_sim/behaviours", self._c_clear_behaviours),
            ("POST", "/_sim/hangup", self._c_hangup),
            ("GET", "/_sim/state", self._c_state),
            ("GET", "/_sim/events", self._c_events),
        ]
        for method, path, handler in control:
            app.router.add_route(method, path, handler)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the ARI base URL (``http://host:port/ari``)."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        real_port = sockets[0].getsockname()[1] if sockets else port
        self.base_url = f"http://{host}:{real_port}/ari"
        if self.sched.mode is ClockMode.REAL:
            self._clock_task = asyncio.create_task(self.sched.run(), name="simpbx-clock")
        return self.base_url

    async def close(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            await asyncio.wait([self._clock_task])
            self._clock_task = None
        for conn in list(self._stalled):
            # A stalled socket reads nothing, so it never sees the peer go: cut it.
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
        self._stalled.clear()
        for conn in list(self._conns):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/events"

    @property
    def controller(self) -> SimPbx:
        """The object itself: kept for readability (``sim.controller.advance(5)``)."""
        return self

    # --- controller API ---------------------------------------------------------------------

    def now(self) -> float:
        return self.sched.now()

    def set_behaviour(self, number: str, behaviour: Behaviour) -> None:
        """Pin the behaviour of a dialled number (wins over SIM_* variables and last digit)."""
        self.engine.overrides[number] = behaviour

    def clear_behaviours(self) -> None:
        self.engine.overrides.clear()

    def clear_requests(self) -> None:
        self.requests.clear()

    def fail_next(
        self, method: str, path: str, status: int, *, count: int = 1, message: str | None = None
    ) -> None:
        """The next ``count`` requests matching ``method`` (or "*") and ``path`` (a glob
        relative to /ari, e.g. ``/channels`` or ``/bridges/*``) fail with ``status``."""
        self._fail_rules.append(
            FailRule(method.upper(), path, status, message or f"Injected failure {status}", count)
        )

    def lose_next_reply(
        self, method: str, path: str, *, count: int = 1, channel_prefix: str = ""
    ) -> None:
        """The next ``count`` matching requests (with a ``channelId`` starting with
        ``channel_prefix``) are carried out but their reply is lost: the connection is
        reset instead (a PBX too busy to answer before the client's timeout). The request
        is in the journal with the status it would have had."""
        self._fail_rules.append(
            FailRule(method.upper(), path, LOST_REPLY, "reply lost", count, channel_prefix)
        )

    async def drop_websockets(self, mode: str = "close") -> int:
        """Drop every events socket: ``close`` (close frame), ``abort`` (TCP reset) or
        ``stall`` (stop reading and writing: no pongs, so only a heartbeat notices)."""
        if mode not in ("close", "abort", "stall"):
            raise ValueError(f"drop mode {mode!r} is not close, abort or stall")
        conns = [c for c in self._conns if not c.stalled]
        for conn in conns:
            self._forget(conn)
            transport = conn.request.transport
            if mode == "close":
                await conn.ws.close(code=WSCloseCode.GOING_AWAY)
            elif mode == "abort":
                if transport is not None:
                    transport.abort()
            else:
                conn.stalled = True
                conn.queue.clear()
                self._stalled.add(conn)
                if transport is not None:
                    transport.pause_reading()
        return len(conns)

    async def advance(self, seconds: float) -> int:
        """Manual clock: move time forward (timers fire in order), then flush the sockets."""
        fired = self.sched.advance(seconds)
        await self.flush()
        return fired

    async def flush(self) -> None:
        """Wait until every queued event frame has been written to its socket."""
        for conn in list(self._conns):
            await conn.flushed()

    async def remote_hangup(self, channel_id: str, cause: int = 16) -> None:
        """The callee behind ``channel_id`` hangs up now with ``cause``."""
        self.engine.remote_hangup(channel_id, cause)
        await self.flush()

    def state(self) -> JsonDict:
        return self.engine.state()

    @property
    def connected_apps(self) -> list[str]:
        return sorted(self._app_conn)

    # --- event delivery ---------------------------------------------------------------------

    def _deliver(self, apps: Iterable[str], event: JsonDict) -> None:
        if self._holds or self._pending:
            self._pending.append((apps, event))
            return
        self._send(apps, event)

    def _send(self, apps: Iterable[str], event: JsonDict) -> None:
        for app in apps:
            conn = self._app_conn.get(app)
            if conn is None:
                continue
            event["application"] = app
            self.events_sent.append((app, event))
            conn.send(_dumps(event))

    def _release_pending(self) -> None:
        while self._pending and not self._holds:
            apps, event = self._pending.popleft()
            self._send(apps, event)

    def _forget(self, conn: WsConn) -> None:
        self._conns.discard(conn)
        for app in conn.apps:
            if self._app_conn.get(app) is conn:
                del self._app_conn[app]
                self.engine.subscribe_all.discard(app)

    # --- auth, journal, failures ------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        api_key = request.query.get("api_key")
        if api_key is not None:
            return api_key == f"{self.username}:{self.password}"
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.username}:{self.password}"

    @staticmethod
    def _json_reply(
        status: int,
        data: Any,
        *,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        if status == 204:
            return web.Response(status=204, headers=REST_ERROR_HEADERS)
        return web.Response(
            status=status,
            reason=reason,
            body=_dumps(data).encode(),
            content_type="application/json",
            headers=headers or REST_ERROR_HEADERS,
        )

    def _error_reply(self, exc: SimHttpError) -> web.Response:
        return self._json_reply(exc.status, {exc.key: exc.message}, reason=exc.reason)

    def _take_failure(self, method: str, path: str, channel_id: str = "") -> FailRule | None:
        for rule in self._fail_rules:
            if rule.matches(method, path, channel_id):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._fail_rules.remove(rule)
                return rule
        return None

    def _make_handler(
        self, route: AriRoute
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        op = getattr(self, "_op_" + route.handler)

        async def handle(request: web.Request) -> web.StreamResponse:
            path = request.path[len("/ari") :]
            try:
                body = await self._read_body(request)
            except SimHttpError as exc:
                return self._finish(request, path, None, self._error_reply(exc))
            if not self._authorized(request):
                denied = self._json_reply(
                    401, {"message": "Authentication required"}, headers=AUTH_HEADERS
                )
                return self._finish(request, path, body, denied)
            rule = self._take_failure(request.method, path, request.query.get("channelId", ""))
            if rule is not None and rule.status == LOST_REPLY:
                return await self._lose_reply(request, path, body, op, route)
            if rule is not None:
                injected = self._json_reply(rule.status, {"message": rule.message})
                return self._finish(request, path, body, injected)
            params = self._params(request, route, body)
            if self.race_mode:
                return await self._race(request, path, body, op, params)
            self._holds += 1
            try:
                try:
                    status, data = op(request.match_info, params, body)
                except SimHttpError as exc:
                    return self._finish(request, path, body, self._error_reply(exc))
                reply = (
                    data if isinstance(data, web.StreamResponse) else self._json_reply(status, data)
                )
                self._journal(request, path, body, reply.status)
                # The reply goes out first, then the events it caused (README fact 1).
                await reply.prepare(request)
                await reply.write_eof()
                return reply
            finally:
                self._holds -= 1
                self._release_pending()

        return handle

    async def _lose_reply(
        self,
        request: web.Request,
        path: str,
        body: Any,
        op: Callable[[Mapping[str, str], dict[str, str], Any], _Result],
        route: AriRoute,
    ) -> web.StreamResponse:
        try:
            status, _ = op(request.match_info, self._params(request, route, body), body)
        except SimHttpError as exc:
            status = exc.status
        self._journal(request, path, body, status)
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("simpbx: reply lost on purpose")

    async def _race(
        self,
        request: web.Request,
        path: str,
        body: Any,
        op: Callable[[Mapping[str, str], dict[str, str], Any], _Result],
        params: dict[str, str],
    ) -> web.StreamResponse:
        """Race mode: the events are on the wire before the reply is written."""
        before = self.engine.events_emitted
        try:
            status, data = op(request.match_info, params, body)
        except SimHttpError as exc:
            return self._finish(request, path, body, self._error_reply(exc))
        reply = data if isinstance(data, web.StreamResponse) else self._json_reply(status, data)
        self._journal(request, path, body, reply.status)
        if self.engine.events_emitted != before:
            await self.flush()
            # A head start for the events, as a loaded Asterisk gives them.
            await asyncio.sleep(self.race_delay)
        return reply

    @staticmethod
    async def _read_body(request: web.Request) -> Any:
        if not request.can_read_body:
            return None
        raw = await request.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise SimHttpError(400, "Malformed JSON") from None

    @staticmethod
    def _params(request: web.Request, route: AriRoute, body: Any) -> dict[str, str]:
        params = {k: v for k, v in request.query.items() if k != "api_key"}
        if isinstance(body, dict):
            # ARI also takes scalar parameters from a JSON body.
            for key, value in body.items():
                if key in route.query and key not in params and isinstance(value, str | int):
                    params[key] = str(value)
        return params

    def _finish(
        self, request: web.Request, path: str, body: Any, reply: web.Response
    ) -> web.Response:
        self._journal(request, path, body, reply.status)
        return reply

    def _journal(self, request: web.Request, path: str, body: Any, status: int) -> None:
        query = {k: v for k, v in request.query.items() if k != "api_key"}
        self.requests.append(
            JournalEntry(request.method, path, query, body, status, self.sched.now())
        )

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len("/ari") :]
        if not self._authorized(request):
            reply = self._json_reply(
                401, {"message": "Authentication required"}, headers=AUTH_HEADERS
            )
        elif request.method == "OPTIONS":
            reply = web.Response(status=204, headers=REST_ERROR_HEADERS)
        else:
            reply = self._json_reply(404, {"message": "Resource not found"})
        return self._finish(request, path, None, reply)

    # --- ARI operations: (match_info, params, body) -> (status, data) -----------------------

    @staticmethod
    def _variables(body: Any) -> dict[str, str]:
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise SimHttpError(400, "Request body must be a JSON object")
        variables = body.get("variables", {})
        if not isinstance(variables, dict):
            raise SimHttpError(400, "variables must be a JSON object")
        return {str(k): str(v) for k, v in variables.items()}

    def _op_list_channels(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.list_channels()

    def _op_originate(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.originate(p, self._variables(b))

    def _op_originate_with_id(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.originate(p, self._variables(b), path_channel_id=m["channelId"])

    def _op_create_channel(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.originate(p, self._variables(b), create=True)

    def _op_get_channel(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.get_channel(m["channelId"])

    def _op_hangup(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.hangup(m["channelId"], p)
        return 204, None

    def _op_answer(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.answer(m["channelId"])
        return 204, None

    def _op_continue_in_dialplan(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.continue_in_dialplan(m["channelId"], p)
        return 204, None

    def _op_dial(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.dial(m["channelId"], p)
        return 204, None

    def _op_start_moh(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.start_moh(m["channelId"], p)
        return 204, None

    def _op_stop_moh(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.stop_moh(m["channelId"])
        return 204, None

    def _op_play(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 201, self.engine.play(m["channelId"], p, None)

    def _op_play_with_id(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 201, self.engine.play(m["channelId"], p, m["playbackId"])

    def _op_snoop(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.snoop(m["channelId"], p, p.get("snoopId") or None)

    def _op_snoop_with_id(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.snoop(m["channelId"], p, m["snoopId"])

    def _op_get_variable(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.get_variable(m["channelId"], p)

    def _op_set_variable(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.set_variable(m["channelId"], p)
        return 204, None

    def _op_list_bridges(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.list_bridges()

    def _op_create_bridge(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.create_bridge(p)

    def _op_get_bridge(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.get_bridge(m["bridgeId"])

    def _op_destroy_bridge(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.destroy_bridge(m["bridgeId"])
        return 204, None

    def _op_add_channel(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.add_channel(m["bridgeId"], p)
        return 204, None

    def _op_remove_channel(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.remove_channel(m["bridgeId"], p)
        return 204, None

    def _op_record_bridge(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 201, self.engine.record_bridge(m["bridgeId"], p)

    def _op_get_live_recording(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.get_live_recording(m["recordingName"])

    def _op_stop_recording(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.stop_recording(m["recordingName"])
        return 204, None

    def _op_list_stored(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.list_stored()

    def _op_get_stored(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.get_stored(m["recordingName"])

    def _op_delete_stored(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.delete_stored(m["recordingName"])
        return 204, None

    def _op_stored_file(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        path, content_type = self.engine.stored_file(m["recordingName"])
        return 200, _FileReply(path, content_type)

    def _op_get_sound(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        # soundId arrives percent-decoded ("dialer%2Fabandon-message" -> "dialer/...").
        sound_id = m["soundId"]
        if sound_id not in self.sounds:
            raise SimHttpError(404, "Sound not found")
        return 200, {"id": sound_id, "formats": [{"language": "en", "format": "wav"}]}

    def _op_get_device_state(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        name = m["deviceName"]
        return 200, {"name": name, "state": self.engine.device_state(name)}

    def _op_get_playback(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.get_playback(m["playbackId"])

    def _op_stop_playback(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        self.engine.stop_playback(m["playbackId"])
        return 204, None

    def _op_list_applications(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.list_applications()

    def _op_get_application(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.get_application(m["applicationName"])

    def _op_subscribe(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.subscribe(m["applicationName"], p)

    def _op_unsubscribe(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.subscribe(m["applicationName"], p, add=False)

    def _op_asterisk_info(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.asterisk_info()

    def _op_ping(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        return 200, self.engine.ping()

    def _op_list_endpoints(self, m: Mapping[str, str], p: dict[str, str], b: Any) -> _Result:
        # The reference world has no SIP/IAX endpoints, only Local channels.
        return 200, []

    # --- the events WebSocket ---------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._json_reply(
                401, {"message": "Authentication required"}, headers=AUTH_HEADERS
            )
        apps = [a for a in request.query.get("app", "").split(",") if a]
        if not apps:
            return web.Response(
                status=400,
                text=MISSING_APP_HTML,
                content_type="text/html",
                headers=REST_ERROR_HEADERS,
            )
        subscribe_all = request.query.get("subscribeAll", "").lower() in ("true", "yes", "1")
        # autoping: aiohttp answers the client's pings while we read (heartbeat works).
        # No permessage-deflate: Asterisk does not offer it, and frames are written raw.
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, compress=False)
        await ws.prepare(request)
        conn = WsConn(ws, request, set(apps), subscribe_all)
        for app in apps:
            old = self._app_conn.get(app)
            if old is not None:
                # The old socket gets ApplicationReplaced and no more events; it stays open.
                old.send(
                    _dumps({"type": "ApplicationReplaced", "timestamp": self.engine._timestamp(),
                            "application": app, "asterisk_id": self.engine.asterisk_id})
                )  # fmt: skip
                old.apps.discard(app)
            self._app_conn[app] = conn
            self.engine.registered_apps.add(app)
            if subscribe_all:
                self.engine.subscribe_all.add(app)
        self._conns.add(conn)
        writer = asyncio.create_task(conn.writer(), name="simpbx-ws-writer")
        self._tasks.add(writer)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._forget(conn)
            writer.cancel()
            await asyncio.wait([writer])
            self._tasks.discard(writer)
        return ws

    # --- control plane ----------------------------------------------------------------------

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return data

    async def _c_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([asdict(e) for e in self.requests])

    async def _c_clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.clear_requests()
        return web.Response(status=204)

    async def _c_fail(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        try:
            self.fail_next(
                str(data.get("method", "*")),
                str(data["path"]),
                int(data["status"]),
                count=int(data.get("count", 1)),
                message=data.get("message"),
            )
        except (KeyError, ValueError) as exc:
            raise web.HTTPBadRequest(text=f"need path and status: {exc}") from exc
        return web.Response(status=204)

    async def _c_drop(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        try:
            dropped = await self.drop_websockets(str(data.get("mode", "close")))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response({"dropped": dropped})

    async def _c_race(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        self.race_mode = bool(data.get("enabled", True))
        return web.json_response({"race_mode": self.race_mode})

    async def _c_clock(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"mode": self.sched.mode.value, "now": self.now(), "time_scale": self.sched.time_scale}
        )

    async def _c_advance(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        try:
            fired = await self.advance(float(data.get("seconds", 0)))
        except (RuntimeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response({"now": self.now(), "fired": fired})

    async def _c_behaviour(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        number = data.get("number")
        if not isinstance(number, str) or not number:
            raise web.HTTPBadRequest(text="need a 'number' string")
        try:
            self.set_behaviour(number, Behaviour.from_json(data))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.Response(status=204)

    async def _c_behaviours(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({n: b.to_json() for n, b in self.engine.overrides.items()})

    async def _c_clear_behaviours(self, request: web.Request) -> web.StreamResponse:
        self.clear_behaviours()
        return web.Response(status=204)

    async def _c_hangup(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        try:
            await self.remote_hangup(str(data["channel"]), int(data.get("cause", 16)))
        except KeyError as exc:
            raise web.HTTPBadRequest(text="need 'channel'") from exc
        except SimHttpError as exc:
            return self._error_reply(exc)
        return web.Response(status=204)

    async def _c_state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state())

    async def _c_events(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([e for _, e in self.events_sent])


async def start_simpbx(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: str | ClockMode = ClockMode.REAL,
    time_scale: float = 1.0,
    recordings_dir: Path | str | None = None,
    username: str = "dialer",
    password: str = "dialer-secret",
    epoch: float | None = None,
) -> SimPbx:
    """Start simpbx in this event loop; ``sim.base_url`` is the ARI URL, ``sim`` the controller.

    Call ``await sim.close()`` when done (or use :func:`running_simpbx`).
    """
    sim = SimPbx(
        clock=clock,
        time_scale=time_scale,
        recordings_dir=recordings_dir,
        username=username,
        password=password,
        epoch=epoch,
    )
    await sim.start(host, port)
    return sim


@contextlib.asynccontextmanager
async def running_simpbx(**kwargs: Any) -> AsyncIterator[SimPbx]:
    """``async with running_simpbx(clock="manual") as sim: ...``"""
    sim = await start_simpbx(**kwargs)
    try:
        yield sim
    finally:
        await sim.close()
