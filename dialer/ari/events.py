"""ARI WebSocket events: JSON frame -> typed, frozen event dataclass.

Every event type seen in the real Asterisk 22 captures (and a few more from
``events.json``) has a class named exactly like the ARI ``type``
(``StasisStart``, ``ChannelDestroyed``...). Nothing is ever dropped:

* every event keeps the whole decoded frame in ``raw`` (fields that Asterisk
  adds later, or that we do not model, stay readable);
* a frame whose ``type`` we do not model, or a known type whose required fields
  are missing, decodes to :class:`UnknownEvent` (``decode_error`` says why).

Protocol quirks handled here: JSON key order is not fixed (``ChannelVarset``
puts ``variable`` before ``type``); timestamps look like
``2026-11-26T20:43:06.035+0000``; ``Dial`` has no ``caller`` for originated
calls and its ``peer`` is the ``;1`` half of a Local channel; a soft
``ChannelHangupRequest`` carries Asterisk's soft-hangup flag (32 = explicit
hangup, 16 = dialplan finished) in ``cause``, not a Q.850 cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dialer.ari.models import (
    AriDecodeError,
    Bridge,
    Channel,
    JsonObject,
    LiveRecording,
    Playback,
    parse_timestamp,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AriEvent:
    """Fields every ARI event has (``Message`` + ``Event`` models)."""

    type: str
    application: str
    timestamp: datetime
    asterisk_id: str
    raw: JsonObject = field(repr=False, compare=False)

    @property
    def channel_id(self) -> str | None:
        """The channel this event is about, used to keep per-channel order."""
        return None


@dataclass(frozen=True, slots=True)
class UnknownEvent(AriEvent):
    """A type we do not model, or a malformed known type (``decode_error`` is set then)."""

    decode_error: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelEvent(AriEvent):
    channel: Channel

    @property
    def channel_id(self) -> str | None:
        return self.channel.id


@dataclass(frozen=True, slots=True)
class ChannelCreated(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelDestroyed(ChannelEvent):
    """``cause`` of a Local ``;1`` half is 0 for busy/congestion (README fact 6/7)."""

    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelDialplan(ChannelEvent):
    dialplan_app: str
    dialplan_app_data: str


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest(ChannelEvent):
    """With ``soft`` the cause is a soft-hangup flag, not Q.850 (README fact 8)."""

    cause: int | None
    soft: bool


@dataclass(frozen=True, slots=True)
class ChannelCallerId(ChannelEvent):
    caller_presentation: int
    caller_presentation_txt: str


@dataclass(frozen=True, slots=True)
class ChannelConnectedLine(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...]
    replace_channel: Channel | None


@dataclass(frozen=True, slots=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelEnteredBridge(ChannelEvent):
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class ChannelLeftBridge(ChannelEvent):
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class ChannelHold(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelUnhold(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelTalkingStarted(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelTalkingFinished(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelVarset(AriEvent):
    """``channel`` is absent for a global variable."""

    variable: str
    value: str
    channel: Channel | None

    @property
    def channel_id(self) -> str | None:
        return self.channel.id if self.channel is not None else None


@dataclass(frozen=True, slots=True)
class ChannelUserevent(AriEvent):
    eventname: str
    userevent: JsonObject
    channel: Channel | None

    @property
    def channel_id(self) -> str | None:
        return self.channel.id if self.channel is not None else None


@dataclass(frozen=True, slots=True)
class Dial(AriEvent):
    """``dialstatus``: "" (dialing), RINGING, then ANSWER/BUSY/CONGESTION/NOANSWER/CANCEL...

    No final Dial is sent when the originate ``timeout`` expires (README fact 4).
    """

    peer: Channel
    dialstatus: str
    dialstring: str
    forward: str
    caller: Channel | None
    forwarded: Channel | None

    @property
    def channel_id(self) -> str | None:
        return self.peer.id


@dataclass(frozen=True, slots=True)
class BridgeCreated(AriEvent):
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class BridgeDestroyed(AriEvent):
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class RecordingEvent(AriEvent):
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class RecordingStarted(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True)
class RecordingFinished(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True)
class RecordingFailed(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackEvent(AriEvent):
    playback: Playback

    @property
    def channel_id(self) -> str | None:
        target = self.playback.target_uri
        return target[8:] if target.startswith("channel:") else None


@dataclass(frozen=True, slots=True)
class PlaybackStarted(PlaybackEvent):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackContinuing(PlaybackEvent):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackFinished(PlaybackEvent):
    pass


@dataclass(frozen=True, slots=True)
class DeviceStateChanged(AriEvent):
    device_name: str
    device_state: str


@dataclass(frozen=True, slots=True)
class ApplicationReplaced(AriEvent):
    """Another socket took this app over; this socket gets no more events (README fact 19)."""


def event_key(event: AriEvent) -> str | None:
    """Ordering key: the channel id, else ``bridge:<id>`` / ``recording:<name>``, else None."""
    cid = event.channel_id
    if cid is not None:
        return cid
    if isinstance(event, RecordingEvent):
        return "recording:" + event.recording.name
    if isinstance(event, BridgeCreated | BridgeDestroyed):
        return "bridge:" + event.bridge.id
    return None


# --- decoding -------------------------------------------------------------------------------

_Decoder = Callable[[str, str, datetime, str, JsonObject], AriEvent]


def _channel(raw: JsonObject, key: str = "channel") -> Channel:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise AriDecodeError(f"field {key!r} is missing or not an object")
    return Channel.from_json(value)


def _opt_channel(raw: JsonObject, key: str) -> Channel | None:
    value = raw.get(key)
    return Channel.from_json(value) if isinstance(value, Mapping) else None


def _bridge(raw: JsonObject) -> Bridge:
    value = raw.get("bridge")
    if not isinstance(value, Mapping):
        raise AriDecodeError("field 'bridge' is missing or not an object")
    return Bridge.from_json(value)


def _required(raw: JsonObject, key: str) -> Any:
    try:
        return raw[key]
    except KeyError:
        raise AriDecodeError(f"field {key!r} is missing") from None


def _simple_channel(cls: type[ChannelEvent]) -> _Decoder:
    def decode(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
        return cls(t, app, ts, aid, raw, _channel(raw))

    return decode


def _recording(cls: type[RecordingEvent]) -> _Decoder:
    def decode(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
        rec = raw.get("recording")
        if not isinstance(rec, Mapping):
            raise AriDecodeError("field 'recording' is missing or not an object")
        return cls(t, app, ts, aid, raw, LiveRecording.from_json(rec))

    return decode


def _playback(cls: type[PlaybackEvent]) -> _Decoder:
    def decode(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
        pb = raw.get("playback")
        if not isinstance(pb, Mapping):
            raise AriDecodeError("field 'playback' is missing or not an object")
        return cls(t, app, ts, aid, raw, Playback.from_json(pb))

    return decode


def _dec_destroyed(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ChannelDestroyed(
        t,
        app,
        ts,
        aid,
        raw,
        _channel(raw),
        int(_required(raw, "cause")),
        str(raw.get("cause_txt", "")),
    )


def _dec_dialplan(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ChannelDialplan(
        t, app, ts, aid, raw, _channel(raw),
        str(_required(raw, "dialplan_app")), str(_required(raw, "dialplan_app_data")),
    )  # fmt: skip


def _dec_hangup_request(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    cause = raw.get("cause")
    return ChannelHangupRequest(
        t, app, ts, aid, raw, _channel(raw),
        int(cause) if cause is not None else None, bool(raw.get("soft", False)),
    )  # fmt: skip


def _dec_caller_id(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ChannelCallerId(
        t, app, ts, aid, raw, _channel(raw),
        int(raw.get("caller_presentation", 0)), str(raw.get("caller_presentation_txt", "")),
    )  # fmt: skip


def _dec_stasis_start(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    args = raw.get("args", ())
    return StasisStart(
        t, app, ts, aid, raw, _channel(raw),
        tuple(str(a) for a in args), _opt_channel(raw, "replace_channel"),
    )  # fmt: skip


def _dec_entered(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ChannelEnteredBridge(t, app, ts, aid, raw, _channel(raw), _bridge(raw))


def _dec_left(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ChannelLeftBridge(t, app, ts, aid, raw, _channel(raw), _bridge(raw))


def _dec_dtmf(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ChannelDtmfReceived(
        t, app, ts, aid, raw, _channel(raw),
        str(_required(raw, "digit")), int(raw.get("duration_ms", 0)),
    )  # fmt: skip


def _dec_varset(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ChannelVarset(
        t, app, ts, aid, raw,
        str(_required(raw, "variable")), str(raw.get("value", "")), _opt_channel(raw, "channel"),
    )  # fmt: skip


def _dec_userevent(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    user = raw.get("userevent")
    return ChannelUserevent(
        t, app, ts, aid, raw,
        str(_required(raw, "eventname")), user if isinstance(user, Mapping) else {},
        _opt_channel(raw, "channel"),
    )  # fmt: skip


def _dec_dial(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return Dial(
        t, app, ts, aid, raw, _channel(raw, "peer"),
        str(_required(raw, "dialstatus")), str(raw.get("dialstring", "")),
        str(raw.get("forward", "")), _opt_channel(raw, "caller"), _opt_channel(raw, "forwarded"),
    )  # fmt: skip


def _dec_bridge_created(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return BridgeCreated(t, app, ts, aid, raw, _bridge(raw))


def _dec_bridge_destroyed(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return BridgeDestroyed(t, app, ts, aid, raw, _bridge(raw))


def _dec_device(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    state = raw.get("device_state")
    state_obj: JsonObject = state if isinstance(state, Mapping) else {}
    return DeviceStateChanged(
        t, app, ts, aid, raw, str(state_obj.get("name", "")), str(state_obj.get("state", ""))
    )


def _dec_replaced(t: str, app: str, ts: datetime, aid: str, raw: JsonObject) -> AriEvent:
    return ApplicationReplaced(t, app, ts, aid, raw)


DECODERS: dict[str, _Decoder] = {
    "ChannelCreated": _simple_channel(ChannelCreated),
    "ChannelDestroyed": _dec_destroyed,
    "ChannelStateChange": _simple_channel(ChannelStateChange),
    "ChannelDialplan": _dec_dialplan,
    "ChannelHangupRequest": _dec_hangup_request,
    "ChannelCallerId": _dec_caller_id,
    "ChannelConnectedLine": _simple_channel(ChannelConnectedLine),
    "StasisStart": _dec_stasis_start,
    "StasisEnd": _simple_channel(StasisEnd),
    "ChannelEnteredBridge": _dec_entered,
    "ChannelLeftBridge": _dec_left,
    "ChannelDtmfReceived": _dec_dtmf,
    "ChannelHold": _simple_channel(ChannelHold),
    "ChannelUnhold": _simple_channel(ChannelUnhold),
    "ChannelTalkingStarted": _simple_channel(ChannelTalkingStarted),
    "ChannelTalkingFinished": _simple_channel(ChannelTalkingFinished),
    "ChannelVarset": _dec_varset,
    "ChannelUserevent": _dec_userevent,
    "Dial": _dec_dial,
    "BridgeCreated": _dec_bridge_created,
    "BridgeDestroyed": _dec_bridge_destroyed,
    "RecordingStarted": _recording(RecordingStarted),
    "RecordingFinished": _recording(RecordingFinished),
    "RecordingFailed": _recording(RecordingFailed),
    "PlaybackStarted": _playback(PlaybackStarted),
    "PlaybackContinuing": _playback(PlaybackContinuing),
    "PlaybackFinished": _playback(PlaybackFinished),
    "DeviceStateChanged": _dec_device,
    "ApplicationReplaced": _dec_replaced,
}

EVENT_CLASSES: dict[str, type[AriEvent]] = {
    "ChannelCreated": ChannelCreated,
    "ChannelDestroyed": ChannelDestroyed,
    "ChannelStateChange": ChannelStateChange,
    "ChannelDialplan": ChannelDialplan,
    "ChannelHangupRequest": ChannelHangupRequest,
    "ChannelCallerId": ChannelCallerId,
    "ChannelConnectedLine": ChannelConnectedLine,
    "StasisStart": StasisStart,
    "StasisEnd": StasisEnd,
    "ChannelEnteredBridge": ChannelEnteredBridge,
    "ChannelLeftBridge": ChannelLeftBridge,
    "ChannelDtmfReceived": ChannelDtmfReceived,
    "ChannelHold": ChannelHold,
    "ChannelUnhold": ChannelUnhold,
    "ChannelTalkingStarted": ChannelTalkingStarted,
    "ChannelTalkingFinished": ChannelTalkingFinished,
    "ChannelVarset": ChannelVarset,
    "ChannelUserevent": ChannelUserevent,
    "Dial": Dial,
    "BridgeCreated": BridgeCreated,
    "BridgeDestroyed": BridgeDestroyed,
    "RecordingStarted": RecordingStarted,
    "RecordingFinished": RecordingFinished,
    "RecordingFailed": RecordingFailed,
    "PlaybackStarted": PlaybackStarted,
    "PlaybackContinuing": PlaybackContinuing,
    "PlaybackFinished": PlaybackFinished,
    "DeviceStateChanged": DeviceStateChanged,
    "ApplicationReplaced": ApplicationReplaced,
}


def decode_event(frame: str | bytes | JsonObject) -> AriEvent:
    """Decode one WebSocket text frame (or its parsed JSON). Never raises for content.

    Raises :class:`AriDecodeError` only when the frame is not a JSON object at all.
    """
    if isinstance(frame, str | bytes):
        try:
            parsed = json.loads(frame)
        except ValueError as exc:
            raise AriDecodeError(f"frame is not JSON: {exc}") from exc
    else:
        parsed = frame
    if not isinstance(parsed, Mapping):
        raise AriDecodeError(f"frame is not a JSON object but {type(parsed).__name__}")
    raw: JsonObject = parsed
    etype = str(raw.get("type", ""))
    app = str(raw.get("application", ""))
    aid = str(raw.get("asterisk_id", ""))
    ts_text = raw.get("timestamp")
    try:
        ts = parse_timestamp(ts_text) if isinstance(ts_text, str) else _EPOCH
    except AriDecodeError as exc:
        return UnknownEvent(etype, app, _EPOCH, aid, raw, str(exc))
    decoder = DECODERS.get(etype)
    if decoder is None:
        return UnknownEvent(etype, app, ts, aid, raw, None)
    try:
        return decoder(etype, app, ts, aid, raw)
    except (AriDecodeError, TypeError, ValueError) as exc:
        return UnknownEvent(etype, app, ts, aid, raw, f"{etype}: {exc}")
