"""Recording names and storage paths (pure).

Recording names come from Asterisk (``rec-<attempt>``), from a desk-phone hook, or
from a URL. They are used as keys and inside file names of an evidence bundle, so
only a conservative alphabet is accepted: no path separators, no ``..``, no
leading dot, no control characters. The store never uses the name as a path: files
are content-addressed by their SHA-256 (``ab/cd/<sha256>.<format>``), which keeps
directories small with millions of files and makes a stored file's name its checksum.
"""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
IDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
FORMATS: dict[str, str] = {
    "wav": "audio/wav",
    "wav16": "audio/wav",
    "gsm": "audio/x-gsm",
    "ulaw": "audio/basic",
    "alaw": "audio/x-alaw-basic",
    "sln": "audio/L16",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
}


class BadName(ValueError):
    """A recording name, identifier or format that is not acceptable (bad input)."""


def recording_name_for_attempt(attempt_id: str) -> str:
    """The recording name the dialer gives the bridge recording of an attempt."""
    return check_name("rec-" + attempt_id)


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise BadName(
            f"recording name {name[:40]!r} is not valid: 1-128 characters of "
            "A-Z a-z 0-9 _ . : - , not starting with a punctuation mark, no '..'"
        )
    return name


def check_ident(value: str, what: str) -> str:
    """An agent, campaign or attempt id: a short token, never free text."""
    if not IDENT_RE.fullmatch(value):
        raise BadName(
            f"{what} {value[:40]!r} is not valid: 1-64 characters of A-Z a-z 0-9 _ . : @ -"
        )
    return value


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BadName(f"format {fmt[:20]!r} is not supported; one of {', '.join(FORMATS)}")
    return fmt


def media_type(fmt: str) -> str:
    return FORMATS.get(fmt, "application/octet-stream")


def content_path(sha256: str, fmt: str) -> str:
    """Relative store path of a file with this digest: two levels of 256 directories."""
    if not SHA256_RE.fullmatch(sha256):
        raise BadName(f"not a SHA-256 hex digest: {sha256[:70]!r}")
    check_format(fmt)
    return f"{sha256[0:2]}/{sha256[2:4]}/{sha256}.{fmt}"
