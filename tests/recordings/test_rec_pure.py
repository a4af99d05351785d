"""Pure parts: names, paths, Range parsing, number digests and masking, the store."""

from __future__ import annotations

import ast
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rec_helpers import NUMBER, SECRET, Env, wav_bytes

import recordings
from recordings.http import RangeNotSatisfiable, parse_range
from recordings.model import AttemptMeta
from recordings.naming import (
    BadName,
    check_ident,
    check_name,
    content_path,
    recording_name_for_attempt,
)
from recordings.pii import NumberKeyError, NumberKeys, mask_text
from recordings.store import FileStore, SpoolSource


@pytest.mark.parametrize("name", ["rec-1", "rec-a1b2.c3", "desk_201:20260302", "R" * 128])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../etc/passwd",
        "..",
        "a/b",
        "a\\b",
        ".hidden",
        "-x",
        "rec..x",
        "rec\x00",
        "r" * 129,
        "rec 1",
        "rec%2f",
        "rec;drop",
    ],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(BadName):
        check_name(name)


def test_idents_and_paths() -> None:
    assert recording_name_for_attempt("42") == "rec-42"
    with pytest.raises(BadName):
        check_ident("a' OR 1=1", "agent")
    digest = "ab" + "c" * 62
    assert content_path(digest, "wav") == f"ab/cc/{digest}.wav"
    with pytest.raises(BadName):
        content_path("../" + "a" * 61, "wav")
    with pytest.raises(BadName):
        content_path(digest, "exe")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=0-0", (0, 0)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=x-y", None),
    ],
)
def test_parse_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=50-10"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_number_digest_is_keyed_and_canonical() -> None:
    keys = NumberKeys(SECRET)
    assert (
        keys.digest(NUMBER) == keys.digest("+86 138-1234-5678") == keys.digest("0086 13812345678")
    )
    assert keys.digest(NUMBER) != NumberKeys(SECRET + "x").digest(NUMBER)
    assert keys.digest(NUMBER) != keys.digest("13812345679")
    assert NUMBER not in keys.digest(NUMBER)
    blob = keys.encrypt(NUMBER)
    assert NUMBER.encode() not in blob and keys.decrypt(blob) == NUMBER
    with pytest.raises(NumberKeyError):
        NumberKeys(SECRET + "x").decrypt(blob)
    with pytest.raises(NumberKeyError):
        keys.decrypt(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(NumberKeyError, match="at least"):
        NumberKeys("short")
    with pytest.raises(NumberKeyError, match="not set"):
        NumberKeys.from_env({})


def test_number_keys_use_the_policys_numbering_plan() -> None:
    """A landline written without its area code is keyed with the policy's home area."""
    from compliance.numbers import NumberPlan

    shanghai = NumberKeys(SECRET, plan=NumberPlan("21"))
    assert shanghai.digest("62345678") == NumberKeys(SECRET).digest("021-62345678")
    assert NumberKeys(SECRET).digest("62345678") == NumberKeys(SECRET).digest("010-62345678")
    # the environment no longer has a say: one numbering plan, the policy's
    env = {"DIALER_NUMBER_KEY": SECRET, "DIALER_HOME_AREA": "21"}
    assert NumberKeys.from_env(env).digest("62345678") == NumberKeys(SECRET).digest("62345678")
    planned = NumberKeys.from_env(env, plan=NumberPlan("21"))
    assert planned.digest("62345678") == shanghai.digest("62345678")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on 2026-03-02T10:00 +86 138 1234 5678", "on 2026-03-02T10:00 138****5678"),
        ("refund 12000 yuan, 120.50", "refund 12000 yuan, 120.50"),
        ("sha 1234567abcdef", "sha 1234567abcdef"),
        ("/files/13812345678/audio", "/files/138****5678/audio"),
        ("desk-1795725788.5", "desk-1795725788.5"),
    ],
)
def test_mask_text_keeps_dates_amounts_and_ids(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_mask_text() -> None:
    assert mask_text(f"call from {NUMBER} and 010-6666 8888, order 2026") == (
        "call from 138****5678 and 010****8888, order 2026"
    )


def test_store_put_is_atomic_read_only_and_deduplicated(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    src = tmp_path / "a.wav"
    src.write_bytes(wav_bytes(0.1))
    one = store.put_file(src, "wav")
    two = store.put_file(src, "wav")
    assert one == two and store.digest(one.path) == (one.sha256, one.size)
    assert stat.S_IMODE(store.absolute(one.path).stat().st_mode) == 0o444
    assert list(store.tmp.iterdir()) == []
    assert b"".join(store.iter_range(one.path, 10, 19)) == src.read_bytes()[10:20]
    assert store.remove(one.path) and not store.remove(one.path)
    assert store.digest(one.path) is None


async def test_ingest_from_a_recording_source(env: Env) -> None:
    data = wav_bytes(0.4, 1000)
    (env.spool / "rec-src1.wav").write_bytes(data)
    meta = AttemptMeta(
        number=NUMBER, started_at=datetime(2026, 3, 2, tzinfo=UTC), attempt_id="src1"
    )
    rec = await env.service.ingest_from_source("rec-src1", meta, SpoolSource(env.spool))
    assert rec.size == len(data) and rec.duration_ms == 400
    with pytest.raises(FileNotFoundError):
        await env.service.ingest_from_source("rec-none", meta, SpoolSource(env.spool))
    assert list(env.service.store.tmp.iterdir()) == []


REFERENCE = Path("/work/shared/asterisk-reference/ari-events")


async def test_ingest_of_a_real_recording_finished_event(env: Env) -> None:
    """The captured Asterisk 22 RecordingFinished event and the file it produced."""
    import json
    import shutil

    events = REFERENCE / "scenario_answered_events.jsonl"
    wav = REFERENCE / "recordings" / "rec-answered.wav"
    if not wav.exists():
        pytest.skip("asterisk reference captures not present")
    finished = next(
        json.loads(line)
        for line in events.read_text().splitlines()
        if json.loads(line)["type"] == "RecordingFinished"
    )
    shutil.copy(wav, env.spool / "rec-answered.wav")
    meta = AttemptMeta(
        number=NUMBER,
        started_at=datetime(2026, 11, 26, 20, 43, 8, tzinfo=UTC),
        attempt_id="answered",
        campaign="demo",
        agent="201",
    )
    rec = await env.service.ingest_finished(finished["recording"], meta, spool_dir=env.spool)
    # The event says 6 (whole seconds); the file holds 6.02 s, and the file is indexed.
    assert finished["recording"]["duration"] == 6
    assert (rec.name, rec.format, rec.duration_ms) == ("rec-answered", "wav", 6020)
    assert rec.size == wav.stat().st_size
    again = await env.service.ingest_finished(
        finished["recording"], meta, source=SpoolSource(env.spool)
    )
    assert again.id == rec.id
    from recordings.service import BadInput

    with pytest.raises(BadInput, match="state"):
        await env.service.ingest_finished(
            {**finished["recording"], "state": "failed"}, meta, spool_dir=env.spool
        )


PURE = ("model", "naming")
FORBIDDEN = {"asyncio", "aiohttp", "redis", "sqlalchemy", "panoramisk"}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    source = Path(recordings.__file__).with_name(f"{module}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    assert "dialer" not in imported


async def test_indexed_duration_is_the_files_not_aris_whole_seconds(env: Env) -> None:
    # RecordingFinished says 1 (whole seconds, rounded down) for a 1.7 s file.
    data = wav_bytes(1.7, 1000)
    (env.spool / "rec-src2.wav").write_bytes(data)
    meta = AttemptMeta(
        number=NUMBER,
        started_at=datetime(2026, 3, 2, tzinfo=UTC),
        attempt_id="src2",
        duration_s=1.0,
    )
    rec = await env.service.ingest_from_source("rec-src2", meta, SpoolSource(env.spool))
    assert rec.duration_ms == 1700
