"""The recording file store: content-addressed, write-once, read-only files.

Layout: ``<root>/<aa>/<bb>/<sha256>.<format>`` (two levels of 256 directories keep
each directory small with millions of files); ``<root>/.tmp/`` holds files being
written. A file is written to a temp file in the same file system, fsynced,
renamed atomically into place, the directory fsynced, and made read-only
(0444). A crash leaves either no file or a whole one; a stored file is never
rewritten (the same content stored twice is one file).

``RecordingSource`` is where audio comes from when the Asterisk spool is not
shared: the ARI client implements ``GET /recordings/stored/{name}/file``;
``SpoolSource`` reads a local spool directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from recordings.naming import check_format, check_name, content_path

CHUNK = 1 << 16


class RecordingSource(Protocol):
    """Gives the bytes of a stored Asterisk recording by name (async chunks).

    Implemented by the ARI client (``GET /ari/recordings/stored/{name}/file``)
    and by ``SpoolSource``. A missing recording raises ``FileNotFoundError`` (or
    the implementation's not-found error).
    """

    def fetch(self, name: str) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    size: int
    path: str  # relative to the store root


class SpoolSource:
    """A ``RecordingSource`` over a local (or mounted) Asterisk recording spool."""

    def __init__(self, spool_dir: str | os.PathLike[str], fmt: str = "wav") -> None:
        self.spool = Path(spool_dir)
        self.fmt = check_format(fmt)

    async def fetch(self, name: str) -> AsyncIterator[bytes]:
        path = self.spool / f"{check_name(name)}.{self.fmt}"
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()


class FileStore:
    """Write-once content-addressed storage of recording files under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.tmp = self.root / ".tmp"

    def ensure(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    def absolute(self, rel_path: str) -> Path:
        # rel_path comes from our own index (content_path), never from a request.
        return self.root / rel_path

    # -- writing ----------------------------------------------------------------------------

    def new_temp(self) -> tuple[Path, BinaryIO]:
        """A fresh temp file inside the store (same file system as the final place)."""
        self.ensure()
        path = self.tmp / f"in-{secrets.token_hex(8)}"
        return path, path.open("xb")

    def put_file(self, source: str | os.PathLike[str], fmt: str) -> StoredFile:
        """Copy ``source`` into the store (blocking; call through ``asyncio.to_thread``)."""
        tmp_path, out = self.new_temp()
        try:
            with out, open(source, "rb") as src:
                digest, size = _copy_hashing(src, out)
            return self.adopt(tmp_path, digest, size, fmt)
        finally:
            tmp_path.unlink(missing_ok=True)

    def adopt(self, tmp_path: Path, sha256: str, size: int, fmt: str) -> StoredFile:
        """Move a complete, fsynced temp file into its content address (blocking)."""
        rel = content_path(sha256, fmt)
        final = self.root / rel
        if final.exists():
            # Same content already stored: keep the existing (read-only) file.
            tmp_path.unlink(missing_ok=True)
            return StoredFile(sha256, size, rel)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
        return StoredFile(sha256, size, rel)

    async def put_stream(self, chunks: AsyncIterator[bytes], fmt: str) -> StoredFile:
        """Store what an async chunk stream yields (from a ``RecordingSource`` or an upload)."""
        tmp_path, out = await asyncio.to_thread(self.new_temp)
        try:
            hasher = hashlib.sha256()
            size = 0
            with out:
                async for chunk in chunks:
                    hasher.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(_flush_sync, out)
            return await asyncio.to_thread(self.adopt, tmp_path, hasher.hexdigest(), size, fmt)
        finally:
            tmp_path.unlink(missing_ok=True)

    # -- reading and checking ---------------------------------------------------------------

    def digest(self, rel_path: str) -> tuple[str, int] | None:
        """(sha256, size) of a stored file, or None when it is missing (blocking)."""
        try:
            with self.absolute(rel_path).open("rb") as handle:
                hasher = hashlib.sha256()
                size = 0
                while chunk := handle.read(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            return None
        return hasher.hexdigest(), size

    def remove(self, rel_path: str) -> bool:
        """Delete a stored file (retention purge); False when it was already gone."""
        path = self.absolute(rel_path)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def iter_range(self, rel_path: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` inclusive of a stored file, in chunks (blocking)."""
        with self.absolute(rel_path).open("rb") as handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk


def _copy_hashing(src: BinaryIO, out: BinaryIO) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        hasher.update(chunk)
        out.write(chunk)
        size += len(chunk)
    _flush_sync(out)
    return hasher.hexdigest(), size


def _flush_sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry itself is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
