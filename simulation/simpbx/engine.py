"""The simulated Asterisk itself: channels, Local ;1/;2 halves, bridges, recordings, playbacks.

Everything here is synchronous and driven by :class:`SimScheduler` timers, so
the same code runs on a manual clock (tests) and in real or fast time (demo,
load). REST handlers call the public methods; events go to a sink
(``deliver(apps, event)``) that the server turns into WebSocket frames.

What is reproduced, and from which capture (shared/asterisk-reference):

* Originate of ``Local/<exten>@<context>``: ``;1`` is the channel id we were
  given, ``;2`` (``otherChannelId`` or ``<id>;2``) runs the dialplan of
  ``extensions.conf`` step by step (``ChannelDialplan``/``ChannelVarset`` as
  in the transcripts). Only ``;1`` gets ``StasisStart``/``StasisEnd``.
* ``Dial`` on ``;1``: "" then RINGING then a final status; none when the
  originate timeout expires; NOANSWER for reject/unallocated/cancel.
* Busy/congestion: ``;1`` destroyed with cause 0 "Unknown", ``;2`` with 17/34.
* A soft ``ChannelHangupRequest`` carries 32 (explicit hangup) or 16
  (dialplan ended); the non-soft one carries the Q.850 cause.
* ``ChannelCallerId`` on ``;2`` after its ``;1`` got a connected-line update
  is delivered lazily: right after ``;2``'s next dialplan step, or after its
  ``ChannelDestroyed`` (that is where the real captures show it).
* Bridge recording: a hidden ``Recorder/ARI-<n>;2`` participant (BRIDGEPEER,
  technology ``softmix`` at 3 participants, its unique id in the last
  ``ChannelLeftBridge``), ``RecordingFinished`` when the last real channel
  leaves, duration in whole seconds (floor).
* Bridge events reach an app only while it has interest in the bridge
  (``SimBridge.interest``, measured on Asterisk 22.10.1): a Stasis channel
  added with addChannel gives +1, leaving through removeChannel or
  ``DELETE /bridges`` gives it back, hanging up inside does not. So after
  removals/DELETE nobody gets ``BridgeDestroyed``/``RecordingFinished`` (on
  Asterisk the latter is a race; simpbx always plays the silent side), while
  a bridge whose channels hung up first still announces both.
* ``/channels/create`` + ``/dial``: only ``;1`` events, dialstring "" after the
  first Dial, the channel stays in Stasis after BUSY until the dial timeout,
  then soft hangup 32 and cause 19.
* AMD pattern: originate into ``dialer-amd,s``: the ``;1`` runs ``AMD()`` after
  answer and enters ``Stasis(dialer,amd,<STATUS>,<CAUSE>)``.

Known simplifications are listed in the package README section.
"""

from __future__ import annotations

import itertools
import logging
import re
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from simulation.simpbx.behaviours import (
    DEFAULT_RING,
    DEFAULT_TALK,
    DIALPLAN_KINDS,
    DIGIT_MAP,
    NOANSWER_WAIT,
    Behaviour,
    Kind,
    fmt_seconds,
    seconds,
)
from simulation.simpbx.clock import SimScheduler, Timer
from simulation.simpbx.wav import FORMATS, write_recording

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
Sink = Callable[[Iterable[str], JsonDict], None]
# A dialplan step yields how long it waits: seconds (0 = go on now) or None (park forever).
Steps = Generator[float | None, None, None]

ASTERISK_ID = "02:fc:00:00:00:01"

Q850_TEXT: dict[int, str] = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    28: "Invalid number format (incomplete number)",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    58: "Bearer capability not available",
    127: "Interworking, unspecified",
}

# DELETE /channels/{id}?reason=... (channels.json) -> Q.850 cause.
HANGUP_REASONS: dict[str, int] = {
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 19,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 38,
    "answered_elsewhere": 26,
}

# Soft-hangup flags carried in a soft ChannelHangupRequest (README fact 8).
SOFT_EXPLICIT = 32
SOFT_DIALPLAN_ENDED = 16

# Seconds each sound lasts in the simulated world (vm-nobodyavail measured in a capture).
SOUND_SECONDS: dict[str, float] = {
    "hello-world": 1.4,
    "vm-nobodyavail": 2.788,
    "vm-intro": 4.3,
    "vm-goodbye": 0.8,
    "beep": 0.25,
    "ss-noservice": 3.0,
    "tt-monkeys": 11.0,
    "tt-weasels": 4.9,
    "demo-congrats": 10.0,
    "demo-thanks": 3.5,
    "pls-hold-while-try": 2.2,
    "queue-thankyou": 1.6,
    "auth-thankyou": 1.1,
    "silence/1": 1.0,
}
MISSING_SOUND_FAIL_AFTER = 0.002
ASTERISK_INFO_BUILD: JsonDict = {
    "os": "Linux",
    "kernel": "6.18.44-fc-v595",
    "machine": "x86_64",
    "options": "OPTIONAL_API",
    "date": "2026-11-26 20:32:38 UTC",
    "user": "root",
}


class SimHttpError(Exception):
    """An ARI error reply: status, body ``{key: message}`` and the HTTP reason phrase."""

    def __init__(
        self, status: int, message: str, *, reason: str | None = None, key: str = "message"
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.reason = reason
        self.key = key


def _not_found_channel() -> SimHttpError:
    return SimHttpError(404, "Channel not found")


def _not_found_bridge() -> SimHttpError:
    # Quirk: bridge routes say "Not found", every other route "Not Found" (README fact 18).
    return SimHttpError(404, "Bridge not found", reason="Not found")


class Mode(StrEnum):
    APP = "app"  # POST /channels?app=...
    DIALPLAN = "dialplan"  # POST /channels?context=...&extension=... (AMD pattern)
    CREATE = "create"  # POST /channels/create, then /dial


class Proc:
    """Runs one dialplan generator on the scheduler; :meth:`kill` stops it (also from inside)."""

    __slots__ = ("done", "gen", "killed", "running", "sched", "timer")

    def __init__(self, sched: SimScheduler, gen: Steps) -> None:
        self.sched = sched
        self.gen = gen
        self.timer: Timer | None = None
        self.running = False
        self.killed = False
        self.done = False

    def start(self) -> None:
        self._step()

    def _step(self) -> None:
        self.timer = None
        while True:
            self.running = True
            try:
                delay = next(self.gen)
            except StopIteration:
                self.done = True
                return
            finally:
                self.running = False
            if self.killed:
                self.gen.close()
                self.done = True
                return
            if delay is None:
                return
            if delay > 0:
                self.timer = self.sched.call_later(delay, self._step)
                return

    def kill(self) -> None:
        if self.done:
            return
        self.killed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.running:
            self.gen.close()
            self.done = True


@dataclass(eq=False, slots=True)
class Chan:
    id: str
    name: str
    state: str
    caller: tuple[str, str]
    connected: tuple[str, str]
    context: str
    exten: str
    priority: int
    app_name: str
    app_data: str
    creationtime: str
    half: int = 0
    call: Call | None = None
    variables: dict[str, str] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set)
    stasis_app: str | None = None
    via_dialplan: bool = False
    bridge: SimBridge | None = None
    proc: Proc | None = None
    pending_callerid: bool = False
    # Measured in tests/ari/data/outcomes (Asterisk 22.10.1): a Playback cut by a hangup
    # still sets PLAYBACKSTATUS; AMD() cut by one sets AMDSTATUS=HANGUP; a channel
    # originated into the app and continued into the dialplan returns from two Stasis
    # applications when it hangs up (two STASISSTATUS=SUCCESS, no "dialplan ended").
    in_playback: bool = False
    in_amd: bool = False
    outer_stasis: bool = False
    moh: str | None = None
    playback: SimPlayback | None = None
    playback_queue: deque[SimPlayback] = field(default_factory=deque)
    alive: bool = True
    snoop_of: str | None = None  # a Snoop/ channel: the channel it listens to

    def json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": "",
            "caller": {"name": self.caller[0], "number": self.caller[1]},
            "connected": {"name": self.connected[0], "number": self.connected[1]},
            "accountcode": "",
            "dialplan": {
                "context": self.context,
                "exten": self.exten,
                "priority": self.priority,
                "app_name": self.app_name,
                "app_data": self.app_data,
            },
            "creationtime": self.creationtime,
            "language": "en",
        }


