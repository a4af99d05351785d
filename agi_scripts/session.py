"""One FastAGI session: send commands, read replies, surface a hangup as ``AgiHangup``.

Every read is bounded by the command timeout and by the stream's size limit;
EOF becomes ``AgiConnectionLost`` (panoramisk 1.4 instead feeds ``''`` to
``int()`` and raises ``ValueError`` on the *next* command).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from agi_scripts.errors import (
    AgiCommandError,
    AgiConnectionLost,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
)
from agi_scripts.protocol import AgiEnv, AgiReply, parse_reply

if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)


# The replies nearly every command gets (SET VARIABLE, GET VARIABLE of an unset variable):
# parsed once here instead of through the reply grammar each time (AgiReply is frozen).
_COMMON_REPLIES = {line: parse_reply(line) for line in ("200 result=1", "200 result=0")}


def quote(value: str) -> str:
    """Quote one command argument (res_agi.c parse_args: backslash escapes, double quotes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


class AgiSession:
    """The command side of one connection; handlers receive one of these."""

    def __init__(
        self,
        env: AgiEnv,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        command_timeout: float | None = 10.0,
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout
        self.hung_up = False
        self.commands_sent = 0
        self.variables_set: dict[str, str] = {}

    async def _readline(self) -> str:
        try:
            data = await self._reader.readline()
        except ValueError as exc:  # LimitOverrunError surfaces as ValueError from readline()
            raise AgiProtocolError("AGI reply longer than the size limit") from exc
        except ConnectionError as exc:
            raise AgiConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
        if not data.endswith(b"\n"):
            raise AgiConnectionLost("peer closed the connection")
        try:
            return data[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AgiProtocolError("AGI reply is not UTF-8") from exc

    async def _reply(self) -> tuple[str, bool]:
        """The reply line to the command just sent, and whether a HANGUP came first."""
        await self._writer.drain()
        hangup_seen = False
        line = await self._readline()
        while True:
            if line == "HANGUP":
                # Sent on its own line, between replies, when the caller hangs up during
                # the AGI; the reply to our command still follows.
                hangup_seen = not self.hung_up
                self.hung_up = True
            elif line.startswith("100 "):
                pass  # "100 Trying..." precedes the real reply
            elif line.startswith("520-"):
                # a usage text of free lines, closed by "520 End of proper usage."
                while not line.startswith("520 "):
                    line = await self._readline()
                return line, hangup_seen
            else:
                return line, hangup_seen
            line = await self._readline()

    async def command(self, command: str) -> AgiReply:
        """Send one command and return its reply; raises on error codes.

        Raises ``AgiHangup`` when Asterisk reports a hangup; the reply that
        follows the ``HANGUP`` line is read first, so the stream stays in step
        and the handler (or the server's failure policy) may still set variables.

        One command at a time, never pipelined: res_agi.c reads the socket
        through stdio (``fgets``) but waits for the *fd* to become readable
        before each command, so a second command already sitting in its stdio
        buffer would not be seen until more bytes arrived.
        """
        if self._writer.is_closing():
            raise AgiConnectionLost("connection already closed")
        self._writer.write(command.encode("utf-8") + b"\n")
        self.commands_sent += 1
        try:
            if self._timeout is None:  # the caller bounds the script (AgiServer: handler_timeout_s)
                line, hangup_seen = await self._reply()
            else:
                async with asyncio.timeout(self._timeout):
                    line, hangup_seen = await self._reply()
        except TimeoutError as exc:
            raise AgiTimeout(f"no reply to {command.split(' ', 1)[0]} in {self._timeout}s") from exc
        except ConnectionError as exc:
            raise AgiConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
        reply = _COMMON_REPLIES.get(line) or parse_reply(line)
        if hangup_seen:
            raise AgiHangup("caller hung up during the AGI")
        if reply.code != 200:
            raise AgiCommandError(command, reply.code, line)
        return reply

    async def get_variable(self, name: str) -> str | None:
        """``GET VARIABLE``: the value, or None when the variable is not set."""
        reply = await self.command(f"GET VARIABLE {name}")
        return reply.data if reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        try:
            await self.command(f"SET VARIABLE {name} {quote(value)}")
        except AgiHangup as exc:
            if not isinstance(exc, AgiConnectionLost):
                self.variables_set[name] = value  # it ran; the hangup came beside it
            raise
        self.variables_set[name] = value

    async def set_variables(self, values: Mapping[str, str]) -> None:
        """Set variables one command at a time (see ``command`` on pipelining).

        If the caller hangs up midway, the remaining variables are still set
        (Asterisk accepts ``SET VARIABLE`` on a hung-up channel, and the ``h``
        extension may read them), then ``AgiHangup`` is raised.
        """
        hangup: AgiHangup | None = None
        for name, value in values.items():
            try:
                await self.set_variable(name, value)
            except AgiHangup as exc:
                if isinstance(exc, AgiConnectionLost):
                    raise
                hangup = exc
        if hangup is not None:
            raise hangup

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {level}")
