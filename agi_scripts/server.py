"""The hardened asyncio FastAGI server: accept, read the environment, route, always close.

Our own connection handling around panoramisk's reply grammar, fixing the
five defects of panoramisk 1.4 (docs: shared/design/architecture.md):

1. EOF before/inside the environment block: ``readuntil`` raises instead of
   spinning; a port scan or TCP health check costs one short-lived task.
2. Plain ``def`` handlers: refused when the ``RouteTable`` is built.
3. ``HANGUP``: raised as ``AgiHangup`` by the session, stream kept in step.
4. Cancellation: only ``Exception`` is caught; ``stop()`` cancels open
   sessions, awaits them, and every socket is closed in ``finally``.
5. ``?query`` in the URL: split off before the route lookup.

Plus: a timeout and a size limit on the environment block, a cap on
concurrent sessions (over it: fail-closed variables, handler not run), and
one structured log line per session. Every failure the server can still talk
about ends in dialplan variables: ``DIALER_AGI_STATUS`` plus the route's own
failure variables (e.g. ``DESK_DECISION=BLOCK``).

Embedding (``dialer serve``)::

    server = AgiServer(routes, AgiServerConfig(host="0.0.0.0", port=4573))
    await server.start()      # listening when this returns; server.port is the bound port
    ...
    await server.stop()       # stop accepting, grace period, cancel and await the rest
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from agi_scripts import variables as v
from agi_scripts.errors import (
    AgiConnectionLost,
    AgiEnvironmentTooLarge,
    AgiError,
    AgiHangup,
    AgiTimeout,
)
from agi_scripts.protocol import AgiEnv, parse_env
from agi_scripts.routes import Route, RouteTable
from agi_scripts.session import AgiSession
from compliance.numbers import mask

logger = logging.getLogger(__name__)

_DIGIT_RUN = re.compile(r"\+?\d(?:[\d -]{5,})\d")


def redact(text: str) -> str:
    """Mask every run of 7 or more digits (a phone number, maybe) in free text."""
    return _DIGIT_RUN.sub(lambda m: mask(m.group()), text)


@dataclass(frozen=True, slots=True)
class AgiServerConfig:
    """Listening address and the limits that keep one bad peer from hurting the others."""

    host: str = "127.0.0.1"
    port: int = 4573
    env_timeout_s: float = 5.0  # whole environment block must arrive within this
    env_max_bytes: int = 16384  # also bounds a single reply line
    handler_timeout_s: float = 10.0  # a whole script, its commands, gate and database included
    command_timeout_s: float = 2.0  # each failure-reporting command after a failure
    max_sessions: int = 256  # handlers running at once; more get BUSY variables
    max_connections: int = 1024  # open sockets; more are closed at once
    shutdown_grace_s: float = 2.0
    close_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("env_timeout_s", "command_timeout_s", "handler_timeout_s", "close_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"agi.{name} must be > 0")
        if self.env_max_bytes < 256:
            raise ValueError("agi.env_max_bytes must be >= 256 (a real block is ~550 bytes)")
        if self.max_sessions < 1 or self.max_connections < self.max_sessions:
            raise ValueError("agi.max_sessions must be >= 1 and <= agi.max_connections")
        if not 0 <= self.port <= 65535:
            raise ValueError("agi.port must be 0..65535")


class AgiServer:
    """Serves a ``RouteTable``. One task per connection, all tracked and awaited on stop."""

    def __init__(self, routes: RouteTable, config: AgiServerConfig | None = None) -> None:
        self.routes = routes
        self.config = config or AgiServerConfig()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = 0
        self.stats: dict[str, int] = {}
        #: sessions by (route, outcome); "" for no environment, "unknown" for a script
        #: that is not a route (the label set stays closed whatever peers send)
        self.route_stats: dict[tuple[str, str], int] = {}

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and start accepting; returns once listening."""
        if self._server is not None:
            raise RuntimeError("AgiServer already started")
        self._server = await asyncio.start_server(
            self._on_connect,
            self.config.host,
            self.config.port,
            limit=self.config.env_max_bytes,
            reuse_address=True,
            # asyncio's default backlog is 100: a burst of calls beyond it gets its SYNs
            # dropped and retried a second later. Let the kernel queue what we would take.
            backlog=self.config.max_connections,
        )
        logger.info(
            "agi listening host=%s port=%d routes=%s",
            self.config.host,
            self.port,
            ",".join(self.routes),
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("AgiServer is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def open_connections(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        """Stop accepting, let sessions finish for the grace period, cancel and await the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        pending = set(self._tasks)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=self.config.shutdown_grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            logger.info("agi stopped cancelled_sessions=%d", len(pending))
        await server.wait_closed()

    async def serve_forever(self) -> None:
        """Start, serve until cancelled, then stop (the standalone ``dialer agi serve``)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> AgiServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- one connection ----------------------------------------------------------------------
    def _count(self, outcome: str) -> None:
        self.stats[outcome] = self.stats.get(outcome, 0) + 1

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback that starts a task we own, rather than an ``async def`` that
        # asyncio wraps in a task of its own: on 3.11.7 that wrapper's done-callback calls
        # task.exception() on a cancelled task and logs a spurious error at every shutdown.
        task = asyncio.get_running_loop().create_task(self._session(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._session_done)

    def _session_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # only a BaseException that is not Exception gets here (all else is handled)
            logger.error("agi session task died: %r", exc)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started = time.perf_counter()
        env: AgiEnv | None = None
        outcome = "ok"
        try:
            if len(self._tasks) > self.config.max_connections or self._server is None:
                outcome = "rejected_connection"
                return
            env = await self._read_env(reader)
            outcome = await self._run(env, reader, writer)
        except AgiError as exc:
            outcome = exc.error_id
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self._count(outcome)
            route = "" if env is None else env.script
            if route and self.routes.get(route) is None:
                route = "unknown"
            key = (route, outcome)
            self.route_stats[key] = self.route_stats.get(key, 0) + 1
            await self._close(writer)
            self._log(env, outcome, started)

    async def _read_env(self, reader: asyncio.StreamReader) -> AgiEnv:
        try:
            async with asyncio.timeout(self.config.env_timeout_s):
                block = await reader.readuntil(b"\n\n")
        except asyncio.IncompleteReadError as exc:
            raise AgiConnectionLost(
                f"peer closed after {len(exc.partial)} bytes of environment"
            ) from exc
        except asyncio.LimitOverrunError as exc:
            raise AgiEnvironmentTooLarge(
                f"environment block over {self.config.env_max_bytes} bytes"
            ) from exc
        except TimeoutError as exc:
            raise AgiTimeout(f"no complete environment in {self.config.env_timeout_s}s") from exc
        except ConnectionError as exc:
            raise AgiConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
        return parse_env(block)

    async def _run(
        self, env: AgiEnv, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str:
        # no per-command timer: the handler's deadline bounds its commands (one timer, not N)
        session = AgiSession(env, reader, writer, command_timeout=None)
        route = self.routes.get(env.script)
        if route is None:
            await self._fail(session, None, v.AgiStatus.NOT_FOUND, "no_route")
            return "no_route"
        if self._running >= self.config.max_sessions:
            await self._fail(session, route, v.AgiStatus.BUSY, "overloaded")
            return "overloaded"
        self._running += 1
        try:
            async with asyncio.timeout(self.config.handler_timeout_s):
                await route.handler(session)
        except TimeoutError:
            # the caller is waiting in the dialplan: refuse rather than hang on
            await self._fail(session, route, v.AgiStatus.FAILED, "handler_timeout")
            return "handler_timeout"
        except AgiHangup:
            return "hangup"
        except AgiError as exc:
            await self._fail(session, route, v.AgiStatus.FAILED, exc.error_id)
            return exc.error_id
        except Exception as exc:
            # The message may quote SQL parameters, i.e. phone numbers: masked; the full
            # traceback only at DEBUG level.
            logger.error(
                "agi handler failed script=%s uniqueid=%s error=%s: %s",
                env.script,
                env.uniqueid,
                exc.__class__.__name__,
                redact(str(exc))[:500],
            )
            logger.debug("agi handler traceback", exc_info=True)
            await self._fail(session, route, v.AgiStatus.FAILED, "handler_error")
            return "handler_error"
        finally:
            self._running -= 1
        return "hangup" if session.hung_up else "ok"

    async def _fail(
        self, session: AgiSession, route: Route | None, status: v.AgiStatus, error_id: str
    ) -> None:
        """Best effort: tell the dialplan what happened. If the peer is gone, log and move on
        (the dialplan then sees no ALLOW and refuses the call: it fails closed on its own)."""
        values = {v.AGI_STATUS: status.value, v.AGI_ERROR: error_id}
        if route is not None:
            values.update(route.failure_variables)
        try:
            async with asyncio.timeout(self.config.command_timeout_s):
                await session.set_variables(values)
        except (AgiError, OSError, TimeoutError) as exc:
            logger.info(
                "agi failure variables not delivered script=%s uniqueid=%s error=%s",
                session.env.script,
                session.env.uniqueid,
                exc.__class__.__name__,
            )

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        if writer.transport.get_write_buffer_size() == 0:
            return  # nothing left to send: the socket closes on the next loop turn
        try:
            async with asyncio.timeout(self.config.close_timeout_s):
                await writer.wait_closed()
        except TimeoutError:
            # the peer stopped reading; drop what is left rather than hold the socket
            writer.transport.abort()
        except OSError as exc:
            logger.debug("agi close: peer reset (%s)", exc.__class__.__name__)

    def _log(self, env: AgiEnv | None, outcome: str, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        if env is None:
            # no environment: port scans, health checks, garbage. Not worth an INFO line each.
            logger.log(
                logging.DEBUG if outcome == "connection_lost" else logging.WARNING,
                "agi session refused outcome=%s duration_ms=%.1f",
                outcome,
                ms,
            )
            return
        logger.log(
            logging.INFO if outcome in ("ok", "hangup") else logging.WARNING,
            # no channel name: a Local channel's name carries the dialled number
            "agi session script=%s uniqueid=%s outcome=%s duration_ms=%.1f",
            env.script,
            env.uniqueid,
            outcome,
            ms,
        )
