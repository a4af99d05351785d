"""Every real ARI frame goes through the decoder: no event lost, every field kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from ari_helpers import DATA, load_jsonl

from dialer.ari import (
    EVENT_CLASSES,
    AriDecodeError,
    ChannelDestroyed,
    ChannelHangupRequest,
    ChannelVarset,
    Dial,
    PlaybackFinished,
    RecordingFinished,
    StasisStart,
    UnknownEvent,
    decode_event,
    event_key,
    format_timestamp,
    parse_timestamp,
)

_ENVELOPE = {"type", "timestamp", "application", "asterisk_id"}


def real_frames() -> list[tuple[str, str]]:
    """(origin, raw text) of every WebSocket frame in the reference captures."""
    frames: list[tuple[str, str]] = []
    for path in sorted(DATA.glob("scenario_*_events.jsonl")):
        with path.open(encoding="utf-8") as f:
            frames.extend((f"{path.name}:{i + 1}", line.strip()) for i, line in enumerate(f))
    for i, probe in enumerate(load_jsonl(DATA / "websocket_behaviour.jsonl")):
        for key in ("received", "received_by_first", "received_by_second"):
            frames.extend(
                (f"websocket_behaviour.jsonl:{i + 1}:{key}", text) for text in probe.get(key, [])
            )
    return frames


FRAMES = real_frames()
SOURCES = sorted({origin.split(":")[0] for origin, _ in FRAMES})


def test_the_reference_set_is_all_there() -> None:
    assert len(FRAMES) >= 580
    types = {json.loads(text)["type"] for _, text in FRAMES}
    assert {
        "ApplicationReplaced",
        "ChannelCreated",
        "DeviceStateChanged",
        "PlaybackFinished",
    } <= types


@pytest.mark.parametrize("source", SOURCES)
def test_every_real_frame_decodes_to_its_typed_class(source: str) -> None:
    frames = [(o, t) for o, t in FRAMES if o.split(":")[0] == source]
    assert frames
    for origin, text in frames:
        check_frame(origin, text)


def check_frame(origin: str, text: str) -> None:
    raw = json.loads(text)
    event = decode_event(text)
    assert not isinstance(event, UnknownEvent), f"{origin}: {event.type} {event.decode_error}"
    assert type(event) is EVENT_CLASSES[raw["type"]]
    assert type(event).__name__ == raw["type"], "class names are the ARI names verbatim"
    assert event.raw == raw, f"{origin}: raw JSON not kept whole"
    assert event.application == raw["application"]
    assert event.asterisk_id == raw["asterisk_id"]
    assert event.timestamp == parse_timestamp(raw["timestamp"])
    for key in set(raw) - _ENVELOPE:
        assert hasattr(event, key), f"{origin}: field {key!r} of {raw['type']} has no attribute"
        value = getattr(event, key)
        if isinstance(raw[key], dict) and "id" in raw[key]:
            assert value.id == raw[key]["id"]
            assert value.raw == raw[key]
        elif isinstance(raw[key], str | int | bool) and key != "device_state":
            assert value == raw[key], f"{origin}: {key} decoded as {value!r}"


def test_channel_fields_are_typed() -> None:
    lines = load_jsonl(DATA / "scenario_answered_events.jsonl")
    dial = next(
        decode_event(e) for e in lines if e["type"] == "Dial" and e["dialstatus"] == "ANSWER"
    )
    assert isinstance(dial, Dial)
    assert dial.peer.id == "cust-answered" and dial.caller is None
    assert dial.channel_id == "cust-answered" and event_key(dial) == "cust-answered"
    assert dial.peer.caller.number == "5551000" and dial.peer.dialplan.priority == 1
    assert dial.peer.creationtime == datetime(2026, 11, 26, 20, 43, 6, 35000, tzinfo=UTC)
    start = next(decode_event(e) for e in lines if e["type"] == "StasisStart")
    assert isinstance(start, StasisStart) and start.args == ("customer", "campaign-demo")
    soft = next(
        decode_event(e) for e in lines if e["type"] == "ChannelHangupRequest" and e.get("soft")
    )
    assert isinstance(soft, ChannelHangupRequest) and soft.soft and soft.cause == 32
    destroyed = next(decode_event(e) for e in lines if e["type"] == "ChannelDestroyed")
    assert isinstance(destroyed, ChannelDestroyed) and destroyed.cause_txt == "Normal Clearing"
    finished = next(decode_event(e) for e in lines if e["type"] == "RecordingFinished")
    assert isinstance(finished, RecordingFinished)
    assert finished.recording.duration == 6 and event_key(finished) == "recording:rec-answered"
    varset = next(decode_event(e) for e in lines if e["type"] == "ChannelVarset")
    assert isinstance(varset, ChannelVarset) and varset.variable == "CAMPAIGN"


def test_playback_events_are_keyed_by_their_channel() -> None:
    lines = load_jsonl(DATA / "scenario_answered_no_agent_moh_playback_events.jsonl")
    failed = [decode_event(e) for e in lines if e["type"] == "PlaybackFinished"][-1]
    assert isinstance(failed, PlaybackFinished)
    assert failed.playback.state == "failed" and failed.channel_id == "cust-noagent"


def test_unknown_type_is_kept_not_dropped() -> None:
    frame = {
        "type": "ChannelToneDetected",
        "timestamp": "2026-11-26T20:43:06.035+0000",
        "application": "dialer",
        "asterisk_id": "x",
        "future_field": [1, 2],
    }
    event = decode_event(json.dumps(frame))
    assert isinstance(event, UnknownEvent)
    assert event.type == "ChannelToneDetected" and event.decode_error is None
    assert event.raw["future_field"] == [1, 2]


def test_known_type_with_missing_field_becomes_unknown_with_reason() -> None:
    frame: dict[str, Any] = {
        "type": "ChannelDestroyed",
        "timestamp": "2026-11-26T20:43:06.035+0000",
    }
    event = decode_event(frame)
    assert isinstance(event, UnknownEvent)
    assert event.decode_error is not None and "channel" in event.decode_error
    assert event.raw is frame


def test_bad_timestamp_is_reported_not_raised() -> None:
    event = decode_event({"type": "StasisEnd", "timestamp": "yesterday"})
    assert isinstance(event, UnknownEvent) and "yesterday" in (event.decode_error or "")


@pytest.mark.parametrize("frame", ["not json", "[1,2]", b"\xff"])
def test_non_object_frame_raises_decode_error(frame: str | bytes) -> None:
    with pytest.raises(AriDecodeError):
        decode_event(frame)


def test_timestamp_format_round_trip() -> None:
    text = "2026-11-26T20:43:06.035+0000"
    moment = parse_timestamp(text)
    assert moment == datetime(2026, 11, 26, 20, 43, 6, 35000, tzinfo=UTC)
    assert format_timestamp(moment) == text
    east = parse_timestamp("2026-11-26T21:43:06.035+0100")
    assert east == moment and east.utcoffset() == timedelta(hours=1)
    assert format_timestamp(
        datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=timezone(timedelta(hours=8)))
    ) == ("2026-01-02T03:04:05.006+0800")
    with pytest.raises(AriDecodeError):
        parse_timestamp("26/11/2026")


def test_key_order_does_not_matter() -> None:
    # ChannelVarset puts variable/value before type (README fact 20).
    line = next(text for _, text in FRAMES if text.startswith('{"variable"'))
    event = decode_event(line)
    assert isinstance(event, ChannelVarset)
