"""Call control: step a call's pure state machine and carry out the commands it returns.

``CallFlow.apply`` is the only place a call's state changes: it calls
``fsm.step`` and runs each command through a table (command type -> handler).
This slice handles the commands about the channel, the bridge, the recording,
timers and the end of the call (ledger, attempt row, the lead's next step);
the placement and agents slices register their own (``Originate``,
``DialEnded``; ``RequestAgent``, ``ReleaseAgent``, ``TalkEnded`` ...).

ARI events of customer channels (``dl-<attempt>``), of the abandon message
playback (``ab-<attempt>``) and of the recording (``rec-<attempt>``) become
FSM events here (``subscriptions``). A customer is connected when its
``ChannelEnteredBridge`` comes, not when ``addChannel`` answers: that is where
the connect limit ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, get_args

from compliance.ledger import UnknownAttempt
from dialer import fsm
from dialer.ari.errors import AriError
from dialer.ari.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    Dial,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisStart,
)
from dialer.attempts import Stage
from dialer.calls.book import CallBook, LiveCall, settle_lead
from dialer.calls.messages import CallEvent, RecordingWaitExpired
from dialer.calls.routing import EventHandler
from dialer.ids import attempt_of
from dialer.outcomes import ledger_outcome
from dialer.ports import FinishedRecording, GateUnavailable
from dialer.retry import after_dial

logger = logging.getLogger(__name__)

CommandHandler = Callable[[LiveCall, Any], Awaitable[None]]



@dataclass(frozen=True, slots=True)
class _Finish:
    """What the end-of-call write needs, copied when the call ended."""

    phase: str
    agent_id: str | None
    connected_wall: datetime | None
    ring_seconds: float | None
    talk_seconds: float | None
    answered: bool


class CallFlow:
    """Applies FSM events to live calls and executes the resulting commands."""

    def __init__(self, book: CallBook) -> None:
        self.book = book
        # Other slices told of every finished call (the agents slice frees an agent whose
        # own call never reached them).
        self.finished_hooks: list[Callable[[LiveCall], None]] = []
        self._handlers: dict[type[Any], CommandHandler] = {
            fsm.Hangup: self._hangup,
            fsm.RunAmd: self._run_amd,
            fsm.AddToBridge: self._add_to_bridge,
            fsm.StartRecording: self._start_recording,
            fsm.StopRecording: self._stop_recording,
            fsm.PlayAbandonMessage: self._play_abandon,
            fsm.StartTimer: self._start_timer,
            fsm.CancelTimer: self._cancel_timer,
            fsm.CallFinished: self._call_finished,
            fsm.RecordingDone: self._recording_done,
            fsm.Log: self._log,
        }

    def register(self, handlers: Mapping[type[Any], CommandHandler]) -> None:
        """Add another slice's command handlers (each command type has exactly one)."""
        for kind, handler in handlers.items():
            if kind in self._handlers:
                raise ValueError(f"{kind.__name__} already has a handler")
            self._handlers[kind] = handler

    def check_complete(self) -> None:
        """Every command the FSM can return has a handler (checked once, at wiring)."""
        missing = [c.__name__ for c in get_args(fsm.Command) if c not in self._handlers]
        if missing:
            raise RuntimeError(f"no handler for FSM commands: {', '.join(missing)}")

    def subscriptions(self) -> dict[str, EventHandler]:
        """ARI event name -> handler, for the events of customer channels and their media."""
        return {
            "Dial": self.on_dial,
            "StasisStart": self.on_customer_channel,
            "ChannelHangupRequest": self.on_customer_channel,
            "ChannelDestroyed": self.on_customer_channel,
            "ChannelEnteredBridge": self.on_customer_channel,
            "PlaybackFinished": self.on_playback_finished,
            "RecordingStarted": self.on_recording,
            "RecordingFinished": self.on_recording,
            "RecordingFailed": self.on_recording,
        }

    # ------------------------------------------------------------ FSM plumbing
    async def apply(self, attempt_id: str, ev: fsm.Event) -> None:
        book = self.book
        call = book.calls.get(attempt_id)
        if call is None:
            return
        call.state, cmds = fsm.step(call.state, ev, book.clock.now())
        for cmd in cmds:
            await self._handlers[type(cmd)](call, cmd)
        if call.state.terminal and call.finished:
            if not call.recording_expected or call.state.recording_done:
                book.forget(call)
            elif call.recording_guard is None:
                # RecordingFinished may be lost (socket gap): do not wait for it forever.
                call.recording_guard = book.later(
                    book.config.recording_wait, RecordingWaitExpired(attempt_id)
                )

    async def end_all(self) -> None:
        for attempt in list(self.book.calls):
            await self.apply(attempt, fsm.EndRequested("dialer shutting down"))

    # ------------------------------------------------------------ ARI events -> FSM events
    async def on_dial(self, ev: AriEvent) -> None:
        if isinstance(ev, Dial):
            attempt = attempt_of(ev.peer.id)
            if attempt is not None:
                await self.apply(attempt, fsm.DialSeen(ev.dialstatus))

    async def on_customer_channel(self, ev: AriEvent) -> None:
        channel_id = ev.channel_id
        attempt = attempt_of(channel_id) if channel_id is not None else None
        if attempt is None:
            return
        if isinstance(ev, StasisStart):
            await self.apply(attempt, fsm.StasisStarted(ev.args))
        elif isinstance(ev, ChannelHangupRequest):
            await self.apply(attempt, fsm.HangupRequested(ev.cause, ev.soft))
        elif isinstance(ev, ChannelDestroyed):
            await self.apply(attempt, fsm.ChannelGone(ev.cause))
        elif isinstance(ev, ChannelEnteredBridge):
            await self.apply(attempt, fsm.Bridged(ev.bridge.id))

    async def on_playback_finished(self, ev: AriEvent) -> None:
        if isinstance(ev, PlaybackFinished):
            pid = ev.playback.id
            if pid.startswith("ab-"):
                await self.apply(pid[3:], fsm.PlaybackDone(pid))

    async def on_recording(self, ev: AriEvent) -> None:
        if not isinstance(ev, (RecordingStarted, RecordingFinished, RecordingFailed)):
            return
        name = ev.recording.name
        if not name.startswith("rec-"):
            return
        attempt = name[4:]
        if isinstance(ev, RecordingStarted):
            await self.apply(attempt, fsm.RecordingStarted(name))
            return
        duration = float(ev.recording.duration) if ev.recording.duration is not None else None
        if isinstance(ev, RecordingFailed):
            logger.error("attempt %s: recording %s failed: %s", attempt, name, ev.recording.cause)
        await self.apply(attempt, fsm.RecordingFinished(name, duration))

    # ------------------------------------------------------------ guards
    async def dial_guard_expired(self, attempt_id: str) -> None:
        call = self.book.calls.get(attempt_id)
        if call is None or call.state.phase not in (fsm.Phase.DIALING, fsm.Phase.RINGING):
            return
        if not await self.book.control.channel_exists(call.state.params.channel_id):
            logger.warning("attempt %s: channel gone without its events; finalized", attempt_id)
            await self.apply(attempt_id, fsm.Vanished())

    async def recording_wait_expired(self, attempt_id: str) -> None:
        book = self.book
        call = book.calls.get(attempt_id)
        if call is None or call.state.recording_done:
            return
        name = call.state.params.recording_name
        logger.warning(
            "attempt %s: end of recording %s not seen; recorded by name", attempt_id, name
        )
        await book.ports.attempts.update(
            attempt_id, book.clock.wall(), recording=name, reasons="recording end not seen"
        )
        book.forget(call)

    # ------------------------------------------------------------ commands
    async def _hangup(self, call: LiveCall, cmd: fsm.Hangup) -> None:
        logger.info("attempt %s: hangup (%s)", call.state.params.attempt_id, cmd.reason)
        await self.book.safe_hangup(cmd.channel_id)

    async def _add_to_bridge(self, call: LiveCall, cmd: fsm.AddToBridge) -> None:
        attempt = call.state.params.attempt_id
        try:
            await self.book.control.add_to_bridge(cmd.bridge_id, cmd.channel_id)
        except AriError as exc:
            # Typically the customer hung up a moment ago.
            logger.info("attempt %s: addChannel failed: %s", attempt, exc)
            await self.apply(attempt, fsm.BridgeFailed(str(exc)))
        # On success the customer is connected when its ChannelEnteredBridge comes.

    async def _run_amd(self, call: LiveCall, cmd: fsm.RunAmd) -> None:
        attempt = call.state.params.attempt_id
        try:
            await self.book.control.continue_in_dialplan(
                cmd.channel_id, self.book.config.amd_context, "s", 1
            )
        except AriError as exc:
            try:
                alive = await self.book.control.channel_exists(cmd.channel_id)
            except AriError:
                alive = True  # cannot tell: never drop what may be a person
            if not alive:
                # Hung up right after answering: gone during detection, no agent needed.
                logger.info("attempt %s: gone before AMD could start", attempt)
                await self.apply(attempt, fsm.Vanished())
                return
            logger.warning("attempt %s: cannot start AMD: %s", attempt, exc)
            await self.apply(attempt, fsm.AmdFailed(str(exc)))

    async def _start_recording(self, call: LiveCall, cmd: fsm.StartRecording) -> None:
        p = call.state.params
        call.recording_expected = True
        try:
            await self.book.control.record_bridge(cmd.bridge_id, cmd.name, cmd.format)
        except AriError as exc:
            call.recording_expected = False
            # No recording, no call (art. 30): the evidence must exist.
            logger.error("attempt %s: recording failed, hanging up: %s", p.attempt_id, exc)
            await self.book.safe_hangup(p.channel_id)

    async def _stop_recording(self, call: LiveCall, cmd: fsm.StopRecording) -> None:
        if not call.recording_expected:
            return
        try:
            await self.book.control.stop_recording(cmd.name)
        except AriError as exc:
            logger.warning(
                "attempt %s: stop recording %s: %s", call.state.params.attempt_id, cmd.name, exc
            )

    async def _play_abandon(self, call: LiveCall, cmd: fsm.PlayAbandonMessage) -> None:
        p = call.state.params
        config = self.book.config
        control = self.book.control
        logger.info(
            "attempt %s: no agent within %.1fs, abandon message", p.attempt_id, p.connect_limit
        )
        try:
            if config.abandon_context:
                # The dialplan plays the message and offers the opt-out; the call
                # ends with its ChannelDestroyed (or the abandon_dialplan_limit).
                await control.continue_in_dialplan(cmd.channel_id, config.abandon_context, "s", 1)
            else:
                await control.play(cmd.channel_id, cmd.media, cmd.playback_id)
        except AriError as exc:
            logger.warning("attempt %s: abandon message failed: %s", p.attempt_id, exc)
            await self.book.safe_hangup(cmd.channel_id)

    async def _start_timer(self, call: LiveCall, cmd: fsm.StartTimer) -> None:
        old = call.timers.pop(cmd.timer, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, cmd.at - self.book.clock.now())
        attempt = call.state.params.attempt_id
        call.timers[cmd.timer] = self.book.later(
            delay, CallEvent(attempt, fsm.TimerFired(cmd.timer))
        )

    async def _cancel_timer(self, call: LiveCall, cmd: fsm.CancelTimer) -> None:
        handle = call.timers.pop(cmd.timer, None)
        if handle is not None:
            handle.cancel()

    async def _log(self, call: LiveCall, cmd: fsm.Log) -> None:
        logger.info("attempt %s: %s", call.state.params.attempt_id, cmd.message)

    # ------------------------------------------------------------ the end of a call
    async def _call_finished(self, call: LiveCall, cmd: fsm.CallFinished) -> None:
        book = self.book
        call.finished = True
        for hook in self.finished_hooks:
            hook(call)
        if cmd.connected:
            # The agent's disposition closes the lead (it waits for this lane's writes).
            book.disp_leads[call.state.params.attempt_id] = call.lead
        snapshot = _Finish(
            phase=call.state.phase.value,
            agent_id=call.state.agent_id,
            connected_wall=call.connected_wall,
            ring_seconds=call.ring_seconds,
            talk_seconds=call.talk_seconds,
            answered=call.answered,
        )
        book.lanes.submit(
            call.state.params.attempt_id, partial(self._write_finish, call, cmd, snapshot)
        )
        book.wake.set()

    async def _write_finish(self, call: LiveCall, cmd: fsm.CallFinished, snap: _Finish) -> None:
        book = self.book
        p = call.state.params
        wall = book.clock.wall()
        outcome = ledger_outcome(cmd.outcome)
        try:
            await book.ports.ledger.resolve(p.attempt_id, outcome)
        except UnknownAttempt:
            logger.error("attempt %s: the ledger never reserved it", p.attempt_id)
        except GateUnavailable as exc:
            # The attempt stays RESERVED in the ledger (it still counts): safe.
            book.halt(f"contact ledger unavailable, dialling stopped: {exc}")
        await book.ports.attempts.update(
            p.attempt_id,
            wall,
            stage=Stage.DONE,
            phase=snap.phase,
            outcome=cmd.outcome.value,
            connected=cmd.connected,
            abandoned=cmd.abandoned,
            agent_id=snap.agent_id,
            connected_at=snap.connected_wall,
            ended_at=wall,
            ring_seconds=snap.ring_seconds,
            talk_seconds=snap.talk_seconds,
            answered=snap.answered,
        )
        logger.info(
            "attempt %s: ended %s%s",
            p.attempt_id,
            cmd.outcome.value,
            " (abandoned)" if cmd.abandoned else "",
        )
        nxt = after_dial(
            cmd.outcome,
            connected=cmd.connected,
            tries_before=call.lead.attempts,
            rules=book.campaigns[call.campaign].plan.retry,
            now=wall,
        )
        await settle_lead(book.ports.leads, call.lead, nxt, now=wall)
        book.wake.set()

    async def _recording_done(self, call: LiveCall, cmd: fsm.RecordingDone) -> None:
        ended = self.book.clock.wall()
        self.book.lanes.submit(
            call.state.params.attempt_id, partial(self._write_recording, call, cmd, ended)
        )

    async def _write_recording(
        self, call: LiveCall, cmd: fsm.RecordingDone, ended: datetime
    ) -> None:
        book = self.book
        p = call.state.params
        await book.ports.attempts.update(
            p.attempt_id, book.clock.wall(), recording=cmd.name, recording_seconds=cmd.duration
        )
        if book.ports.recordings is not None:
            await book.ports.recordings.recording_finished(
                FinishedRecording(
                    attempt_id=p.attempt_id,
                    name=cmd.name,
                    fmt=p.recording_format,
                    duration=cmd.duration,
                    campaign=call.campaign,
                    number=call.lead.number,
                    agent_id=call.state.agent_id,
                    started_at=call.connected_wall or call.started_wall,
                    ended_at=ended,
                )
            )
