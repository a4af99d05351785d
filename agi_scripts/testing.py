"""``FakeAsterisk``: the Asterisk side of FastAGI, for tests and the benchmark.

Plays what ``res_agi.c`` does, as captured from Asterisk 22.10.1 in
``shared/asterisk-reference/agi`` (copied to ``tests/agi/data``): it sends the
environment block (a real captured one, with chosen lines rewritten), then
answers each command the way the capture shows:

* ``GET VARIABLE X``: ``200 result=1 (value)``, or ``200 result=0`` when unset;
  without a name, the multi-line ``520-`` usage text; ``GET FULL VARIABLE ${X}``
  likewise (only a single ``${X}`` is evaluated);
* ``SET VARIABLE X "v"``: ``200 result=1`` (quotes removed from the value);
* ``VERBOSE``: ``200 result=1``; ``NOOP``: ``200 result=0``;
* ``CHANNEL STATUS``: ``200 result=4`` (Ring), ``511`` once hung up;
* ``EXEC App``: ``200 result=0`` (``-2`` for an unknown application, ``-1`` once hung up);
* ``HANGUP``: ``200 result=1`` then a bare ``HANGUP`` line;
* anything else: ``510 Invalid or unknown command`` (recorded in ``unknown``).

A command sent before the previous reply arrived is recorded in ``pipelined``
(res_agi.c reads through stdio but polls the fd, so it would stall on it).

``hangup_after=N`` sends the bare ``HANGUP`` line Asterisk sends when the
caller hangs up, after the N-th reply (0: right after the environment block).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

KNOWN_APPS = frozenset({"Playback", "Wait", "NoOp", "Answer", "Hangup", "Set", "Goto"})
USAGE_520 = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b"Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. "
    b"Returns <literal>1</literal> if <replaceable>variablename</replaceable> is set and "
    b"returns the variable in parentheses.\n"
    b"Example return code: 200 result=1 (testvariable)\n"
    b"520 End of proper usage.\n"
)


def rewrite_env(template: bytes, changes: Mapping[str, str | None]) -> bytes:
    """A captured environment block with some ``agi_*`` lines replaced (order kept).

    A value of None removes the line; keys not in the block (e.g. ``agi_arg_3``)
    are added at the end, before the terminating empty line.
    """
    lines = template.decode("utf-8").split("\n")
    assert lines[-2:] == ["", ""], "a captured block ends with an empty line"
    out: list[str] = []
    seen: set[str] = set()
    for line in lines[:-2]:
        key = line.split(":", 1)[0]
        if key in changes:
            seen.add(key)
            value = changes[key]
            if value is not None:
                out.append(f"{key}: {value}")
        else:
            out.append(line)
    out.extend(f"{k}: {val}" for k, val in changes.items() if k not in seen and val is not None)
    return ("\n".join(out) + "\n\n").encode("utf-8")


def call_env(
    template: bytes,
    *,
    script: str | None = None,
    args: list[str] | None = None,
    uniqueid: str | None = None,
    callerid: str | None = None,
    extension: str | None = None,
) -> bytes:
    """Rewrite a captured block for another call: script, arguments, ids (as res_agi.c would)."""
    changes: dict[str, str | None] = {}
    if script is not None:
        changes["agi_network_script"] = script
        changes["agi_request"] = "agi://127.0.0.1:4573/" + script
    if uniqueid is not None:
        changes["agi_uniqueid"] = uniqueid
    if callerid is not None:
        changes["agi_callerid"] = callerid
    if extension is not None:
        changes["agi_extension"] = extension
    if args is not None:
        old = [
            ln.split(":", 1)[0] for ln in template.decode().split("\n") if ln.startswith("agi_arg_")
        ]
        for key in old:
            changes[key] = None
        for i, value in enumerate(args, start=1):
            changes[f"agi_arg_{i}"] = value
    return rewrite_env(template, changes)


@dataclass
class PeerResult:
    """What happened in one session, from Asterisk's side."""

    commands: list[str] = field(default_factory=list)
    set_vars: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    pipelined: list[str] = field(default_factory=list)  # commands sent before a reply
    closed_by_server: bool = False
    hung_up: bool = False


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


class FakeAsterisk:
    """One FastAGI session from Asterisk's side over a real TCP connection."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        channel_vars: Mapping[str, str] | None = None,
        hangup_after: int | None = None,
        send_trying: bool = False,
        timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.vars = dict(channel_vars or {})
        self.hangup_after = hangup_after
        self.send_trying = send_trying
        self.timeout = timeout

    def _reply(self, command: str, result: PeerResult) -> bytes:
        dead = result.hung_up
        words = command.split(" ")
        if command.startswith("GET VARIABLE"):
            name = command[len("GET VARIABLE") :].strip()
            if not name:
                return USAGE_520
            value = self.vars.get(name)
            return b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode()
        if command.startswith("GET FULL VARIABLE "):
            expr = command[len("GET FULL VARIABLE ") :].strip()
            inner = expr[2:-1] if expr.startswith("${") and expr.endswith("}") else None
            value = self.vars.get(inner) if inner is not None else None
            return b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode()
        if command.startswith("SET VARIABLE "):
            name, _, value = command[len("SET VARIABLE ") :].partition(" ")
            self.vars[name] = result.set_vars[name] = _unquote(value)
            return b"200 result=1\n"
        if words[0] == "VERBOSE":
            return b"200 result=1\n"
        if command == "NOOP":
            return b"200 result=0\n"
        if command == "CHANNEL STATUS":
            if dead:
                return b"511 Command Not Permitted on a dead channel or intercept routine\n"
            return b"200 result=4\n"
        if words[0] == "EXEC" and len(words) > 1:
            if dead:
                return b"200 result=-1\n"
            return b"200 result=0\n" if words[1] in KNOWN_APPS else b"200 result=-2\n"
        if command == "HANGUP":
            result.hung_up = True
            return b"200 result=1\nHANGUP\n"
        result.unknown.append(command)
        return b"510 Invalid or unknown command\n"

    async def run(self, env: bytes) -> PeerResult:
        """Send ``env``, answer commands until the server closes the connection."""
        result = PeerResult()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(env)
                if self.hangup_after == 0:
                    writer.write(b"HANGUP\n")
                    result.hung_up = True
                await writer.drain()
                buffer = b""
                while True:
                    while b"\n" not in buffer:
                        chunk = await reader.read(4096)
                        if not chunk:
                            break
                        buffer += chunk
                    if b"\n" not in buffer:
                        result.closed_by_server = True
                        break
                    line, _, buffer = buffer.partition(b"\n")
                    if b"\n" in buffer:
                        # res_agi.c would not see this command (it is in its stdio buffer
                        # while it polls the fd): real Asterisk stalls here.
                        result.pipelined.append(buffer.decode("utf-8", "replace"))
                    command = line.decode("utf-8")
                    result.commands.append(command)
                    reply = self._reply(command, result)
                    if self.send_trying:
                        reply = b"100 result=0 Trying...\n" + reply
                    if self.hangup_after is not None and len(result.commands) == self.hangup_after:
                        reply += b"HANGUP\n"
                        result.hung_up = True
                    writer.write(reply)
                    await writer.drain()
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                result.closed_by_server = True
        return result
