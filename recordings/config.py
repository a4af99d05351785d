"""Settings of the recordings area, from the environment (CLI options override them).

Keys: ``DIALER_DB_URL`` (SQL URL; default SQLite ``var/dialer.sqlite3``),
``DIALER_DB_SCHEMA`` (PostgreSQL schema), ``DIALER_RECORDINGS_DIR`` (file store,
default ``var/recordings``), ``DIALER_NUMBER_KEY`` (secret keying number digests
and the number cipher; required; numbers are keyed under the policy's numbering
plan, ``[numbers]``), ``DIALER_RECORDINGS_RETENTION_DAYS`` (default 365),
``DIALER_RECORDINGS_MAX_UPLOAD`` (bytes, default 512 MiB), ``DIALER_SIGNING_KEY_FILE``
(an Ed25519 PEM private key signing audit anchors and evidence bundles; default:
derived from ``DIALER_NUMBER_KEY``), ``DIALER_AUDIT_ANCHOR`` (where the API servers
write signed audit anchors: ``file:PATH`` or ``syslog[:ADDRESS]``; default none) and
``DIALER_AUDIT_ANCHOR_EVERY`` (seconds between anchors, default 300).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from recordings.schema import DB_SCHEMA_ENV, default_db_url

STORE_ENV = "DIALER_RECORDINGS_DIR"
RETENTION_ENV = "DIALER_RECORDINGS_RETENTION_DAYS"
MAX_UPLOAD_ENV = "DIALER_RECORDINGS_MAX_UPLOAD"
DEFAULT_STORE = "var/recordings"
DEFAULT_RETENTION_DAYS = 365
DEFAULT_MAX_UPLOAD = 512 * 1024 * 1024
MAX_JSON_BODY = 64 * 1024
SIGNING_KEY_ENV = "DIALER_SIGNING_KEY_FILE"
ANCHOR_ENV = "DIALER_AUDIT_ANCHOR"
ANCHOR_EVERY_ENV = "DIALER_AUDIT_ANCHOR_EVERY"
DEFAULT_ANCHOR_EVERY = 300


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class RecordingsConfig:
    db_url: str
    db_schema: str | None
    store_dir: str
    retention_days: int = DEFAULT_RETENTION_DAYS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    max_json_bytes: int = MAX_JSON_BODY
    signing_key_file: str = ""
    anchor_target: str = ""
    anchor_every_s: int = DEFAULT_ANCHOR_EVERY

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        db_url: str | None = None,
        store_dir: str | None = None,
    ) -> RecordingsConfig:
        source = os.environ if env is None else env
        return cls(
            db_url=db_url or source.get("DIALER_DB_URL") or default_db_url(),
            db_schema=source.get(DB_SCHEMA_ENV) or None,
            store_dir=store_dir or source.get(STORE_ENV) or DEFAULT_STORE,
            retention_days=_positive_int(source, RETENTION_ENV, DEFAULT_RETENTION_DAYS),
            max_upload_bytes=_positive_int(source, MAX_UPLOAD_ENV, DEFAULT_MAX_UPLOAD),
            signing_key_file=source.get(SIGNING_KEY_ENV, ""),
            anchor_target=source.get(ANCHOR_ENV, ""),
            anchor_every_s=_positive_int(source, ANCHOR_EVERY_ENV, DEFAULT_ANCHOR_EVERY),
        )


def _positive_int(source: Mapping[str, str], key: str, default: int) -> int:
    raw = source.get(key, "")
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise ConfigError(f"{key}={raw[:20]!r} is not a whole number (ASCII digits)")
    value = int(raw)
    if value <= 0:
        raise ConfigError(f"{key}={raw!r} must be positive")
    return value