@dataclass(eq=False, slots=True)
class Call:
    """A Local channel pair and how it was started."""

    c1: Chan
    c2: Chan
    mode: Mode
    app: str | None
    args: tuple[str, ...]
    exten: str
    context: str
    timeout: float
    dp_context: str = ""
    dp_exten: str = ""
    kind: Kind | None = None
    answered: bool = False
    dial_started: bool = False
    dial_failed: bool = False
    timer: Timer | None = None

    def dialstring(self) -> str:
        return f"{self.exten}@{self.context}"


@dataclass(eq=False, slots=True)
class SimRecording:
    name: str
    format: str
    bridge: SimBridge
    started: float
    recorder_name: str
    recorder_uid: str
    timer: Timer | None = None

    def json(self, state: str, duration: int | None = None) -> JsonDict:
        data: JsonDict = {
            "name": self.name,
            "format": self.format,
            "state": state,
            "target_uri": "bridge:" + self.bridge.id,
        }
        if duration is not None:
            data["duration"] = duration
        return data


@dataclass(frozen=True, slots=True)
class StoredRec:
    name: str
    format: str
    path: Path
    duration: float


@dataclass(eq=False, slots=True)
class SimBridge:
    id: str
    name: str
    bridge_type: str
    creationtime: str
    technology: str = "simple_bridge"
    channels: list[Chan] = field(default_factory=list)
    recordings: list[SimRecording] = field(default_factory=list)
    # Per-app interest count, as Asterisk's app subscription forwards count it: +1 when a
    # Stasis channel of the app is added (addChannel) or an explicit eventSource=bridge:
    # subscribe; -1 when such a channel leaves through removeChannel or DELETE /bridges,
    # or on unsubscribe. A channel hanging up inside the bridge does NOT give its count
    # back (measured on Asterisk 22.10.1, see tests/ari/test_ari_contract.py), so the app
    # keeps getting RecordingFinished/BridgeDestroyed after a hangup but not after a removal.
    interest: dict[str, int] = field(default_factory=dict)

    @property
    def apps(self) -> set[str]:
        """Apps subscribed to this bridge right now (interest count above zero)."""
        return {app for app, n in self.interest.items() if n > 0}

    def add_interest(self, app: str) -> None:
        self.interest[app] = self.interest.get(app, 0) + 1

    def drop_interest(self, app: str) -> bool:
        """Give one count back; False when the app had none."""
        n = self.interest.get(app, 0)
        if n <= 0:
            return False
        if n == 1:
            del self.interest[app]
        else:
            self.interest[app] = n - 1
        return True

    def json(self, *, with_recorder: bool = False) -> JsonDict:
        ids = [c.id for c in self.channels]
        if with_recorder:
            ids.extend(r.recorder_uid for r in self.recordings)
        return {
            "id": self.id,
            "technology": self.technology,
            "bridge_type": self.bridge_type,
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": self.name,
            "channels": ids,
            "creationtime": self.creationtime,
            "video_mode": "talker",
        }


#: The directions ``spy`` and ``whisper`` of a snoop may take (api-docs allowableValues).
SNOOP_DIRECTIONS = frozenset({"none", "both", "out", "in"})


@dataclass(frozen=True, slots=True)
class SnoopRecord:
    """One snoop channel created (``Engine.snoops``): who listens to what, and how."""

    snoop_id: str
    target: str
    spy: str
    whisper: str
    app: str
    args: tuple[str, ...]


@dataclass(eq=False, slots=True)
class SimPlayback:
    id: str
    media_uri: str
    channel: Chan
    language: str
    duration: float | None  # None: the sound does not exist (PlaybackFinished "failed")
    state: str = "queued"
    timer: Timer | None = None

    def json(self) -> JsonDict:
        return {
            "id": self.id,
            "media_uri": self.media_uri,
            "target_uri": "channel:" + self.channel.id,
            "language": self.language,
            "state": self.state,
        }


# Contexts with an ``s`` extension unless listed in ``_extension_exists``.
DIALPLAN_CONTEXTS = frozenset(
    {"sim-customers", "sim-agents", "dialer-stasis", "dialer-amd", "dialer-abandon"}
)
_CUSTOMER_EXTEN = re.compile(r"\+?[0-9].+")
_AGENT_EXTEN = re.compile(r"[0-9].+")


def parse_caller_id(text: str) -> tuple[str, str]:
    """``"Dialer" <5551000>`` -> ("Dialer", "5551000"); a bare number is the number."""
    text = text.strip()
    match = re.fullmatch(r'(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>', text)
    if match:
        return (
            match.group(1) if match.group(1) is not None else match.group(2).strip(),
            match.group(3),
        )
    return ("", text) if text else ("", "")


