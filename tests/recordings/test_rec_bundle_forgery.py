"""Evidence bundles prove themselves: each forgery is found and named, never a traceback.

Every bundle is signed (``manifest.sig`` over ``manifest.json``, which lists every
other file, ``SHA256SUMS`` included) and its SHA-256 is in the audit log's export
entry; ``RecordingsService.verify_bundle`` checks both, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from rec_helpers import COMPLIANCE, NUMBER, SECRET, Env

from recordings.bundle import MANIFEST, SIGNATURE, SUMS, verify_bundle
from recordings.model import ComplaintChannel, Problem
from recordings.signing import derived_signer

pytestmark = pytest.mark.timeout(60)

Edit = Callable[[dict[str, bytes]], None]


async def _bundle(env: Env, tmp_path: Path) -> Path:
    await env.add("rec-f1")
    await env.add("rec-f2", freq=550.0)
    case = await env.service.register_complaint(
        COMPLIANCE, NUMBER, ComplaintChannel.CALL, "客户号码13812345678投诉"
    )
    out = tmp_path / "case.zip"
    await env.service.export_bundle(COMPLIANCE, case.id, out, reason="regulator")
    assert out.stat().st_mode & 0o777 == 0o600
    assert await env.service.verify_bundle(out) == []
    return out


def _members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _rezip(path: Path, members: list[tuple[str, bytes]], name: str = "forged.zip") -> Path:
    out = path.with_name(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names, on purpose
        with zipfile.ZipFile(out, "w") as zf:
            for arcname, data in members:
                zf.writestr(arcname, data)
    return out


def _edit(path: Path, edit: Edit) -> Path:
    """Apply ``edit`` to the files (a dict in zip order) and write a new zip."""
    files = dict(_members(path))
    edit(files)
    return _rezip(path, list(files.items()))


def _manifest(files: dict[str, bytes]) -> dict[str, object]:
    data = json.loads(files[MANIFEST])
    assert isinstance(data, dict)
    return data


def _set_manifest(files: dict[str, bytes], manifest: dict[str, object]) -> None:
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()


def _found(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.kind, p.where) for p in problems}


async def test_an_edited_number_or_complaint_id_breaks_the_signature(
    env: Env, tmp_path: Path
) -> None:
    out = await _bundle(env, tmp_path)
    for key, value in (("number", "13999999999"), ("complaint_id", 99)):

        def edit(files: dict[str, bytes], key: str = key, value: object = value) -> None:
            manifest = _manifest(files)
            manifest[key] = value
            _set_manifest(files, manifest)

        problems = await env.service.verify_bundle(_edit(out, edit))
        assert ("signature", MANIFEST) in _found(problems), (key, problems)


async def test_sums_removed_or_a_line_dropped_is_found(env: Env, tmp_path: Path) -> None:
    out = await _bundle(env, tmp_path)
    removed = _edit(out, lambda files: files.pop(SUMS))
    assert {("missing", SUMS)} <= _found(await env.service.verify_bundle(removed))

    def drop_line(files: dict[str, bytes]) -> None:
        files[SUMS] = b"".join(files[SUMS].splitlines(keepends=True)[1:])

    problems = await env.service.verify_bundle(_edit(out, drop_line))
    assert ("altered", SUMS) in _found(problems)
    assert any(p.where == SUMS and p.message.startswith("no line for") for p in problems)


async def test_audio_and_manifest_recomputed_consistently_are_caught(
    env: Env, tmp_path: Path
) -> None:
    out = await _bundle(env, tmp_path)

    def recompute(files: dict[str, bytes], signer_secret: bytes | None) -> None:
        audio = bytearray(files["recordings/rec-f1.wav"])
        audio[-10:] = b"\x00" * 10
        files["recordings/rec-f1.wav"] = bytes(audio)
        manifest = _manifest(files)
        digest = hashlib.sha256(audio).hexdigest()
        for entry in manifest["files"]:  # type: ignore[attr-defined]
            if entry["path"] == "recordings/rec-f1.wav":
                entry["sha256"] = digest
        for rec in manifest["recordings"]:  # type: ignore[attr-defined]
            if rec["file"] == "recordings/rec-f1.wav":
                rec["sha256_at_ingest"] = digest
        sums = "".join(
            f"{e['sha256']}  {e['path']}\n"
            for e in manifest["files"]  # type: ignore[attr-defined]
            if e["path"] != SUMS
        ).encode()
        files[SUMS] = sums
        for entry in manifest["files"]:  # type: ignore[attr-defined]
            if entry["path"] == SUMS:
                entry["sha256"], entry["size"] = hashlib.sha256(sums).hexdigest(), len(sums)
        _set_manifest(files, manifest)
        if signer_secret is not None:
            # Signed, but with a key of the forger's own.
            signer = derived_signer(signer_secret)
            files[SIGNATURE] = json.dumps(
                {
                    "format": manifest["format"],
                    "key": signer.key_id,
                    "manifest_sha256": hashlib.sha256(files[MANIFEST]).hexdigest(),
                    "sig": signer.sign(files[MANIFEST]),
                }
            ).encode()

    unsigned = _edit(out, lambda files: recompute(files, None))
    assert _found(await env.service.verify_bundle(unsigned)) == {("signature", MANIFEST)}
    own_key = _edit(out, lambda files: recompute(files, b"forger-secret-0123456789"))
    assert _found(await env.service.verify_bundle(own_key)) == {("signature", SIGNATURE)}


async def test_a_tampered_duplicate_entry_is_found(env: Env, tmp_path: Path) -> None:
    out = await _bundle(env, tmp_path)
    members = _members(out)
    audio = dict(members)["recordings/rec-f1.wav"]
    forged = _rezip(out, [*members, ("recordings/rec-f1.wav", audio[:-4] + b"\0\0\0\0")])
    problems = await env.service.verify_bundle(forged)
    assert ("duplicate", "recordings/rec-f1.wav") in _found(problems)
    # A second manifest in front of the real one is a duplicate too.
    fake = [(MANIFEST, b"{}"), *members]
    assert ("duplicate", MANIFEST) in _found(await env.service.verify_bundle(_rezip(out, fake)))


async def test_missing_and_extra_entries_are_found(env: Env, tmp_path: Path) -> None:
    out = await _bundle(env, tmp_path)

    def edit(files: dict[str, bytes]) -> None:
        files.pop("complaint.json")
        files["notes.txt"] = b"planted"

    problems = await env.service.verify_bundle(_edit(out, edit))
    assert {("missing", "complaint.json"), ("extra", "notes.txt")} <= _found(problems)
    no_sig = _edit(out, lambda files: files.pop(SIGNATURE))
    assert ("missing", SIGNATURE) in _found(await env.service.verify_bundle(no_sig))


async def test_a_rezipped_bundle_is_not_the_one_the_audit_log_recorded(
    env: Env, tmp_path: Path
) -> None:
    out = await _bundle(env, tmp_path)
    same_files = _rezip(out, _members(out))  # identical contents, other zip bytes
    problems = await env.service.verify_bundle(same_files)
    assert [(p.kind, p.where) for p in problems] == [("unrecorded", same_files.name)]
    # Offline, with only the public key, the contents and signature still verify.
    assert verify_bundle(same_files, env.service.signer.public) == []


@pytest.mark.parametrize(
    ("name", "data", "kind", "where"),
    [
        (MANIFEST, b"{not json", "malformed", MANIFEST),
        (MANIFEST, b"[]", "malformed", MANIFEST),
        (
            MANIFEST,
            json.dumps({"format": "dialer-evidence-bundle/2", "files": [1]}).encode(),
            "malformed",
            MANIFEST,
        ),
        (SIGNATURE, b"\xff\xfe", "malformed", SIGNATURE),
        (SUMS, b"not a sums line\n", "malformed", SUMS),
    ],
)
async def test_malformed_files_are_problems_not_tracebacks(
    env: Env, tmp_path: Path, name: str, data: bytes, kind: str, where: str
) -> None:
    out = await _bundle(env, tmp_path)

    def edit(files: dict[str, bytes]) -> None:
        files[name] = data

    assert (kind, where) in _found(await env.service.verify_bundle(_edit(out, edit)))


async def test_not_a_zip_at_all(env: Env, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really")
    assert _found(await env.service.verify_bundle(junk)) == {("unreadable", "junk.zip")}
    missing = tmp_path / "absent.zip"
    assert _found(await env.service.verify_bundle(missing)) == {("unreadable", "absent.zip")}


def test_cli_verify_bundle_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dialer recordings verify-bundle``: 0 clean, 1 forged or malformed, 2 a bad key file."""
    import contextlib
    import io

    from dialer.cli import main

    monkeypatch.setenv("DIALER_NUMBER_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    db = ["--db", f"sqlite+aiosqlite:///{tmp_path}/b.sqlite3", "--store", str(tmp_path / "s")]
    wav = tmp_path / "a.wav"
    from rec_helpers import wav_bytes

    wav.write_bytes(wav_bytes(0.2))

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(argv))
        return code, out.getvalue()

    ingest = ["recordings", "ingest", "r1", str(wav), "--number", NUMBER]
    assert run(*ingest, "--started-at", "2026-03-02T10:00:00+08:00", *db)[0] == 0
    assert run("complaint", "register", NUMBER, "--channel", "call", "--text", "t", *db)[0] == 0
    bundle = tmp_path / "case.zip"
    code, text = run("recordings", "export", "1", "--out", str(bundle), "--reason", "r", *db)
    assert code == 0, text
    assert bundle.stat().st_mode & 0o777 == 0o600
    assert run("recordings", "verify-bundle", str(bundle), *db)[0] == 0
    code, text = run("audit", "public-key", *db)
    public = tmp_path / "pub.pem"
    public.write_text(text.split("key id")[0].strip() + "\n")
    offline = ["recordings", "verify-bundle", str(bundle), "--public-key", str(public)]
    code, text = run(*offline)
    assert code == 0 and "audit log was not consulted" in text
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, b"{" if info.filename == MANIFEST else src.read(info))
    code, text = run("recordings", "verify-bundle", str(broken), *db)
    assert code == 1 and "malformed manifest.json" in text and "Traceback" not in text
    code, text = run("recordings", "verify-bundle", str(bundle), "--public-key", str(bundle))
    assert code == 2 and "not a PEM public key" in text
