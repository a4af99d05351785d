"""``dialer serve`` settings: defaults <- TOML file <- ``DIALER__SECTION__KEY`` environment.

Validated at start; every error names the key (``ari.url``) and where the bad
value came from. Secrets (the ARI password) should come from the environment
(``DIALER__ARI__PASSWORD``). The shared variables the other commands use are
honoured too: ``DIALER_DB_URL``, ``DIALER_REDIS_URL``, ``DIALER_POLICY``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from compliance.database import DEFAULT_SQLITE_URL


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the key and its source."""


@dataclass(frozen=True, slots=True)
class AriSettings:
    url: str = "http://127.0.0.1:8088/ari"
    username: str = "dialer"
    password: str = ""
    app: str = "dialer"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = DEFAULT_SQLITE_URL
    schema: str = ""


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str = ""
    prefix: str = "dialer:"


@dataclass(frozen=True, slots=True)
class DialerSection:
    customer_endpoint: str = "PJSIP/{number}@carrier"  # the trunk in asterisk_conf/pjsip.conf
    connect_limit: float = 2.0
    wrapup_limit: float = 60.0
    abandon_media: str = "sound:vm-nobodyavail"
    # "dialer-abandon": the dialplan plays the message and offers the press-9 opt-out
    # (asterisk_conf/extensions.conf); "": abandon_media is played over ARI, no opt-out.
    abandon_context: str = "dialer-abandon"
    amd: bool = False
    # AMD()'s after-greeting silence in ms: AMD answers HUMAN only after it, so it is
    # taken off connect_limit (the 2 s count from the end of the customer's greeting).
    amd_after_greeting_ms: int = 800
    inbound_policy: str = "pause"
    # The name this process claims leads under. At start-up it hands back only the leads
    # still claimed under this name: give every dialer process on a campaign its own,
    # stable across restarts (e.g. the host name), never two running with the same one.
    claimer: str = "dialer"
    policy: str = ""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str = ""


@dataclass(frozen=True, slots=True)
class AgiSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 4573
    desk_config: str = ""  # desk-phone rules (TOML); empty: DIALER_DESK_CONFIG or defaults


@dataclass(frozen=True, slots=True)
class RecordingsSettings:
    enabled: bool = True
    root: str = "var/recordings"
    secret: str = ""
    # After a verified ingest, DELETE /recordings/stored/{name} on Asterisk, so the
    # personal data lives only in the store (its retention and purge apply).
    delete_from_spool: bool = True


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The pages (``web/``) on the HTTP port: sign-in, the agent console, the floor."""

    enabled: bool = True
    # Always mark the session cookie Secure (TLS ends at a proxy that sends no
    # X-Forwarded-Proto); without it Secure is set whenever the request came over TLS.
    secure_cookies: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    ari: AriSettings = field(default_factory=AriSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    dialer: DialerSection = field(default_factory=DialerSection)
    http: HttpSettings = field(default_factory=HttpSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    recordings: RecordingsSettings = field(default_factory=RecordingsSettings)
    web: WebSettings = field(default_factory=WebSettings)


def _coerce(value: Any, kind: Any, key: str, source: str) -> Any:
    if kind in (bool, "bool"):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{key}: expected true/false, got {value!r} ({source})")
    if kind in (int, "int"):
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r} ({source})") from None
    if kind in (float, "float"):
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r} ({source})") from None
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected text, got {value!r} ({source})")
    return value


def _apply(settings: Settings, section: str, values: Mapping[str, Any], source: str) -> Settings:
    names = {f.name for f in fields(Settings)}
    if section not in names:
        raise ConfigError(
            f"unknown section [{section}] ({source}); known: {', '.join(sorted(names))}"
        )
    current = getattr(settings, section)
    kinds = {f.name: f.type for f in fields(current)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in kinds:
            raise ConfigError(
                f"unknown key {section}.{key} ({source}); known: {', '.join(sorted(kinds))}"
            )
        changes[key] = _coerce(value, kinds[key], f"{section}.{key}", source)
    return replace(settings, **{section: replace(current, **changes)})


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    settings = Settings()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{p}: {section} must be a [section] table")
            settings = _apply(settings, section, values, str(p))
    shared = {
        "DIALER_DB_URL": ("database", "url"),
        "DIALER_REDIS_URL": ("redis", "url"),
        "DIALER_POLICY": ("dialer", "policy"),
    }
    for var, (section, key) in shared.items():
        if env.get(var):
            settings = _apply(settings, section, {key: env[var]}, f"environment {var}")
    for var, value in sorted(env.items()):
        if not var.startswith("DIALER__"):
            continue
        parts = var[len("DIALER__") :].lower().split("__")
        if len(parts) != 2:
            raise ConfigError(f"environment {var}: expected DIALER__SECTION__KEY")
        settings = _apply(settings, parts[0], {parts[1]: value}, f"environment {var}")
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    if not settings.ari.url.startswith(("http://", "https://")):
        raise ConfigError(f"ari.url: must start with http:// or https://, got {settings.ari.url!r}")
    if not 0 < settings.dialer.connect_limit <= 2.0:
        raise ConfigError("dialer.connect_limit: must be > 0 and at most 2 seconds (abandon rule)")
    left = settings.dialer.connect_limit * 1000 - settings.dialer.amd_after_greeting_ms
    if settings.dialer.amd_after_greeting_ms < 100 or left < 500:
        raise ConfigError(
            "dialer.amd_after_greeting_ms: must be at least 100 and leave at least 500 ms of "
            f"dialer.connect_limit to find an agent (now {left:.0f} ms left)"
        )
    if settings.dialer.inbound_policy not in ("pause", "progressive"):
        raise ConfigError("dialer.inbound_policy: must be 'pause' or 'progressive'")
    if not 0 < settings.http.port < 65536:
        raise ConfigError(f"http.port: {settings.http.port} is not a TCP port")
    if "{number}" not in settings.dialer.customer_endpoint:
        raise ConfigError("dialer.customer_endpoint: must contain {number}")
