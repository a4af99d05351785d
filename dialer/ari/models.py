"""ARI resource models (Channel, Bridge, recordings, playback...) as frozen dataclasses.

Each model keeps the JSON it was built from in ``raw`` so that a field Asterisk
adds in a later version is never lost. Field names follow the ARI api-docs
(``events.json``/``channels.json`` models) verbatim. Timestamps use Asterisk's
format ``2026-11-26T20:43:06.035+0000`` (milliseconds, no colon in the offset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

JsonObject = Mapping[str, Any]


class AriDecodeError(ValueError):
    """A JSON document that does not have the shape ARI documents (names the field)."""


@lru_cache(maxsize=16384)
def parse_timestamp(text: str) -> datetime:
    """Parse ``2026-11-26T20:43:06.035+0000`` (Python 3.11 accepts the colon-less offset).

    Cached: a channel's ``creationtime`` repeats in every event about it.
    """
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise AriDecodeError(f"timestamp {text!r} is not an ARI timestamp") from exc


def format_timestamp(moment: datetime) -> str:
    """The inverse of :func:`parse_timestamp`, in Asterisk's exact style."""
    offset = moment.strftime("%z") or "+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + offset


def _str(raw: JsonObject, key: str, default: str = "") -> str:
    value = raw.get(key, default)
    return value if isinstance(value, str) else str(value)


def _obj(raw: JsonObject, key: str) -> JsonObject:
    value = raw.get(key)
    if isinstance(value, Mapping):
        return value
    raise AriDecodeError(f"field {key!r} is missing or not an object")


@dataclass(frozen=True, slots=True)
class CallerId:
    name: str
    number: str

    @classmethod
    def from_json(cls, raw: JsonObject | None) -> CallerId:
        if raw is None:
            return cls("", "")
        return cls(raw.get("name", ""), raw.get("number", ""))


@dataclass(frozen=True, slots=True)
class DialplanCEP:
    context: str
    exten: str
    priority: int
    app_name: str
    app_data: str

    @classmethod
    def from_json(cls, raw: JsonObject | None) -> DialplanCEP:
        if raw is None:
            return cls("", "", 0, "", "")
        get = raw.get
        return cls(
            get("context", ""),
            get("exten", ""),
            int(get("priority", 0)),
            get("app_name", ""),
            get("app_data", ""),
        )


@dataclass(frozen=True, slots=True)
class Channel:
    """An ARI ``Channel``; ``state`` is Asterisk's text (Down, Ring, Ringing, Up, Busy...)."""

    id: str
    name: str
    state: str
    caller: CallerId
    connected: CallerId
    accountcode: str
    dialplan: DialplanCEP
    creationtime: datetime
    language: str
    protocol_id: str
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> Channel:
        get = raw.get
        try:
            return cls(
                raw["id"],
                raw["name"],
                raw["state"],
                CallerId.from_json(get("caller")),
                CallerId.from_json(get("connected")),
                get("accountcode", ""),
                DialplanCEP.from_json(get("dialplan")),
                parse_timestamp(raw["creationtime"]),
                get("language", ""),
                get("protocol_id", ""),
                raw,
            )
        except KeyError as exc:
            raise AriDecodeError(f"Channel field {exc.args[0]!r} is missing") from exc


@dataclass(frozen=True, slots=True)
class Bridge:
    """An ARI ``Bridge``; ``channels`` are unique ids (a bridge recorder's id shows up too)."""

    id: str
    technology: str
    bridge_type: str
    bridge_class: str
    creator: str
    name: str
    channels: tuple[str, ...]
    creationtime: datetime | None
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> Bridge:
        try:
            created = raw.get("creationtime")
            return cls(
                id=raw["id"],
                technology=_str(raw, "technology"),
                bridge_type=_str(raw, "bridge_type"),
                bridge_class=_str(raw, "bridge_class"),
                creator=_str(raw, "creator"),
                name=_str(raw, "name"),
                channels=tuple(raw.get("channels", ())),
                creationtime=parse_timestamp(created) if isinstance(created, str) else None,
                raw=raw,
            )
        except KeyError as exc:
            raise AriDecodeError(f"Bridge field {exc.args[0]!r} is missing") from exc


@dataclass(frozen=True, slots=True)
class LiveRecording:
    """``state``: queued, recording, paused, done, failed, canceled."""

    name: str
    format: str
    state: str
    target_uri: str
    duration: int | None
    cause: str | None
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> LiveRecording:
        duration = raw.get("duration")
        cause = raw.get("cause")
        return cls(
            name=_str(raw, "name"),
            format=_str(raw, "format"),
            state=_str(raw, "state"),
            target_uri=_str(raw, "target_uri"),
            duration=int(duration) if duration is not None else None,
            cause=str(cause) if cause is not None else None,
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class StoredRecording:
    name: str
    format: str
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> StoredRecording:
        return cls(name=_str(raw, "name"), format=_str(raw, "format"), raw=raw)


@dataclass(frozen=True, slots=True)
class Playback:
    """``state``: queued, playing, continuing, done, failed."""

    id: str
    media_uri: str
    target_uri: str
    language: str
    state: str
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> Playback:
        return cls(
            id=_str(raw, "id"),
            media_uri=_str(raw, "media_uri"),
            target_uri=_str(raw, "target_uri"),
            language=_str(raw, "language"),
            state=_str(raw, "state"),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    channel_ids: tuple[str, ...]
    bridge_ids: tuple[str, ...]
    endpoint_ids: tuple[str, ...]
    device_names: tuple[str, ...]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> Application:
        def ids(key: str) -> tuple[str, ...]:
            value: Sequence[str] = raw.get(key, ())
            return tuple(value)

        return cls(
            name=_str(raw, "name"),
            channel_ids=ids("channel_ids"),
            bridge_ids=ids("bridge_ids"),
            endpoint_ids=ids("endpoint_ids"),
            device_names=ids("device_names"),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class AsteriskPing:
    ping: str
    timestamp: datetime
    asterisk_id: str
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> AsteriskPing:
        return cls(
            ping=_str(raw, "ping"),
            timestamp=parse_timestamp(_str(raw, "timestamp")),
            asterisk_id=_str(raw, "asterisk_id"),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class AsteriskInfo:
    """``GET /asterisk/info``; ``version`` comes from ``system.version``."""

    version: str
    entity_id: str
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: JsonObject) -> AsteriskInfo:
        system = raw.get("system")
        system_obj: JsonObject = system if isinstance(system, Mapping) else {}
        return cls(
            version=_str(system_obj, "version"),
            entity_id=_str(system_obj, "entity_id"),
            raw=raw,
        )


__all__ = [
    "Application",
    "AriDecodeError",
    "AsteriskInfo",
    "AsteriskPing",
    "Bridge",
    "CallerId",
    "Channel",
    "DialplanCEP",
    "JsonObject",
    "LiveRecording",
    "Playback",
    "StoredRecording",
    "format_timestamp",
    "parse_timestamp",
]

# Referenced by events.py for nested objects that must be present.
require_object = _obj