class Engine:
    """State and behaviour of the simulated PBX. Not thread-safe; one event loop."""

    def __init__(
        self,
        sched: SimScheduler,
        sink: Sink,
        recordings_dir: Path,
        *,
        asterisk_id: str = ASTERISK_ID,
    ) -> None:
        self.sched = sched
        self.sink = sink
        self.recordings_dir = recordings_dir
        self.asterisk_id = asterisk_id
        self.channels: dict[str, Chan] = {}
        self.snoops: list[SnoopRecord] = []
        self.bridges: dict[str, SimBridge] = {}
        self.live: dict[str, SimRecording] = {}
        self.stored: dict[str, StoredRec] = {}
        self.playbacks: dict[str, SimPlayback] = {}
        self.overrides: dict[str, Behaviour] = {}
        self.registered_apps: set[str] = set()
        # The dialplan contexts the simulated PBX has (extensions.conf + the shipped
        # asterisk_conf); a test removes one to play a PBX where it was not installed.
        self.dialplan_contexts: set[str] = set(DIALPLAN_CONTEXTS)
        self.subscribe_all: set[str] = set()
        self._local_seq = itertools.count()
        self._uid_seq = itertools.count(1)
        self._ts_cache: tuple[int, str] = (-1, "")
        self.events_emitted = 0
        self.started_at = self._timestamp()

    # --- helpers ----------------------------------------------------------------------------

    def _timestamp(self) -> str:
        wall = self.sched.wall()
        ms = int(wall * 1000)
        if ms == self._ts_cache[0]:
            return self._ts_cache[1]
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"
        self._ts_cache = (ms, text)
        return text

    def _uniqueid(self) -> str:
        return f"{int(self.sched.epoch)}.{next(self._uid_seq)}"

    def _emit(self, apps: Iterable[str], event_type: str, fields: JsonDict) -> None:
        targets = set(apps) | self.subscribe_all
        if not targets:
            return
        event: JsonDict = {"type": event_type, "timestamp": self._timestamp()}
        event.update(fields)
        event["asterisk_id"] = self.asterisk_id
        self.events_emitted += 1
        self.sink(targets, event)

    def _chan_event(self, c: Chan, event_type: str, fields: JsonDict | None = None) -> None:
        data: JsonDict = dict(fields) if fields else {}
        data["channel"] = c.json()
        self._emit(c.apps, event_type, data)

    def _device_state(self, c: Chan, state: str) -> None:
        """``DeviceStateChanged`` of the Local endpoint; only subscribeAll apps see it."""
        if self.subscribe_all:
            name = f"{c.exten}@{c.context}" if c.call is None else c.call.dialstring()
            self._emit(
                (),
                "DeviceStateChanged",
                {"device_state": {"name": "Local/" + name, "state": state}},
            )

    def _state(self, c: Chan, state: str) -> None:
        first_change = c.half == 2 and c.state == "Ring"
        c.state = state
        self._chan_event(c, "ChannelStateChange")
        if first_change:
            self._device_state(c, "INUSE")

    def _varset(self, c: Chan, variable: str, value: str) -> None:
        c.variables[variable] = value
        # ChannelVarset puts variable/value before type (README fact 20).
        targets = c.apps | self.subscribe_all
        if not targets:
            return
        event: JsonDict = {
            "variable": variable,
            "value": value,
            "type": "ChannelVarset",
            "timestamp": self._timestamp(),
            "channel": c.json(),
            "asterisk_id": self.asterisk_id,
        }
        self.events_emitted += 1
        self.sink(targets, event)

    def _caller_id_event(self, c: Chan) -> None:
        self._chan_event(
            c,
            "ChannelCallerId",
            {
                "caller_presentation": 0,
                "caller_presentation_txt": "Presentation Allowed, Not Screened",
            },
        )

    def _dp(self, c: Chan, app: str, data: str) -> None:
        c.priority += 1
        c.app_name = app
        c.app_data = data
        self._chan_event(c, "ChannelDialplan", {"dialplan_app": app, "dialplan_app_data": data})
        if c.pending_callerid:
            c.pending_callerid = False
            self._caller_id_event(c)

    @staticmethod
    def _goto(c: Chan, context: str, exten: str) -> None:
        c.context = context
        c.exten = exten
        c.priority = 0

    def _hangup_request(self, c: Chan, cause: int, *, soft: bool = False) -> None:
        fields: JsonDict = {"cause": cause}
        if soft:
            fields["soft"] = True
        self._chan_event(c, "ChannelHangupRequest", fields)

    def _destroyed(self, c: Chan, cause: int) -> None:
        if not c.alive:
            return
        c.alive = False
        if c.proc is not None:
            c.proc.kill()
        self._stop_playbacks(c)
        if c.bridge is not None:
            c.bridge.channels.remove(c)
            c.bridge = None
        self._chan_event(
            c, "ChannelDestroyed", {"cause": cause, "cause_txt": Q850_TEXT.get(cause, "Unknown")}
        )
        if c.half and (c.half == 1 or c.state != "Ring"):
            self._device_state(c, "NOT_INUSE")
        if c.pending_callerid:
            c.pending_callerid = False
            self._caller_id_event(c)
        self.channels.pop(c.id, None)
        for other in [o for o in self.channels.values() if o.snoop_of == c.id]:
            self._destroyed(other, 16)  # a snoop ends with the channel it listens to
        call = c.call
        if call is not None and not call.c1.alive and not call.c2.alive and call.timer is not None:
            call.timer.cancel()
            call.timer = None

    def _dial(self, call: Call, status: str) -> None:
        if status == "":
            call.dial_started = True
        # After the first Dial of /channels/{id}/dial the dialstring is "" (README fact 15).
        dialstring = "" if call.mode is Mode.CREATE and status != "" else call.dialstring()
        self._emit(
            call.c1.apps,
            "Dial",
            {"dialstatus": status, "forward": "", "dialstring": dialstring, "peer": call.c1.json()},
        )

    def _connected_line(self, c: Chan) -> None:
        self._chan_event(c, "ChannelConnectedLine")
        call = c.call
        if call is not None and c.half == 1 and call.c2.alive:
            call.c2.pending_callerid = True

    def _start_proc(self, c: Chan, steps: Steps) -> None:
        proc = Proc(self.sched, steps)
        c.proc = proc
        proc.start()

    def _channel(self, channel_id: str) -> Chan:
        c = self.channels.get(channel_id)
        if c is None:
            raise _not_found_channel()
        return c

    def _in_stasis(self, channel_id: str) -> Chan:
        c = self._channel(channel_id)
        if c.stasis_app is None:
            raise SimHttpError(409, "Channel not in Stasis application")
        return c

    # --- originate --------------------------------------------------------------------------

    def originate(
        self,
        params: Mapping[str, str],
        variables: Mapping[str, str],
        *,
        create: bool = False,
        path_channel_id: str | None = None,
    ) -> JsonDict:
        """POST /channels (and /channels/create): the reply comes at once (README fact 1)."""
        endpoint = params.get("endpoint", "")
        if not endpoint:
            raise SimHttpError(400, "Endpoint must be specified")
        app = params.get("app") or None
        extension = params.get("extension") or None
        if not create and app is None and extension is None:
            raise SimHttpError(400, "Application or extension must be specified")
        if create and app is None:
            raise SimHttpError(400, "Application must be specified")
        tech, _, resource = endpoint.partition("/")
        if not tech or not resource:
            raise SimHttpError(400, "Invalid endpoint specified")
        if tech.lower() != "local":
            # Only Local channels exist in the reference world; Asterisk answers {"error": ...}.
            raise SimHttpError(500, "Allocation failed", key="error")
        cid = path_channel_id or params.get("channelId") or self._uniqueid()
        oid = params.get("otherChannelId") or cid + ";2"
        if cid in self.channels or oid in self.channels:
            raise SimHttpError(409, "Channel with given unique ID already exists")
        timeout = self._int_param(params, "timeout", 30)
        exten, _, context = resource.partition("@")
        context = (context or "default").split("/")[0]
        caller = ("", "") if create else parse_caller_id(params.get("callerId", ""))
        seq = next(self._local_seq)
        base = f"Local/{exten}@{context}-{seq:08x}"
        created = self._timestamp()
        mode = Mode.CREATE if create else (Mode.APP if app is not None else Mode.DIALPLAN)
        app_name, app_data = ("", "") if create else ("AppDial2", "(Outgoing Line)")
        c1 = Chan(
            cid, base + ";1", "Down", caller, caller, context, exten, 1, app_name, app_data,
            created, half=1,
        )  # fmt: skip
        c2 = Chan(
            oid, base + ";2", "Ring", caller, caller, context, exten, 0, "", "", created, half=2
        )
        args = tuple(params["appArgs"].split(",")) if params.get("appArgs") else ()
        call = Call(c1, c2, mode, app, args, exten, context, float(timeout))
        if mode is Mode.DIALPLAN:
            call.dp_context = params.get("context") or "default"
            call.dp_exten = extension or "s"
        c1.call = call
        c2.call = call
        c1.variables.update(variables)
        c2.variables.update(variables)
        if mode is Mode.APP and app is not None:
            c1.apps.add(app)
            c2.apps.add(app)
        self.channels[cid] = c1
        self.channels[oid] = c2
        if self.subscribe_all:
            # Only a subscribeAll app sees the birth of the channels (websocket_behaviour).
            self._emit((), "ChannelCreated", {"channel": c1.json()})
            self._emit((), "ChannelCreated", {"channel": c2.json()})
            if mode is not Mode.CREATE:
                self._emit(
                    (), "ChannelDialplan",
                    {"dialplan_app": app_name, "dialplan_app_data": app_data, "channel": c1.json()},
                )  # fmt: skip
        reply = c1.json()
        if mode is Mode.CREATE and app is not None:
            c1.apps.add(app)
            for name, value in reversed(list(variables.items())):
                self._varset(c1, name, value)
            c1.priority = 1
            c1.app_name = "Stasis"
            c1.app_data = ",".join((app, *args))
            self._chan_event(
                c1, "ChannelDialplan", {"dialplan_app": "Stasis", "dialplan_app_data": c1.app_data}
            )
            self._enter_stasis(c1, app, args, via_dialplan=False, set_dialplan=False)
        else:
            self._start_local(call, variables)
        return reply

    @staticmethod
    def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
        text = params.get(name)
        if text is None or text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise SimHttpError(400, f"{name} must be an integer, not {text!r}") from None

    def _start_local(self, call: Call, variables: Mapping[str, str]) -> None:
        """The ;2 half starts running the dialplan of its context."""
        c1, c2 = call.c1, call.c2
        for name, value in reversed(list(variables.items())):
            self._varset(c2, name, value)
        # Every scenario capture starts ;2 with these two; the two websocket probes lack them
        # (a subscription race). We always send them.
        self._caller_id_event(c2)
        self._chan_event(c2, "ChannelConnectedLine")
        if call.context == "sim-customers" and _CUSTOMER_EXTEN.fullmatch(call.exten):
            steps = self._customer(call)
        elif call.context == "sim-agents" and _AGENT_EXTEN.fullmatch(call.exten):
            steps = self._agent(call)
        else:
            # No such context/extension: 200 from POST, then only ChannelDestroyed, cause 0.
            if call.mode is Mode.CREATE:
                self._destroyed(c2, 0)
                self._dial(call, "")
                self._dial(call, "CHANUNAVAIL")
                call.dial_failed = True
                return
            self._destroyed(c2, 0)
            self._destroyed(c1, 0)
            return
        self._dial(call, "")
        if call.timeout > 0:
            call.timer = self.sched.call_later(call.timeout, lambda: self._on_timeout(call))
        self._start_proc(c2, steps)

    # --- the simulated dialplan (extensions.conf) -------------------------------------------

    def _customer(self, call: Call) -> Steps:
        c2 = call.c2
        number = call.exten
        if number.startswith("+"):
            self._dp(c2, "Goto", f"{number[1:]},1")
            number = number[1:]
            self._goto(c2, "sim-customers", number)
        override = self.overrides.get(number) or self.overrides.get("+" + number)
        sb = c2.variables.get("SIM_BEHAVIOUR", "")
        sr = c2.variables.get("SIM_RING", "")
        st = c2.variables.get("SIM_TALK", "")
        patience: float | None = None
        forced: Kind | None = None
        if override is not None:
            forced = override.kind
            sb = Kind.HUMAN.value if override.kind is Kind.HANGUP_WAITING else override.kind.value
            sr = fmt_seconds(override.ring) if override.ring is not None else sr
            st = fmt_seconds(override.talk) if override.talk is not None else st
            patience = override.patience
        self._dp(c2, "NoOp", f"SIM customer {number} behaviour={sb} ring={sr} talk={st}")
        target = sb if sb else f"digit{number[-1]}"
        self._dp(c2, "Goto", f"sim-behaviour,{target},1")
        self._goto(c2, "sim-behaviour", target)
        kind: Kind
        if target.startswith("digit") and target[5:] in DIGIT_MAP:
            kind, ring_default, talk_default = DIGIT_MAP[target[5:]]
            if talk_default is not None:
                st = st or talk_default
                self._dp(c2, "Set", f"SIM_TALK={st}")
                self._varset(c2, "SIM_TALK", st)
            if ring_default is not None:
                sr = sr or ring_default
                self._dp(c2, "Set", f"SIM_RING={sr}")
                self._varset(c2, "SIM_RING", sr)
            self._dp(c2, "Goto", f"{kind.value},1")
            self._goto(c2, "sim-behaviour", kind.value)
        elif target in DIALPLAN_KINDS:
            kind = Kind(target)
        else:
            # Unknown SIM_BEHAVIOUR: the "i" extension, Hangup(1).
            self._varset(c2, "INVALID_EXTEN", target)
            self._goto(c2, "sim-behaviour", "i")
            self._dp(c2, "NoOp", "SIM unknown behaviour")
            self._dp(c2, "Hangup", "1")
            call.kind = Kind.UNALLOCATED
            self._remote_hangup(call, 1)
            return
        call.kind = forced or kind
        yield from self._behaviour(call, forced or kind, sr, st, patience)

    def _behaviour(self, call: Call, kind: Kind, sr: str, st: str, patience: float | None) -> Steps:
        c2 = call.c2
        if kind in (Kind.HUMAN, Kind.MACHINE, Kind.HANGUP_WAITING):
            ring = sr if sr != "" else DEFAULT_RING[kind]
            talk = st if st != "" else DEFAULT_TALK
            self._dp(c2, "Set", f"RING={ring}")
            self._varset(c2, "RING", ring)
            self._dp(c2, "Set", f"TALK={talk}")
            self._varset(c2, "TALK", talk)
            ring_s = seconds(ring)
            self._dp(c2, "ExecIf", f"{1 if ring_s > 0 else 0}?Ringing()")
            if ring_s > 0:
                self._ringing(call)
            self._dp(c2, "Wait", ring)
            yield ring_s
            self._dp(c2, "Answer", "")
            self._answer(call)
            # Playback starts ~0.5 s after an Answer() without prior ringing, ~20 ms otherwise.
            yield 0.5 if ring_s == 0 else 0.025
            talk_s = seconds(talk)
            if kind is Kind.MACHINE:
                self._dp(c2, "Playback", "hello-world&vm-nobodyavail&vm-intro&beep")
                c2.in_playback = True
                yield 10.2
                c2.in_playback = False
                self._varset(c2, "PLAYBACKSTATUS", "SUCCESS")
                self._dp(c2, "Wait", talk)
                yield talk_s
            else:
                self._dp(c2, "Playback", "hello-world")
                c2.in_playback = True
                yield SOUND_SECONDS["hello-world"]
                c2.in_playback = False
                self._varset(c2, "PLAYBACKSTATUS", "SUCCESS")
                self._dp(c2, "PlayTones", "440/200,0/1800")
                self._dp(c2, "Wait", talk)
                if patience is not None and patience < talk_s:
                    yield patience
                    talk_s = talk_s - patience if self._bridged_with_peer(call.c1) else 0.0
                yield talk_s
                self._dp(c2, "StopPlayTones", "")
            self._dp(c2, "Hangup", "16")
            self._remote_hangup(call, 16)
            return
        if kind in (Kind.BUSY, Kind.CONGESTION):
            ring = sr if sr != "" else DEFAULT_RING[kind]
            self._dp(c2, "Set", f"RING={ring}")
            self._varset(c2, "RING", ring)
            ring_s = seconds(ring)
            self._dp(c2, "ExecIf", f"{1 if ring_s > 0 else 0}?Ringing()")
            if ring_s > 0:
                self._ringing(call)
            self._dp(c2, "Wait", ring)
            yield ring_s
            if kind is Kind.BUSY:
                self._dp(c2, "Busy", "20")
                self._busy(call, "BUSY", 17)
            else:
                self._dp(c2, "Congestion", "20")
                self._busy(call, "CONGESTION", 34)
            return
        if kind is Kind.EARLY:
            yield self._set_ring_and_ring(call, kind, sr)
            self._dp(c2, "Answer", "")
            self._answer(call)
            # Answer() waits half a second for media: Hangup came 0.501 s after it
            # (tests/ari/data/outcomes/scenario_outcome_early_events.jsonl).
            yield 0.5
            self._dp(c2, "Hangup", "16")
            self._remote_hangup(call, 16)
            return
        if kind is Kind.NOANSWER:
            self._dp(c2, "Ringing", "")
            self._ringing(call)
            self._dp(c2, "Wait", fmt_seconds(NOANSWER_WAIT))
            yield NOANSWER_WAIT
            self._dp(c2, "Hangup", "19")
            self._remote_hangup(call, 19)
            return
        if kind is Kind.REJECT:
            yield self._set_ring_and_ring(call, kind, sr)
            self._dp(c2, "Hangup", "21")
            self._remote_hangup(call, 21)
            return
        # Kind.UNALLOCATED
        self._dp(c2, "Hangup", "1")
        self._remote_hangup(call, 1)

    def _set_ring_and_ring(self, call: Call, kind: Kind, sr: str) -> float:
        """``Set(RING=...)``, ``Ringing()``, ``Wait(${RING})``: the seconds to wait."""
        c2 = call.c2
        ring = sr if sr != "" else DEFAULT_RING[kind]
        self._dp(c2, "Set", f"RING={ring}")
        self._varset(c2, "RING", ring)
        self._dp(c2, "Ringing", "")
        self._ringing(call)
        self._dp(c2, "Wait", ring)
        return seconds(ring)

    def _agent(self, call: Call) -> Steps:
        """``[sim-agents]``: answers at once, stays up AGENT_TALK seconds (default 3600)."""
        c2 = call.c2
        talk_var = c2.variables.get("AGENT_TALK", "")
        call.kind = Kind.HUMAN
        self._dp(c2, "NoOp", f"SIM agent {call.exten} talk={talk_var}")
        atalk = talk_var or "3600"
        self._dp(c2, "Set", f"ATALK={atalk}")
        self._varset(c2, "ATALK", atalk)
        self._dp(c2, "Answer", "")
        self._answer(call)
        yield 0.012
        self._dp(c2, "PlayTones", "620/100,0/2900")
        self._dp(c2, "Wait", atalk)
        yield seconds(atalk)
        self._dp(c2, "StopPlayTones", "")
        self._dp(c2, "Hangup", "16")
        self._remote_hangup(call, 16)

    def _c1_dialplan(self, call: Call) -> Steps:
        """The ;1 half after answer when originated into dialplan (``dialer-amd``)."""
        c1 = call.c1
        self._goto(c1, call.dp_context, call.dp_exten)
        if call.dp_context == "dialer-amd" and call.dp_exten == "s":
            after_greeting = c1.variables.get("DIALER_AMD_AFTER_GREETING_MS")
            if after_greeting is None:
                # The reference dialplan's [dialer-amd].
                self._dp(c1, "NoOp", f"AMD on {c1.name}")
                self._dp(c1, "AMD", "")
            else:
                # asterisk_conf/extensions.conf's [dialer-amd], as the dialer drives it.
                attempt = c1.variables.get("DIALER_ATTEMPT_ID", "")
                self._dp(c1, "NoOp", f"AMD on {c1.name} attempt={attempt}")
                self._dp(c1, "AMD", f",,{after_greeting}")
            if call.kind is Kind.MACHINE:
                status, cause, took = "MACHINE", "LONGGREETING-1500-1500", 2.388
            else:
                status, cause, took = "HUMAN", "HUMAN-800-800", 2.925
            c1.in_amd = True
            yield took
            c1.in_amd = False
            self._varset(c1, "AMDSTATUS", status)
            self._varset(c1, "AMDCAUSE", cause)
            self._dp(c1, "NoOp", f"AMDSTATUS={status} AMDCAUSE={cause}")
            self._dp(c1, "Stasis", f"dialer,amd,{status},{cause}")
            self._enter_stasis(c1, "dialer", ("amd", status, cause), via_dialplan=True)
            return
        if call.dp_context == "dialer-stasis":
            self._dp(c1, "Stasis", f"dialer,inbound,{call.dp_exten}")
            self._enter_stasis(c1, "dialer", ("inbound", call.dp_exten), via_dialplan=True)
            return
        # No such extension in that context: the dialplan ends at once.
        self._hangup_after_answer(call, c1_cause=16, dialer_initiated=False)

    # --- call progress ----------------------------------------------------------------------

    def _ringing(self, call: Call) -> None:
        c1 = call.c1
        if c1.alive and c1.state != "Ringing":
            self._state(c1, "Ringing")
            self._dial(call, "RINGING")

    def _answer(self, call: Call) -> None:
        call.answered = True
        self._cancel_timer(call)
        self._state(call.c2, "Up")
        self._state(call.c1, "Up")
        self._dial(call, "ANSWER")
        if call.mode is Mode.APP and call.app is not None:
            self._enter_stasis(call.c1, call.app, call.args, via_dialplan=False)
        elif call.mode is Mode.DIALPLAN:
            self._start_proc(call.c1, self._c1_dialplan(call))

    def _enter_stasis(
        self,
        c: Chan,
        app: str,
        args: tuple[str, ...],
        *,
        via_dialplan: bool,
        set_dialplan: bool = True,
    ) -> None:
        if app not in self.registered_apps:
            # "Stasis app 'x' doesn't exist": Asterisk hangs the channel up (README fact 9).
            logger.info("simpbx: Stasis app %r does not exist; hanging up %s", app, c.id)
            if c.call is not None:
                self._hangup_after_answer(c.call, c1_cause=16, dialer_initiated=False)
            return
        c.stasis_app = app
        c.via_dialplan = via_dialplan
        c.apps.add(app)
        if set_dialplan:
            c.app_name = "Stasis"
            c.app_data = ",".join((app, *args))
        self._varset(c, "STASISSTATUS", "")
        self._emit(c.apps, "StasisStart", {"args": list(args), "channel": c.json()})

    def _leave_stasis(self, c: Chan, *, returning: bool = True) -> None:
        if c.stasis_app is None:
            return
        c.stasis_app = None
        self._chan_event(c, "StasisEnd")
        if returning:
            self._varset(c, "STASISSTATUS", "SUCCESS")

    def _busy(self, call: Call, status: str, c2_cause: int) -> None:
        c1, c2 = call.c1, call.c2
        self._state(c2, "Busy")
        self._dial(call, status)
        self._hangup_request(c2, 0)
        if call.mode is Mode.CREATE:
            call.dial_failed = True
        else:
            self._cancel_timer(call)
            self._destroyed(c1, 0)
        self._hangup_request(c2, SOFT_DIALPLAN_ENDED, soft=True)
        self._destroyed(c2, c2_cause)

    @staticmethod
    def _cancel_timer(call: Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None

    def _remote_hangup(self, call: Call, cause: int) -> None:
        """The far end (the ;2 dialplan) hung up with ``cause``."""
        c1, c2 = call.c1, call.c2
        if c2.alive:
            self._hangup_request(c2, SOFT_DIALPLAN_ENDED, soft=True)
        if not c1.alive:
            self._destroyed(c2, cause)
            return
        if call.mode is Mode.CREATE and not call.answered:
            self._destroyed(c2, cause)
            self._dial(call, "NOANSWER")
            call.dial_failed = True
            return
        self._hangup_request(c1, cause)
        self._destroyed(c2, cause)
        if call.answered:
            self._finish_c1(c1, cause)
        else:
            self._cancel_timer(call)
            self._dial(call, "NOANSWER")
            self._destroyed(c1, cause)

    def _finish_c1(self, c1: Chan, cause: int) -> None:
        if c1.proc is not None:
            c1.proc.kill()
        if c1.in_amd:
            c1.in_amd = False
            self._varset(c1, "AMDSTATUS", "HANGUP")
            self._varset(c1, "AMDCAUSE", "")
        self._stop_playbacks(c1)
        if c1.bridge is not None:
            self._leave_bridge(c1.bridge, c1)
        self._leave_stasis(c1)
        if c1.outer_stasis:
            self._varset(c1, "STASISSTATUS", "SUCCESS")
        self._destroyed(c1, cause)

    def _on_timeout(self, call: Call) -> None:
        call.timer = None
        c1, c2 = call.c1, call.c2
        if call.answered or not c1.alive:
            return
        if call.mode is Mode.CREATE:
            self._hangup_after_answer(call, c1_cause=19, dialer_initiated=True)
            return
        # Originate timeout: no final Dial event (README fact 4).
        if c2.proc is not None:
            c2.proc.kill()
        if c2.alive:
            self._hangup_request(c2, 19)
        self._destroyed(c1, 19)
        if c2.alive:
            self._hangup_request(c2, SOFT_DIALPLAN_ENDED, soft=True)
            self._destroyed(c2, 19)

    def _hangup_after_answer(self, call: Call, *, c1_cause: int, dialer_initiated: bool) -> None:
        """The ;1 half goes away (dialer DELETE, dial timeout, dialplan end); ;2 follows."""
        c1, c2 = call.c1, call.c2
        if dialer_initiated:
            self._hangup_request(c1, SOFT_EXPLICIT, soft=True)
        if c1.proc is not None:
            c1.proc.kill()
        self._stop_playbacks(c1)
        if c1.bridge is not None:
            self._leave_bridge(c1.bridge, c1)
        was_in_stasis = c1.stasis_app is not None
        self._leave_stasis(c1)
        if c1.outer_stasis:
            self._varset(c1, "STASISSTATUS", "SUCCESS")
        elif c1.via_dialplan or (not was_in_stasis and call.mode is Mode.DIALPLAN):
            self._hangup_request(c1, SOFT_DIALPLAN_ENDED, soft=True)
        self._cancel_timer(call)
        if c2.alive:
            if c2.proc is not None:
                c2.proc.kill()
            self._hangup_request(c2, 16)
            self._destroyed(c1, c1_cause)
            if c2.in_playback:
                c2.in_playback = False
                self._varset(c2, "PLAYBACKSTATUS", "SUCCESS")
            self._hangup_request(c2, SOFT_DIALPLAN_ENDED, soft=True)
            self._destroyed(c2, 16)
        else:
            self._destroyed(c1, c1_cause)

    def hangup(self, channel_id: str, params: Mapping[str, str]) -> None:
        """DELETE /channels/{id}."""
        c = self._channel(channel_id)
        cause = 16
        reason_code = params.get("reason_code")
        reason = params.get("reason")
        if reason_code:
            try:
                cause = int(reason_code)
            except ValueError:
                raise SimHttpError(400, "Invalid reason for hangup provided") from None
        elif reason:
            if reason not in HANGUP_REASONS:
                raise SimHttpError(400, "Invalid reason for hangup provided")
            cause = HANGUP_REASONS[reason]
        call = c.call
        if call is None:
            self._destroyed(c, cause)
            return
        if c is call.c2:
            # Hanging up the ;2 half looks like the far end hanging up.
            if c.proc is not None:
                c.proc.kill()
            self._remote_hangup(call, cause)
            return
        if call.answered or call.mode is Mode.CREATE or c.stasis_app is not None:
            self._hangup_after_answer(call, c1_cause=cause, dialer_initiated=True)
            return
        # Cancel while dialing/ringing (scenario cancel_while_ringing).
        self._hangup_request(c, SOFT_EXPLICIT, soft=True)
        if call.dial_started:
            self._dial(call, "NOANSWER")
        self._cancel_timer(call)
        c2 = call.c2
        if c2.alive:
            if c2.proc is not None:
                c2.proc.kill()
            self._hangup_request(c2, 16)
            self._destroyed(c, cause)
            self._hangup_request(c2, SOFT_DIALPLAN_ENDED, soft=True)
            self._destroyed(c2, cause)
        else:
            self._destroyed(c, cause)

    def remote_hangup(self, channel_id: str, cause: int = 16) -> None:
        """Test control: the callee behind ``channel_id`` (;1 or ;2) hangs up now."""
        c = self._channel(channel_id)
        call = c.call
        if call is None:
            self._destroyed(c, cause)
            return
        c2 = call.c2
        if c2.alive:
            if c2.proc is not None:
                c2.proc.kill()
            self._dp(c2, "Hangup", str(cause))
            self._remote_hangup(call, cause)
        else:
            self._finish_c1(call.c1, cause)

    # --- other channel operations -----------------------------------------------------------

    def dial(self, channel_id: str, params: Mapping[str, str]) -> None:
        """POST /channels/{id}/dial for a channel made by /channels/create."""
        c = self._channel(channel_id)
        call = c.call
        if call is None or call.mode is not Mode.CREATE or call.dial_started or c is not call.c1:
            raise SimHttpError(409, "Channel cannot be dialed.")
        if params.get("caller") and params["caller"] not in self.channels:
            raise SimHttpError(404, "Caller channel not found")
        timeout = self._int_param(params, "timeout", 0)
        call.timeout = 0.0
        self._start_local(call, {})
        if timeout > 0 and call.c1.alive and not call.answered:
            call.timer = self.sched.call_later(timeout, lambda: self._on_timeout(call))

    def answer(self, channel_id: str) -> None:
        c = self._in_stasis(channel_id)
        if c.state != "Up":
            self._state(c, "Up")

    def continue_in_dialplan(self, channel_id: str, params: Mapping[str, str]) -> None:
        c = self._in_stasis(channel_id)
        call = c.call
        # Leaving for the dialplan: StasisEnd only, STASISSTATUS is set when Stasis returns.
        self._leave_stasis(c, returning=False)
        if call is not None and call.mode is Mode.APP:
            c.outer_stasis = True
        if call is None or c is not call.c1:
            self._destroyed(c, 16)
            return
        call.dp_context = params.get("context") or c.context
        call.dp_exten = params.get("extension") or c.exten
        c.via_dialplan = True
        self._start_proc(c, self._c1_dialplan(call))

    def start_moh(self, channel_id: str, params: Mapping[str, str]) -> None:
        c = self._in_stasis(channel_id)
        c.moh = params.get("mohClass") or "default"

    def stop_moh(self, channel_id: str) -> None:
        c = self._in_stasis(channel_id)
        c.moh = None

    def snoop(self, channel_id: str, params: Mapping[str, str], snoop_id: str | None) -> JsonDict:
        """POST /channels/{id}/snoop[/{snoopId}]: a ``Snoop/`` channel, already up, that
        enters the given Stasis app; it ends when the channel it listens to ends. What it
        spies on and whispers into is kept in ``snoops`` for the tests (the audio hooks
        themselves are not simulated)."""
        target = self._channel(channel_id)
        app = params.get("app", "")
        if not app:
            raise SimHttpError(400, "Application name is required")
        spy = params.get("spy") or "none"
        whisper = params.get("whisper") or "none"
        for name, value in (("spy", spy), ("whisper", whisper)):
            if value not in SNOOP_DIRECTIONS:
                raise SimHttpError(400, f"Invalid direction specified for {name}")
        if spy == "none" and whisper == "none":
            raise SimHttpError(400, "Direction must be specified for at least spy or whisper")
        sid = snoop_id or self._uniqueid()
        if sid in self.channels:
            raise SimHttpError(409, "Channel with given unique ID already exists")
        seq = next(self._local_seq)
        c = Chan(
            sid, f"Snoop/{target.id}-{seq:08x}", "Up", ("", ""), ("", ""), "default", "s", 1,
            "", "", self._timestamp(), snoop_of=target.id,
        )  # fmt: skip
        self.channels[sid] = c
        args = tuple(a for a in params.get("appArgs", "").split(",") if a)
        self.snoops.append(SnoopRecord(sid, target.id, spy, whisper, app, args))
        self._enter_stasis(c, app, args, via_dialplan=False, set_dialplan=True)
        return c.json()

    def get_variable(self, channel_id: str, params: Mapping[str, str]) -> JsonDict:
        name = params.get("variable")
        if not name:
            raise SimHttpError(400, "Variable name is required")
        c = self._channel(channel_id)
        if name not in c.variables:
            raise SimHttpError(404, "Provided variable was not found")
        return {"value": c.variables[name]}

    def set_variable(self, channel_id: str, params: Mapping[str, str]) -> None:
        name = params.get("variable")
        if not name:
            raise SimHttpError(400, "Variable name is required")
        c = self._channel(channel_id)
        self._varset(c, name, params.get("value", ""))

    def get_channel(self, channel_id: str) -> JsonDict:
        return self._channel(channel_id).json()

    def list_channels(self) -> list[JsonDict]:
        return [c.json() for c in self.channels.values()]

    # --- playbacks --------------------------------------------------------------------------

    def play(self, channel_id: str, params: Mapping[str, str], playback_id: str | None) -> JsonDict:
        media = params.get("media")
        if not media:
            raise SimHttpError(400, "Media parameter is required")
        c = self._in_stasis(channel_id)
        pid = playback_id or params.get("playbackId") or str(uuid.uuid4())
        if pid in self.playbacks:
            raise SimHttpError(409, "A playback with the same ID already exists")
        pb = SimPlayback(pid, media, c, params.get("lang") or "en", self._media_seconds(media))
        self.playbacks[pid] = pb
        reply = pb.json()
        if c.playback is None:
            self._start_playback(pb)
        else:
            c.playback_queue.append(pb)
        return reply

    def _media_seconds(self, media: str) -> float | None:
        total = 0.0
        for item in media.split(","):
            scheme, _, rest = item.partition(":")
            if scheme == "sound" and rest in SOUND_SECONDS:
                total += SOUND_SECONDS[rest]
            elif scheme == "recording" and rest in self.stored:
                total += self.stored[rest].duration
            elif scheme in ("digits", "number", "characters") and rest:
                total += 0.6 * len(rest)
            elif scheme == "tone" and rest:
                total += 1.0
            else:
                return None
        return total

    def _start_playback(self, pb: SimPlayback) -> None:
        c = pb.channel
        c.playback = pb
        pb.state = "playing"
        self._emit(c.apps, "PlaybackStarted", {"playback": pb.json()})
        took = pb.duration if pb.duration is not None else MISSING_SOUND_FAIL_AFTER
        pb.timer = self.sched.call_later(took, lambda: self._finish_playback(pb))

    def _finish_playback(self, pb: SimPlayback, *, state: str | None = None) -> None:
        if pb.timer is not None:
            pb.timer.cancel()
            pb.timer = None
        c = pb.channel
        pb.state = state or ("done" if pb.duration is not None else "failed")
        self.playbacks.pop(pb.id, None)
        if c.playback is pb:
            c.playback = None
        self._emit(c.apps, "PlaybackFinished", {"playback": pb.json()})
        if c.alive and c.playback is None and c.playback_queue:
            self._start_playback(c.playback_queue.popleft())

    def _stop_playbacks(self, c: Chan) -> None:
        for queued in c.playback_queue:
            self.playbacks.pop(queued.id, None)
        c.playback_queue.clear()
        if c.playback is not None:
            self._finish_playback(c.playback, state="done")

    def get_playback(self, playback_id: str) -> JsonDict:
        pb = self.playbacks.get(playback_id)
        if pb is None:
            raise SimHttpError(404, "Playback not found")
        return pb.json()

    def stop_playback(self, playback_id: str) -> None:
        pb = self.playbacks.get(playback_id)
        if pb is None:
            raise SimHttpError(404, "Playback not found")
        if pb.channel.playback is pb:
            self._finish_playback(pb, state="done")
        else:
            pb.channel.playback_queue.remove(pb)
            self.playbacks.pop(pb.id, None)

    # --- bridges ----------------------------------------------------------------------------

    def create_bridge(
        self, params: Mapping[str, str], path_bridge_id: str | None = None
    ) -> JsonDict:
        bid = path_bridge_id or params.get("bridgeId") or str(uuid.uuid4())
        if bid in self.bridges:
            if path_bridge_id is not None:
                return self.bridges[bid].json()
            raise SimHttpError(409, "Bridge with the same ID already exists", reason="Conflict")
        bridge_type = params.get("type") or "mixing"
        known = {"mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single"}
        if any(part not in known for part in bridge_type.split(",")):
            raise SimHttpError(400, f"Invalid bridge type {bridge_type!r}")
        b = SimBridge(bid, params.get("name", ""), bridge_type, self._timestamp())
        self.bridges[bid] = b
        return b.json()

    def _bridge(self, bridge_id: str) -> SimBridge:
        b = self.bridges.get(bridge_id)
        if b is None:
            raise _not_found_bridge()
        return b

    def get_bridge(self, bridge_id: str) -> JsonDict:
        b = self.bridges.get(bridge_id)
        if b is None:
            # GET says "Not Found"; POST/DELETE on bridges say "Not found" (capture "errors").
            raise SimHttpError(404, "Bridge not found")
        return b.json()

    def list_bridges(self) -> list[JsonDict]:
        return [b.json() for b in self.bridges.values()]

    def _bridge_channels(self, params: Mapping[str, str]) -> list[Chan]:
        ids = [x for x in params.get("channel", "").split(",") if x]
        if not ids:
            raise SimHttpError(400, "Channel parameter is required")
        found = []
        for cid in ids:
            c = self.channels.get(cid)
            if c is None:
                raise SimHttpError(400, "Channel not found")
            found.append(c)
        return found

    def add_channel(self, bridge_id: str, params: Mapping[str, str]) -> None:
        b = self._bridge(bridge_id)
        chans = self._bridge_channels(params)
        for c in chans:
            if c.stasis_app is None:
                raise SimHttpError(422, "Channel not in Stasis application")
        for c in chans:
            if c.bridge is not b:
                self._join_bridge(b, c)

    def remove_channel(self, bridge_id: str, params: Mapping[str, str]) -> None:
        b = self._bridge(bridge_id)
        chans = self._bridge_channels(params)
        for c in chans:
            if c.bridge is not b:
                raise SimHttpError(422, "Channel not in this bridge")
        for c in chans:
            self._leave_bridge(b, c, unsubscribe=True)

    def destroy_bridge(self, bridge_id: str) -> None:
        b = self._bridge(bridge_id)
        # Kicked channels give their interest back (their ChannelLeftBridge still goes out);
        # only apps left with interest (channels that hung up inside, explicit subscriptions)
        # see RecordingFinished and BridgeDestroyed. The recording file is stored regardless.
        for c in list(b.channels):
            self._leave_bridge(b, c, unsubscribe=True)
        for rec in list(b.recordings):
            self._finish_recording(rec)
        del self.bridges[bridge_id]
        self._emit(b.apps, "BridgeDestroyed", {"bridge": b.json()})

    def _bridge_apps(self, b: SimBridge) -> set[str]:
        apps = b.apps
        for c in b.channels:
            apps |= c.apps
        return apps

    @staticmethod
    def _update_technology(b: SimBridge) -> None:
        participants = len(b.channels) + len(b.recordings)
        if participants >= 3:
            b.technology = "softmix"
        elif participants <= 1:
            b.technology = "simple_bridge"

    @staticmethod
    def _peers(b: SimBridge, c: Chan) -> str:
        names = [r.recorder_name for r in b.recordings]
        names.extend(o.name for o in b.channels if o is not c)
        return ",".join(names)

    def _bridged_with_peer(self, c: Chan) -> bool:
        return c.bridge is not None and any(o is not c for o in c.bridge.channels)

    def _join_bridge(self, b: SimBridge, c: Chan) -> None:
        if c.bridge is not None:
            # Moving through addChannel departs through the Stasis control, like removeChannel.
            self._leave_bridge(c.bridge, c, unsubscribe=True)
        b.channels.insert(0, c)
        c.bridge = b
        if c.stasis_app is not None:
            b.add_interest(c.stasis_app)
        self._update_technology(b)
        self._emit(
            c.apps | b.apps, "ChannelEnteredBridge", {"bridge": b.json(), "channel": c.json()}
        )
        others = [o for o in b.channels if o is not c]
        if others or b.recordings:
            for m in [*others, c]:
                self._varset(m, "BRIDGEPEER", self._peers(b, m))
        if others:
            if len(others) == 1:
                c.connected = others[0].caller
                others[0].connected = c.caller
            self._connected_line(c)
            for o in others:
                self._connected_line(o)

    def _leave_bridge(self, b: SimBridge, c: Chan, *, unsubscribe: bool = False) -> None:
        """``unsubscribe``: the channel left through the Stasis control (removeChannel,
        DELETE /bridges, a move), so its app's interest goes after ChannelLeftBridge."""
        self._varset(c, "BRIDGEPEER", "")
        b.channels.remove(c)
        c.bridge = None
        self._update_technology(b)
        snapshot = b.json(with_recorder=not b.channels)
        self._emit(c.apps | b.apps, "ChannelLeftBridge", {"bridge": snapshot, "channel": c.json()})
        if unsubscribe and c.stasis_app is not None:
            b.drop_interest(c.stasis_app)
        for r in b.channels:
            peers = self._peers(b, r)
            if peers:
                self._varset(r, "BRIDGEPEER", peers)
        for r in b.channels:
            self._connected_line(r)
        if not b.channels:
            # RecordingFinished as soon as the last real channel leaves (README fact 13).
            for rec in list(b.recordings):
                self._finish_recording(rec)

    # --- recordings -------------------------------------------------------------------------

    def record_bridge(self, bridge_id: str, params: Mapping[str, str]) -> JsonDict:
        b = self._bridge(bridge_id)
        name = params.get("name")
        fmt = params.get("format")
        if not name:
            raise SimHttpError(400, "Recording name is required")
        if not fmt:
            raise SimHttpError(400, "Recording format is required")
        if fmt not in FORMATS:
            raise SimHttpError(422, "specified format is unknown on this system")
        if_exists = params.get("ifExists") or "fail"
        if if_exists not in ("fail", "overwrite", "append"):
            raise SimHttpError(400, f"ifExists invalid: {if_exists!r}")
        if "/" in name or name.startswith("."):
            raise SimHttpError(400, "Recording name is invalid")
        if name in self.live:
            raise SimHttpError(409, "Recording with the same name is in progress")
        if name in self.stored and if_exists == "fail":
            raise SimHttpError(409, "Recording with the same name already exists")
        max_duration = self._int_param(params, "maxDurationSeconds", 0)
        seq = next(self._local_seq)
        rec = SimRecording(
            name, fmt, b, self.sched.now(), f"Recorder/ARI-{seq:08x};2", self._uniqueid()
        )
        b.recordings.append(rec)
        self.live[name] = rec
        self._update_technology(b)
        reply = rec.json("queued")
        for m in b.channels:
            self._varset(m, "BRIDGEPEER", self._peers(b, m))
        self._emit(self._bridge_apps(b), "RecordingStarted", {"recording": rec.json("recording")})
        if max_duration > 0:
            rec.timer = self.sched.call_later(max_duration, lambda: self._finish_recording(rec))
        if if_exists == "append" and name in self.stored:
            rec.started -= self.stored[name].duration
        return reply

    def _finish_recording(self, rec: SimRecording) -> None:
        if self.live.get(rec.name) is not rec:
            return
        if rec.timer is not None:
            rec.timer.cancel()
            rec.timer = None
        elapsed = max(0.0, self.sched.now() - rec.started)
        path = self.recordings_dir / f"{rec.name}.{rec.format}"
        write_recording(path, rec.format, elapsed)
        self.stored[rec.name] = StoredRec(rec.name, rec.format, path, elapsed)
        del self.live[rec.name]
        b = rec.bridge
        apps = self._bridge_apps(b)
        b.recordings.remove(rec)
        self._update_technology(b)
        self._emit(apps, "RecordingFinished", {"recording": rec.json("done", int(elapsed))})

    def get_live_recording(self, name: str) -> JsonDict:
        rec = self.live.get(name)
        if rec is None:
            raise SimHttpError(404, "Recording not found")
        return rec.json("recording")

    def stop_recording(self, name: str) -> None:
        rec = self.live.get(name)
        if rec is None:
            raise SimHttpError(404, "Recording not found")
        self._finish_recording(rec)

    def list_stored(self) -> list[JsonDict]:
        return [
            {"name": r.name, "format": r.format}
            for r in sorted(self.stored.values(), key=lambda r: r.name)
        ]

    def _stored(self, name: str) -> StoredRec:
        rec = self.stored.get(name)
        if rec is None or not rec.path.exists():
            raise SimHttpError(404, "Recording not found")
        return rec

    def get_stored(self, name: str) -> JsonDict:
        rec = self._stored(name)
        return {"name": rec.name, "format": rec.format}

    def stored_file(self, name: str) -> tuple[Path, str]:
        rec = self._stored(name)
        return rec.path, FORMATS[rec.format]

    def delete_stored(self, name: str) -> None:
        rec = self._stored(name)
        rec.path.unlink(missing_ok=True)
        del self.stored[name]

    # --- applications and asterisk ----------------------------------------------------------

    def app_json(self, app: str) -> JsonDict:
        return {
            "name": app,
            "channel_ids": [c.id for c in self.channels.values() if app in c.apps],
            "bridge_ids": [b.id for b in self.bridges.values() if app in b.apps],
            "endpoint_ids": [],
            "device_names": [],
            "events_allowed": [],
            "events_disallowed": [],
        }

    def _app(self, app: str) -> str:
        if app not in self.registered_apps:
            raise SimHttpError(404, "Application not found")
        return app

    def get_application(self, app: str) -> JsonDict:
        return self.app_json(self._app(app))

    def list_applications(self) -> list[JsonDict]:
        return [self.app_json(a) for a in sorted(self.registered_apps)]

    def subscribe(self, app: str, params: Mapping[str, str], *, add: bool = True) -> JsonDict:
        source = params.get("eventSource")
        if not source:
            raise SimHttpError(400, "eventSource parameter is required")
        self._app(app)
        for item in source.split(","):
            scheme, _, rid = item.partition(":")
            if scheme == "channel":
                c = self.channels.get(rid)
                if c is None:
                    raise SimHttpError(422, "Event source does not exist")
                if add:
                    c.apps.add(app)
                elif app in c.apps:
                    c.apps.discard(app)
                else:
                    raise SimHttpError(409, "Application not subscribed to event source")
            elif scheme == "bridge":
                b = self.bridges.get(rid)
                if b is None:
                    raise SimHttpError(422, "Event source does not exist")
                if add:
                    b.add_interest(app)
                elif not b.drop_interest(app):
                    raise SimHttpError(409, "Application not subscribed to event source")
            elif scheme not in ("endpoint", "deviceState"):
                raise SimHttpError(400, f"Invalid event source URI scheme '{scheme}'")
        return self.app_json(app)

    def device_state(self, name: str) -> str:
        """``GET /deviceStates/Local/<exten>@<context>``: INVALID when the extension does
        not exist (Asterisk's ``local_devicestate``), NOT_INUSE or INUSE otherwise."""
        tech, _, resource = name.partition("/")
        exten, _, context = resource.partition("@")
        if tech.lower() != "local" or not context:
            return "INVALID"
        if not self._extension_exists(context, exten):
            return "INVALID"
        dialstring = f"{exten}@{context}"
        busy = any(
            c.alive and c.call is not None and c.half == 1 and c.call.dialstring() == dialstring
            for c in self.channels.values()
        )
        return "INUSE" if busy else "NOT_INUSE"

    def _extension_exists(self, context: str, exten: str) -> bool:
        if context not in self.dialplan_contexts:
            return False
        if context == "sim-customers":
            return _CUSTOMER_EXTEN.fullmatch(exten) is not None
        if context in ("sim-agents", "dialer-stasis"):
            return _AGENT_EXTEN.fullmatch(exten) is not None
        return exten == "s"

    def asterisk_info(self) -> JsonDict:
        return {
            "build": dict(ASTERISK_INFO_BUILD),
            "system": {"version": "22.10.1", "entity_id": self.asterisk_id},
            "config": {
                "name": "",
                "default_language": "en",
                "setid": {"user": "", "group": ""},
                "max_channels": 500,
            },
            "status": {"startup_time": self.started_at, "last_reload_time": self.started_at},
        }

    def ping(self) -> JsonDict:
        return {"ping": "pong", "timestamp": self._timestamp(), "asterisk_id": self.asterisk_id}

    # --- control ----------------------------------------------------------------------------

    def state(self) -> JsonDict:
        return {
            "time": self.sched.now(),
            "channels": self.list_channels(),
            "bridges": self.list_bridges(),
            "live_recordings": sorted(self.live),
            "stored_recordings": self.list_stored(),
            "playbacks": sorted(self.playbacks),
            "events_emitted": self.events_emitted,
            "timer_errors": self.sched.errors,
        }
