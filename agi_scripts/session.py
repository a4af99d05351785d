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
    from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)


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
        command_timeout: float = 10.0,
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

    async def command(self, command: str) -> AgiReply:
        """Send one command and return its reply; raises on error codes.

        Raises ``AgiHangup`` when Asterisk reports a hangup; the reply that
        follows the ``HANGUP`` line is read first, so the stream stays in step
        and the handler (or the server's failure policy) may still set variables.
        """
        return (await self.pipeline([command]))[0]

    async def pipeline(self, commands: Sequence[str]) -> list[AgiReply]:
        """Send several commands at once and read their replies in order.

        res_agi.c reads one command line, runs it, writes its reply, then reads
        the next line: commands written together are executed in order, and one
        round trip replaces N. All replies are read before any error is raised.
        """
        if self._writer.is_closing():
            raise AgiConnectionLost("connection already closed")
        self._writer.write(b"".join(c.encode("utf-8") + b"\n" for c in commands))
        self.commands_sent += len(commands)
        hangup_seen = False
        lines: list[str] = []
        try:
            async with asyncio.timeout(self._timeout):
                await self._writer.drain()
                for _command in commands:
                    line = await self._readline()
                    while True:
                        if line == "HANGUP":
                            # Sent on its own line, between replies, when the caller hangs
                            # up during the AGI; the reply to our command still follows.
                            hangup_seen = hangup_seen or not self.hung_up
                            self.hung_up = True
                        elif line.startswith("100 "):
                            pass  # "100 Trying..." precedes the real reply
                        elif line.startswith("520-"):
                            # a usage text of free lines, closed by "520 End of proper usage."
                            while not line.startswith("520 "):
                                line = await self._readline()
                            break
                        else:
                            break
                        line = await self._readline()
                    lines.append(line)
        except TimeoutError as exc:
            first = commands[len(lines)].split(" ", 1)[0]
            raise AgiTimeout(f"no reply to {first} in {self._timeout}s") from exc
        except ConnectionError as exc:
            raise AgiConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
        replies = [parse_reply(line) for line in lines]
        if hangup_seen:
            raise AgiHangup("caller hung up during the AGI")
        for command, reply in zip(commands, replies, strict=True):
            if reply.code != 200:
                raise AgiCommandError(command, reply.code, reply.line)
        return replies

    async def get_variable(self, name: str) -> str | None:
        """``GET VARIABLE``: the value, or None when the variable is not set."""
        reply = await self.command(f"GET VARIABLE {name}")
        return reply.data if reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {quote(value)}")
        self.variables_set[name] = value

    async def set_variables(self, values: Mapping[str, str]) -> None:
        """Set several variables in one round trip (pipelined ``SET VARIABLE`` commands)."""
        await self.pipeline([f"SET VARIABLE {n} {quote(val)}" for n, val in values.items()])
        self.variables_set.update(values)

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {level}")
