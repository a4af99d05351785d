"""Evidence bundles: one zip per complaint, self-checking.

Contents: ``complaint.json`` (the case, judgement, actions, reply),
``recordings/<name>.<format>`` (the audio exactly as stored),
``calls/<attempt>/timeline.json`` and ``calls/<attempt>/decisions.json`` (from a
``CallTimeline``), ``manifest.json`` (every other file with its SHA-256 and
size, and each recording's index metadata and stored checksum) and
``SHA256SUMS`` (``sha256sum -c`` format). ``verify_bundle`` rechecks a zip
against its manifest and the recordings against the checksums recorded at ingest.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from recordings.model import Problem

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
CHUNK = 1 << 16


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


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode()


def write_bundle(
    out_path: Path,
    *,
    header: Mapping[str, Any],
    complaint: Mapping[str, Any],
    audio: Sequence[BundleAudio],
    calls: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
) -> BundleInfo:
    """Write the zip (blocking). Audio is re-hashed while copied; a file whose bytes no
    longer match its ingest checksum aborts the export (evidence must not be altered)."""
    tmp = out_path.with_name(out_path.name + ".part")
    try:
        count = _write_zip(tmp, header=header, complaint=complaint, audio=audio, calls=calls)
        with tmp.open("rb") as handle:
            hasher = hashlib.sha256()
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
            os.fsync(handle.fileno())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return BundleInfo(out_path, hasher.hexdigest(), out_path.stat().st_size, count)


def _write_zip(
    tmp: Path,
    *,
    header: Mapping[str, Any],
    complaint: Mapping[str, Any],
    audio: Sequence[BundleAudio],
    calls: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
) -> int:
    entries: list[dict[str, Any]] = []
    with zipfile.ZipFile(tmp, "w") as zf:

        def add_bytes(arcname: str, data: bytes) -> None:
            zf.writestr(zipfile.ZipInfo(arcname, _zip_time()), data, zipfile.ZIP_DEFLATED)
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
        manifest = {
            **header,
            "files": entries,
            "recordings": recordings_meta,
            "format": "dialer-evidence-bundle/1",
        }
        add_bytes(MANIFEST, _json_bytes(manifest))
        sums = "".join(f"{e['sha256']}  {e['path']}\n" for e in entries if e["path"] != MANIFEST)
        zf.writestr(zipfile.ZipInfo(SUMS, _zip_time()), sums.encode(), zipfile.ZIP_DEFLATED)
    return len(entries) + 1


class AlteredRecording(Exception):
    """A stored recording no longer matches its ingest checksum (a broken invariant)."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        super().__init__(f"{name}: stored checksum {expected[:12]}..., file now {actual[:12]}...")


def verify_bundle(path: Path) -> list[Problem]:
    """Check a bundle: every manifest entry present with its checksum, audio matching the
    ingest checksums, SHA256SUMS agreeing, and no file the manifest does not list."""
    problems: list[Problem] = []
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return [Problem("unreadable", str(path), f"not a readable zip: {exc}")]
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            return [Problem("missing", MANIFEST, "the bundle has no manifest")]
        manifest = json.loads(zf.read(MANIFEST))
        listed = {MANIFEST, SUMS}
        for entry in manifest.get("files", []):
            name = entry["path"]
            if name == MANIFEST:
                continue
            listed.add(name)
            if name not in names:
                problems.append(Problem("missing", name, "listed in the manifest, absent"))
                continue
            hasher = hashlib.sha256()
            with zf.open(name) as handle:
                while chunk := handle.read(CHUNK):
                    hasher.update(chunk)
            if hasher.hexdigest() != entry["sha256"]:
                problems.append(Problem("altered", name, "checksum differs from the manifest"))
        for rec in manifest.get("recordings", []):
            file_entry = next((e for e in manifest["files"] if e["path"] == rec.get("file")), None)
            if file_entry is None or file_entry["sha256"] != rec.get("sha256_at_ingest"):
                problems.append(
                    Problem("altered", str(rec.get("file")), "differs from the checksum at ingest")
                )
        if SUMS in names:
            for line in zf.read(SUMS).decode().splitlines():
                digest, _, name = line.partition("  ")
                match = next((e for e in manifest["files"] if e["path"] == name), None)
                if match is None or match["sha256"] != digest:
                    problems.append(Problem("altered", SUMS, f"line for {name} disagrees"))
        for extra in sorted(names - listed):
            problems.append(Problem("extra", extra, "file not listed in the manifest"))
    return problems


def _zip_time() -> tuple[int, int, int, int, int, int]:
    now = datetime.now(UTC)
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)
