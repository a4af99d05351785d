"""Evidence bundles: one zip per complaint, self-checking.

Contents: ``complaint.json`` (the case, judgement, actions, reply),
``recordings/<name>.<format>`` (the audio exactly as stored),
``calls/<attempt>/timeline.json`` and ``calls/<attempt>/decisions.json`` (from a
``CallTimeline``), ``SHA256SUMS`` (``sha256sum -c`` format, every file above),
``manifest.json`` (every file but itself and its signature, ``SHA256SUMS``
included, with SHA-256 and size; the case's header; each recording's index
metadata and its checksum at ingest) and ``manifest.sig`` (an Ed25519 signature
of the manifest's bytes, ``recordings.signing``): so every byte of the bundle,
the manifest's own included, is covered by the signature.

``verify_bundle`` is strict: the signature must verify with the system's public
key, every entry of the zip must appear once (a duplicate name can hide a second
copy behind the first), every listed file must be there with its checksum and size
and nothing else may be, ``SHA256SUMS`` must agree line by line, the audio must
match the checksums taken at ingest, and a malformed zip, manifest or signature is
reported as a problem naming the file, never raised. ``RecordingsService.verify_bundle``
adds the last check: the audit log recorded this very bundle's SHA-256 at export.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from compliance.clock import utcnow
from recordings.model import Problem
from recordings.signing import Signer, fingerprint, verify_signature

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SUMS = "SHA256SUMS"
FORMAT = "dialer-evidence-bundle/2"
CHUNK = 1 << 16
MAX_META_BYTES = 64 * 1024 * 1024


class CallTimeline(Protocol):
    """The call's story and the compliance decisions taken for it (the ledger's data)."""

    async def timeline(self, attempt_id: str) -> Sequence[Mapping[str, Any]]: ...

    async def decisions(self, attempt_id: str) -> Sequence[Mapping[str, Any]]: ...


class MappingCallTimeline:
    """A ``CallTimeline`` over data handed in (per attempt id), e.g. by the dialer's ledger."""

    def __init__(
        self,
        timelines: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        decisions: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        self._timelines = dict(timelines or {})
        self._decisions = dict(decisions or {})

    async def timeline(self, attempt_id: str) -> Sequence[Mapping[str, Any]]:
        return self._timelines.get(attempt_id, ())

    async def decisions(self, attempt_id: str) -> Sequence[Mapping[str, Any]]:
        return self._decisions.get(attempt_id, ())


@dataclass(frozen=True, slots=True)
class BundleAudio:
    arcname: str
    source: Path
    sha256: str  # as recorded in the index at ingest
    meta: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BundleInfo:
    path: Path
    sha256: str
    size: int
    files: int
    manifest_sha256: str = ""


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode()


def write_bundle(
    out_path: Path,
    *,
    header: Mapping[str, Any],
    complaint: Mapping[str, Any],
    audio: Sequence[BundleAudio],
    calls: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
    signer: Signer,
) -> BundleInfo:
    """Write the zip (blocking), created 0600. Audio is re-hashed while copied; a file whose
    bytes no longer match its ingest checksum aborts the export (evidence must not be altered)."""
    tmp = out_path.with_name(out_path.name + ".part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        count, manifest_sha = _write_zip(
            tmp, header=header, complaint=complaint, audio=audio, calls=calls, signer=signer
        )
        with tmp.open("rb") as handle:
            hasher = hashlib.sha256()
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
            os.fsync(handle.fileno())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return BundleInfo(out_path, hasher.hexdigest(), out_path.stat().st_size, count, manifest_sha)


def _write_zip(
    tmp: Path,
    *,
    header: Mapping[str, Any],
    complaint: Mapping[str, Any],
    audio: Sequence[BundleAudio],
    calls: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
    signer: Signer,
) -> tuple[int, str]:
    entries: list[dict[str, Any]] = []
    with zipfile.ZipFile(tmp, "w") as zf:

        def add_bytes(arcname: str, data: bytes, *, listed: bool = True) -> None:
            zf.writestr(zipfile.ZipInfo(arcname, _zip_time()), data, zipfile.ZIP_DEFLATED)
            if listed:
                entries.append(
                    {"path": arcname, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                )

        add_bytes("complaint.json", _json_bytes(complaint))
        recordings_meta = []
        for item in audio:
            hasher = hashlib.sha256()
            size = 0
            info = zipfile.ZipInfo(item.arcname, _zip_time())
            info.compress_type = zipfile.ZIP_STORED
            with item.source.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
            digest = hasher.hexdigest()
            if digest != item.sha256:
                raise AlteredRecording(item.arcname, item.sha256, digest)
            entries.append({"path": item.arcname, "sha256": digest, "size": size})
            recordings_meta.append(
                {**item.meta, "file": item.arcname, "sha256_at_ingest": item.sha256}
            )
        for attempt, (timeline, decisions) in sorted(calls.items()):
            add_bytes(f"calls/{attempt}/timeline.json", _json_bytes(list(timeline)))
            add_bytes(f"calls/{attempt}/decisions.json", _json_bytes(list(decisions)))
        add_bytes(SUMS, "".join(f"{e['sha256']}  {e['path']}\n" for e in entries).encode())
        manifest = {
            **header,
            "files": entries,
            "recordings": recordings_meta,
            "format": FORMAT,
            "signing_key": signer.key_id,
        }
        manifest_bytes = _json_bytes(manifest)
        add_bytes(MANIFEST, manifest_bytes, listed=False)
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        signature = {
            "format": FORMAT,
            "key": signer.key_id,
            "manifest_sha256": manifest_sha,
            "sig": signer.sign(manifest_bytes),
        }
        add_bytes(SIGNATURE, _json_bytes(signature), listed=False)
    return len(entries) + 2, manifest_sha


class AlteredRecording(Exception):
    """A stored recording no longer matches its ingest checksum (a broken invariant)."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        super().__init__(f"{name}: stored checksum {expected[:12]}..., file now {actual[:12]}...")


@dataclass(frozen=True, slots=True)
class BundleCheck:
    """What a verification found: the problems, and what the audit check needs."""

    problems: list[Problem]
    sha256: str  # of the zip file as it is
    complaint_id: int | None  # from a manifest whose signature verified


def verify_bundle(path: Path, public: Ed25519PublicKey) -> list[Problem]:
    """Check a bundle strictly (see the module docstring); every problem names its file."""
    return check_bundle(path, public).problems


def check_bundle(path: Path, public: Ed25519PublicKey) -> BundleCheck:
    problems: list[Problem] = []
    try:
        digest = _file_sha256(path)
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return BundleCheck(
            [Problem("unreadable", path.name, f"not a readable zip: {exc}")], "", None
        )
    with zf:
        try:
            complaint_id = _check_zip(zf, public, problems)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
            # A damaged member (bad compression data, a CRC mismatch, a truncated file).
            problems.append(Problem("unreadable", path.name, f"a damaged zip entry: {exc}"))
            complaint_id = None
    return BundleCheck(problems, digest, complaint_id)


def _check_zip(
    zf: zipfile.ZipFile, public: Ed25519PublicKey, problems: list[Problem]
) -> int | None:
    counts = _check_names(zf.namelist(), problems)
    present = set(counts)
    if MANIFEST not in present or SIGNATURE not in present:
        return None
    manifest_bytes = _read_member(zf, MANIFEST)
    signed = _check_signature(manifest_bytes, _read_member(zf, SIGNATURE), public, problems)
    manifest, error = _parse_manifest(manifest_bytes)
    if manifest is None:
        problems.append(Problem("malformed", MANIFEST, error))
        return None
    listed = _check_listed(zf, manifest, counts, problems)
    for rec in manifest["recordings"]:
        entry = listed.get(str(rec.get("file")))
        if entry is None or entry["sha256"] != rec.get("sha256_at_ingest"):
            problems.append(
                Problem("altered", str(rec.get("file")), "differs from the checksum at ingest")
            )
    if counts.get(SUMS) == 1:
        _check_sums(_read_member(zf, SUMS), listed, problems)
    cid = manifest.get("complaint_id")
    return cid if signed and isinstance(cid, int) and not isinstance(cid, bool) else None


def _check_names(names: Sequence[str], problems: list[Problem]) -> dict[str, int]:
    """Each name once, safe, and the three required files there: the count of each name."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    for name, count in sorted(counts.items()):
        if count > 1:
            problems.append(
                Problem("duplicate", name, f"{count} entries with this name: one can hide another")
            )
        if name.startswith("/") or "\\" in name or ".." in name.split("/"):
            problems.append(Problem("malformed", name, "an unsafe file name"))
    for required in (MANIFEST, SIGNATURE, SUMS):
        if required not in counts:
            problems.append(Problem("missing", required, "required in every bundle"))
    return counts


def _check_listed(
    zf: zipfile.ZipFile,
    manifest: Mapping[str, Any],
    counts: Mapping[str, int],
    problems: list[Problem],
) -> dict[str, dict[str, Any]]:
    """The zip's files against the manifest's list: none missing, none extra, none altered."""
    listed: dict[str, dict[str, Any]] = {}
    for entry in manifest["files"]:
        if entry["path"] in listed:
            problems.append(Problem("duplicate", entry["path"], "listed twice in the manifest"))
        listed[entry["path"]] = entry
    present = set(counts)
    for name in sorted(set(listed) - present):
        problems.append(Problem("missing", name, "listed in the manifest, absent"))
    for name in sorted(present - set(listed) - {MANIFEST, SIGNATURE}):
        problems.append(Problem("extra", name, "file not listed in the manifest"))
    for info in zf.infolist():
        entry = listed.get(info.filename)
        if entry is None or counts[info.filename] > 1:
            continue
        sha, size = _member_digest(zf, info)
        if sha != entry["sha256"] or size != entry["size"]:
            problems.append(Problem("altered", info.filename, "checksum differs from the manifest"))
    return listed


def _check_signature(
    manifest_bytes: bytes, sig_bytes: bytes, public: Ed25519PublicKey, problems: list[Problem]
) -> bool:
    try:
        sig = json.loads(sig_bytes)
    except (ValueError, UnicodeDecodeError):
        sig = None
    if not isinstance(sig, dict) or not all(
        isinstance(sig.get(k), str) for k in ("format", "key", "manifest_sha256", "sig")
    ):
        problems.append(Problem("malformed", SIGNATURE, "not a signature record"))
        return False
    key_id = fingerprint(public)
    if sig["key"] != key_id:
        problems.append(
            Problem(
                "signature",
                SIGNATURE,
                f"signed with key {sig['key'][:16]}, not this system's key {key_id}",
            )
        )
        return False
    if not verify_signature(public, manifest_bytes, sig["sig"]):
        problems.append(
            Problem(
                "signature",
                MANIFEST,
                "the manifest's signature does not verify: the manifest was edited or "
                "not written by this system",
            )
        )
        return False
    return True


def _parse_manifest(data: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(manifest, dict):
        return None, "not a JSON object"
    if manifest.get("format") != FORMAT:
        return None, f"format {str(manifest.get('format'))[:40]!r}, expected {FORMAT!r}"
    files, recs = manifest.get("files"), manifest.get("recordings")
    if not isinstance(files, list) or not isinstance(recs, list):
        return None, "'files' and 'recordings' must be lists"
    for index, entry in enumerate(files):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("sha256"), str)
            and len(entry["sha256"]) == 64
            and isinstance(entry.get("size"), int)
            and not isinstance(entry.get("size"), bool)
        ):
            return None, f"files[{index}] must have a path, a 64-digit sha256 and a size"
    if not all(isinstance(r, dict) for r in recs):
        return None, "every 'recordings' item must be an object"
    return manifest, ""


def _check_sums(
    data: bytes, listed: Mapping[str, Mapping[str, Any]], problems: list[Problem]
) -> None:
    seen: set[str] = set()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        problems.append(Problem("malformed", SUMS, "not UTF-8"))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            problems.append(Problem("malformed", SUMS, f"line {number} is not '<sha256>  <file>'"))
            continue
        if name in seen:
            problems.append(Problem("duplicate", SUMS, f"line {number}: {name} listed twice"))
        seen.add(name)
        entry = listed.get(name)
        if entry is None or entry["sha256"] != digest:
            problems.append(Problem("altered", SUMS, f"line {number} for {name} disagrees"))
    for name in sorted(set(listed) - seen - {SUMS}):
        problems.append(Problem("missing", SUMS, f"no line for {name}"))


def _read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > MAX_META_BYTES:
        raise ValueError(f"{name} is {info.file_size} bytes, more than a bundle's metadata can be")
    return zf.read(info)


def _member_digest(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with zf.open(info) as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _zip_time() -> tuple[int, int, int, int, int, int]:
    now = utcnow()
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)
