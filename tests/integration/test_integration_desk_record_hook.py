"""The desk-phone recording hook in extensions.conf drives the real ``dialer recordings ingest``.

The dialplan lines of ``[desk-outbound]`` are evaluated the way Asterisk would
(``Set`` in order, ``${VAR}``, ``${STRFTIME(${EPOCH},UTC,fmt)}``) with sample
channel values; the MixMonitor post-command is split as ``/bin/sh`` would, its
``dialer`` part parsed by ``dialer.cli.build_parser()`` and then run for real
against a SQLite index and a WAV file: the recording is indexed as a desk call.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
import wave
from pathlib import Path

import pytest

from dialer.cli import build_parser, main

CONF = Path(__file__).parents[2] / "asterisk_conf" / "extensions.conf"
EPOCH = 1795000000  # 2026-11-18T11:06:40Z
SAMPLE_CHANNEL = {
    "EXTEN": "13812345678",
    "CALLERID(num)": "201",
    "UNIQUEID": "1795000000.42",
    "EPOCH": str(EPOCH),
    "DESK_DIAL": "13812345678",
    "TRUNK": "carrier",
}
VAR = re.compile(r"\$\{([^${}]+)\}")
STRFTIME = re.compile(r"\$\{STRFTIME\(([^,]*),([^,]*),([^)]*)\)\}")


def globals_of(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            section = m.group(1)
        elif section == "globals" and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def desk_lines(text: str) -> list[str]:
    """The application lines of ``[desk-outbound]`` extension ``_X.``, in order."""
    out: list[str] = []
    section, exten = "", ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            section = m.group(1)
        elif m := re.match(r"exten\s*=>\s*([^,]+),[^,]+,(.*)", line):
            exten = m.group(1).strip()
            if section == "desk-outbound" and exten == "_X.":
                out.append(m.group(2))
        elif (m := re.match(r"same\s*=>\s*[^,]+,(.*)", line)) and section == "desk-outbound":
            if exten == "_X.":
                out.append(m.group(1))
    return out


def substitute(value: str, variables: dict[str, str]) -> str:
    """Asterisk's substitution for what the hook uses; anything else fails the test."""

    def strftime(m: re.Match[str]) -> str:
        epoch, zone, fmt = (substitute(g, variables) for g in m.groups())
        assert zone == "UTC", "the hook's times must be UTC"
        return time.strftime(fmt, time.gmtime(int(epoch)))

    value = STRFTIME.sub(strftime, value)
    while m := VAR.search(value):
        name = m.group(1)
        assert name in variables, f"the hook uses ${{{name}}}, which nothing sets"
        value = value[: m.start()] + variables[name] + value[m.end() :]
    return value


def run_hook_dialplan() -> tuple[dict[str, str], str]:
    """Evaluate the desk context for a marked phone; returns (variables, MixMonitor args)."""
    text = CONF.read_text()
    variables = {**globals_of(text), **SAMPLE_CHANNEL, "DESK_RECORD": "1"}
    mixmonitor = ""
    lines = desk_lines(text)
    for app in lines:
        if m := re.fullmatch(r"Set\(([A-Z_]+)=(.*)\)", app):
            variables[m.group(1)] = substitute(m.group(2), variables)
        elif app.startswith("MixMonitor("):
            mixmonitor = substitute(app[len("MixMonitor(") : -1], variables)
    apps = [a.split("(", 1)[0] for a in lines]
    # Recorded only once the check allowed the call, and before the Dial it records.
    assert apps.index("MixMonitor") > lines.index(
        'GotoIf($["${DESK_DECISION}" != "ALLOW"]?blocked)'
    )
    assert apps.index("MixMonitor") < apps.index("Dial")
    assert 'GotoIf($["${DESK_RECORD}" != "1"]?dial)' in lines
    return variables, mixmonitor


def ingest_argv(mixmonitor: str, dialer_bin: str) -> tuple[list[str], list[str]]:
    """(MixMonitor args, the argv after ``dialer`` in the post-command)."""
    args = mixmonitor.split(",")
    assert len(args) == 3, f"MixMonitor must get file,options,command (no stray comma): {args}"
    assert '"' not in args[2] and "'" not in args[2]
    words = shlex.split(args[2])
    start = words.index(dialer_bin) + 1
    end = next(i for i in range(start, len(words)) if words[i] in ("&&", "||", ";", "|"))
    return args, words[start:end]


def test_hook_command_parses_with_the_real_ingest_parser() -> None:
    variables, mixmonitor = run_hook_dialplan()
    args, argv = ingest_argv(mixmonitor, variables["DIALER_BIN"])
    assert args[0] == variables["DESK_REC_FILE"] and "b" in args[1]
    parsed = build_parser().parse_args(argv)
    assert (parsed.command, parsed.action) == ("recordings", "ingest")
    assert parsed.name == variables["DESK_REC_NAME"]
    assert parsed.file == args[0]
    assert parsed.number == SAMPLE_CHANNEL["EXTEN"]
    assert parsed.agent == SAMPLE_CHANNEL["CALLERID(num)"]
    assert parsed.origin == "desk"
    assert parsed.started_at == "2026-11-18T11:06:40Z"


def test_hook_command_indexes_the_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    variables, mixmonitor = run_hook_dialplan()
    _, argv = ingest_argv(mixmonitor, variables["DIALER_BIN"])
    # The same command, with the spool file in a temp directory.
    spool_file = tmp_path / Path(variables["DESK_REC_FILE"]).name
    argv = [str(spool_file) if a == variables["DESK_REC_FILE"] else a for a in argv]
    with wave.open(str(spool_file), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * 8000 * 3)
    monkeypatch.setenv("DIALER_DB_URL", f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite3'}")
    monkeypatch.setenv("DIALER_RECORDINGS_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("DIALER_NUMBER_KEY", "integration-secret-key-0123456789abcdef")
    monkeypatch.delenv("DIALER_DB_SCHEMA", raising=False)
    assert main(argv) == 0, capsys.readouterr().err
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["name"] == variables["DESK_REC_NAME"]
    assert rec["sha256"] == hashlib.sha256(spool_file.read_bytes()).hexdigest()
    assert rec["origin"] == "desk"
    assert rec["agent"] == "201"
    assert "13812345678" not in json.dumps(rec)
