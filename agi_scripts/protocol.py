"""FastAGI wire format: the environment block Asterisk sends on connect, and command replies.

No sockets here: bytes in, values out. The reply grammar is panoramisk's
(``panoramisk.utils.parse_agi_result``); what panoramisk 1.4 gets wrong is
handled around it: a ``HANGUP`` line is not a reply (the session deals with
it), a ``?query`` in the script name is split off, and anything that does not
parse is an ``AgiProtocolError`` instead of a ``ValueError`` deep in a handler.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from panoramisk.utils import parse_agi_result

from agi_scripts.errors import AgiHangup, AgiProtocolError

_LINE = re.compile(r"agi_[a-z0-9_]+:[^\n]*")
_BLOCK = re.compile(r"(?:agi_[a-z0-9_]+:[^\n]*\n)+\n")
# One line of a block _BLOCK accepted: the key (up to the first colon) and the value
# without its one separating space ("agi_accountcode: \n": the value may be empty).
_PAIR = re.compile(r"(agi_[a-z0-9_]+): ?([^\n]*)\n")


def route_key(script: str) -> str:
    """The route-table key for an ``agi_network_script`` value.

    The path part only (``res_agi.c`` passes ``agi://host/script?x=y`` through
    verbatim, query included: panoramisk 1.4 then finds no route), without
    surrounding slashes, with dashes read as underscores so the reference
    spelling ``desk-check`` and the Python spelling ``desk_check`` both work.
    """
    path = script.split("?", 1)[0].strip().strip("/")
    return path.replace("-", "_")


@dataclass(frozen=True, slots=True)
class AgiEnv:
    """The parsed environment block of one FastAGI session."""

    headers: Mapping[str, str]
    script: str  # route key, see route_key()
    query: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()

    def get(self, key: str, default: str = "") -> str:
        return self.headers.get(key, default)

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    @property
    def callerid(self) -> str:
        value = self.headers.get("agi_callerid", "")
        # Asterisk writes "unknown" for an absent caller id (as for agi_dnid)
        return "" if value == "unknown" else value

    def arg(self, index: int, default: str = "") -> str:
        """Dialplan argument ``index`` (1-based, ``agi_arg_N``); ``default`` if absent or empty."""
        if 1 <= index <= len(self.args) and self.args[index - 1] != "":
            return self.args[index - 1]
        return default


def parse_env(block: bytes) -> AgiEnv:
    """Parse the environment block (``key: value`` lines ending with an empty line).

    Strict on purpose: a port scanner, an HTTP health check or random bytes are
    refused with ``AgiProtocolError`` before any route runs.
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AgiProtocolError(f"environment block is not UTF-8 (byte {exc.start})") from exc
    if _BLOCK.fullmatch(text) is None:
        # slow path, only to name the offending line in the error
        for number, line in enumerate(text.split("\n"), start=1):
            if line and not _LINE.fullmatch(line):
                raise AgiProtocolError(f"environment line {number} is not 'agi_<name>: <value>'")
        raise AgiProtocolError("environment block does not end with an empty line")
    headers = dict(_PAIR.findall(text))
    raw_script = headers.get("agi_network_script")
    if raw_script is None:
        raise AgiProtocolError("environment block has no agi_network_script")
    _path, _sep, query = raw_script.partition("?")
    return AgiEnv(
        headers=headers,
        script=route_key(raw_script),
        query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
        args=_args(text, headers),
    )


def _args(text: str, headers: Mapping[str, str]) -> tuple[str, ...]:
    """The ``agi_arg_N`` values in the order of N (Asterisk numbers them 1, 2, ... n)."""
    args: list[str] = []
    while (value := headers.get(f"agi_arg_{len(args) + 1}")) is not None:
        args.append(value)
    # As many agi_arg_ lines as 1..n found: no gap, no duplicate, no other spelling
    if text.count("\nagi_arg_") + text.startswith("agi_arg_") == len(args):
        return tuple(args)
    numbered = sorted(
        (int(key[8:]), value)
        for key, value in headers.items()
        if key.startswith("agi_arg_") and key[8:].isdigit()
    )
    return tuple(value for _index, value in numbered)


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One command reply: ``code``, ``result`` (``result=`` value), ``data`` (in parentheses)."""

    code: int
    result: str
    data: str
    line: str


def parse_reply(line: str) -> AgiReply:
    """Parse one reply line (not ``HANGUP``, not ``100 Trying``: the session handles those)."""
    try:
        parsed = parse_agi_result(line)
    except (ValueError, TypeError) as exc:
        raise AgiProtocolError(f"unparseable AGI reply ({len(line)} chars)") from exc
    error = parsed.get("error")
    if error == "AGIResultHangup":
        raise AgiHangup("channel hung up during the command")
    if error == "AGIAppError":
        # panoramisk turns "200 result=-1" into an error dict; it is a normal reply
        return AgiReply(200, "-1", "", line)
    if error is not None:
        code = parsed.get("status_code")
        if not isinstance(code, int):
            code = int(line[:3]) if line[:3].isdigit() else 0
        return AgiReply(code, "", "", line)
    value, data = parsed.get("result", ("", ""))
    return AgiReply(int(parsed["status_code"]), str(value), str(data or ""), line)
