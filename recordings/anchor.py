"""Signed anchors of the audit log's head, kept outside the database.

An anchor is one JSON line: the format, the last entry's ``seq`` and ``hash``, the
time, the signing key's id and an Ed25519 signature over the rest
(``recordings.signing``). ``dialer audit anchor`` writes one, and ``dialer serve`` /
``dialer recordings serve`` write one on a schedule when the head moved
(``DIALER_AUDIT_ANCHOR``: ``file:PATH`` or a path, appended to with fsync; or
``syslog``, ``syslog:/dev/log``, ``syslog:HOST:PORT``). ``dialer audit verify
--anchor FILE`` checks every line's signature and proves the log still holds each
anchored entry unchanged: a rewritten or dropped tail shows, even when the head row
was rewritten along with it. Syslog lines can be checked as they are (``grep
dialer-audit-anchor``): anything before the first ``{`` of a line is ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.clock import utcnow
from recordings import audit
from recordings.model import Problem
from recordings.signing import Signer, canonical, fingerprint, verify_signature

FORMAT = "dialer-audit-anchor/1"
MAX_LINE = 4096

logger = logging.getLogger(__name__)


class AnchorError(ValueError):
    """An anchor target or file cannot be used (names it)."""


def anchor_record(seq: int, digest: str, at: datetime, signer: Signer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": FORMAT,
        "seq": seq,
        "hash": digest,
        "at": at.astimezone(UTC).isoformat(),
        "key": signer.key_id,
    }
    body["sig"] = signer.sign(canonical(body))
    return body


def anchor_line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


class AnchorSink(Protocol):
    """Where anchors go; ``write`` blocks (it is run in a thread)."""

    def write(self, line: str) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FileSink:
    path: Path

    def write(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def describe(self) -> str:
        return str(self.path)


class SyslogSink:
    def __init__(self, address: str | tuple[str, int]) -> None:
        self._address = address
        self._handler = logging.handlers.SysLogHandler(
            address=address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV
        )

    def write(self, line: str) -> None:
        record = logging.LogRecord(
            "dialer-audit-anchor",
            logging.INFO,
            __file__,
            0,
            "dialer-audit-anchor: %s",
            (line,),
            None,
        )
        self._handler.emit(record)

    def describe(self) -> str:
        return f"syslog {self._address}"

    def close(self) -> None:
        self._handler.close()


def sink_of(target: str) -> AnchorSink:
    """``file:PATH``, ``PATH``, ``syslog``, ``syslog:/dev/log`` or ``syslog:HOST:PORT``."""
    if not target.strip():
        raise AnchorError("no anchor target: give --to or set DIALER_AUDIT_ANCHOR")
    if target == "syslog":
        return SyslogSink("/dev/log")
    if target.startswith("syslog:"):
        rest = target[len("syslog:") :]
        if rest.startswith("/"):
            return SyslogSink(rest)
        host, _, port = rest.rpartition(":")
        if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise AnchorError(f"anchor target {target!r}: expected syslog:HOST:PORT")
        return SyslogSink((host, int(port)))
    path = Path(target[len("file:") :] if target.startswith("file:") else target)
    if not path.parent.is_dir():
        raise AnchorError(f"anchor target {target!r}: folder {path.parent} does not exist")
    return FileSink(path)


async def write_anchor(engine: AsyncEngine, signer: Signer, sink: AnchorSink) -> dict[str, Any]:
    """Sign the log's last entry (read from the log, not the head row) and write it out."""
    seq, digest = await audit.last_entry(engine)
    record = anchor_record(seq, digest, utcnow(), signer)
    await asyncio.to_thread(sink.write, anchor_line(record))
    return record


async def anchor_periodically(
    engine: AsyncEngine, signer: Signer, sink: AnchorSink, every: float
) -> None:
    """Write an anchor every ``every`` seconds while the head moves (until cancelled).
    A failed write is logged as an error and tried again at the next tick."""
    written: tuple[int, str] | None = None
    while True:
        try:
            current = await audit.last_entry(engine)
            if current != written:
                record = await write_anchor(engine, signer, sink)
                written = (int(record["seq"]), str(record["hash"]))
                logger.info("audit anchor: seq %s written to %s", record["seq"], sink.describe())
        except OSError as exc:
            logger.error("audit anchor to %s failed: %s", sink.describe(), exc)
        await asyncio.sleep(every)


def read_anchors(
    path: Path, public: Ed25519PublicKey
) -> tuple[list[audit.AnchorPoint], list[Problem]]:
    """Every anchor line of a file, checked: its signature, its form, its order.
    Raises ``AnchorError`` when the file cannot be read at all."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AnchorError(f"anchor file {path}: {exc.strerror}") from exc
    key_id = fingerprint(public)
    points: list[audit.AnchorPoint] = []
    problems: list[Problem] = []
    last_seq = -1
    for number, line_bytes in enumerate(raw.splitlines(), start=1):
        where = f"{path.name} line {number}"
        if not line_bytes.strip():
            continue
        record, error = _parse(line_bytes)
        if record is None:
            problems.append(Problem("anchor", where, f"malformed anchor: {error}"))
            continue
        sig = record.pop("sig")
        if record["key"] != key_id:
            problems.append(
                Problem(
                    "anchor",
                    where,
                    f"signed with key {record['key']}, not the given public key {key_id}",
                )
            )
            continue
        if not verify_signature(public, canonical(record), sig):
            problems.append(
                Problem("anchor", where, "the signature does not verify: a forged or edited anchor")
            )
            continue
        seq = int(record["seq"])
        if seq < last_seq:
            problems.append(
                Problem("anchor", where, f"seq {seq} after seq {last_seq}: anchors out of order")
            )
        last_seq = max(last_seq, seq)
        points.append(audit.AnchorPoint(seq, str(record["hash"]), str(record["at"]), where))
    return points, problems


def _parse(line_bytes: bytes) -> tuple[dict[str, Any] | None, str]:
    if len(line_bytes) > MAX_LINE:
        return None, f"line longer than {MAX_LINE} bytes"
    try:
        line = line_bytes.decode()
    except UnicodeDecodeError:
        return None, "not UTF-8"
    start = line.find("{")
    if start < 0:
        return None, "no JSON object"
    try:
        record = json.loads(line[start:])
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg})"
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None, f"not a {FORMAT} record"
    fields = {"format": str, "seq": int, "hash": str, "at": str, "key": str, "sig": str}
    if set(record) != set(fields):
        return None, f"expected exactly the fields {', '.join(sorted(fields))}"
    for name, kind in fields.items():
        value = record[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            return None, f"field {name!r} must be {'an integer' if kind is int else 'a string'}"
    if record["seq"] < 0 or len(record["hash"]) != 64:
        return None, "seq must be >= 0 and hash 64 hex digits"
    return record, ""
