"""Typed asyncio REST client for the part of ARI the dialer uses (aiohttp).

``AriClient`` maps one method to one ARI route, sends parameters the way
Asterisk documents them (query string; ``variables`` as a JSON body) and turns
every non-2xx status into the exception tree of :mod:`dialer.ari.errors`.
It owns no event logic: the WebSocket lives in :mod:`dialer.ari.ws`.

Quirks handled here: a 204 has no Content-Type; Asterisk writes the header as
``Content-type`` (aiohttp headers are case-insensitive anyway); error bodies are
``{"message": ...}`` or, for ``500 Allocation failed``, ``{"error": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from dialer.ari.errors import AriConnectionError, error_for_status
from dialer.ari.models import (
    Application,
    AriDecodeError,
    AsteriskInfo,
    AsteriskPing,
    Bridge,
    Channel,
    LiveRecording,
    Playback,
    StoredRecording,
)

__all__ = ["AriClient"]

Params = dict[str, str]


def _set_given(params: Params, **values: str | int | None) -> None:
    """Add the query parameters that were given (ARI spells them in camelCase); skip None."""
    for name, value in values.items():
        if value is not None:
            params[name] = str(value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


class AriClient:
    """REST half of ARI. ``base_url`` ends with ``/ari`` (``http://127.0.0.1:8088/ari``)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        app: str = "dialer",
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.app = app
        # aiohttp 3.14 deprecates BasicAuth objects; send the header ourselves.
        self.auth_headers = {"Authorization": aiohttp.encode_basic_auth(username, password)}
        self._own_session = session is None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200), timeout=self._timeout
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- transport --------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body) for 2xx, raise :class:`AriError` otherwise."""
        url = self.base_url + path
        try:
            async with self.session.request(
                method,
                url,
                params=dict(params) if params else None,
                json=body if body is not None else None,
                headers=self.auth_headers,
                timeout=self._timeout,
            ) as resp:
                data = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise AriConnectionError(
                f"no answer from ARI at {self.base_url}: {type(exc).__name__}: {exc}",
                method=method,
                path=path,
            ) from exc
        if status >= 300:
            text = data.decode("utf-8", "replace")
            raise error_for_status(
                status, _error_message(text, status), method=method, path=path, body=text
            )
        return status, data

    async def _json(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        _, data = await self.request(method, path, params, body)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise AriDecodeError(f"{method} {path}: reply is not JSON: {data[:200]!r}") from exc

    async def _none(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        await self.request(method, path, params, body)

    # --- channels ---------------------------------------------------------------------------

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        app: str | None = None,
        app_args: Sequence[str] = (),
        caller_id: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 (ARI ring timeout, not an I/O timeout)
        variables: Mapping[str, str] | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        originator: str | None = None,
        formats: str | None = None,
    ) -> Channel:
        """``POST /channels``: returns at once with the channel (state Down).

        Into the app by default (``app`` = this client's app) unless ``extension``/``context``
        is given (the AMD pattern: originate into dialplan). Every outcome arrives as events.
        """
        params: Params = {"endpoint": endpoint}
        if context is not None or extension is not None:
            _set_given(
                params,
                context=context,
                extension=extension,
                priority=priority,
                label=label,
                app=app,
            )
        else:
            params["app"] = app if app is not None else self.app
        _set_given(
            params,
            appArgs=",".join(app_args) if app_args else None,
            channelId=channel_id,
            otherChannelId=other_channel_id,
            callerId=caller_id,
            timeout=timeout,
            originator=originator,
            formats=formats,
        )
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self._json("POST", "/channels", params, body))

    async def create_channel(
        self,
        endpoint: str,
        *,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        app: str | None = None,
        app_args: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
        formats: str | None = None,
    ) -> Channel:
        """``POST /channels/create``: the channel enters Stasis at once; call :meth:`dial` next."""
        params: Params = {"endpoint": endpoint, "app": app if app is not None else self.app}
        _set_given(
            params,
            appArgs=",".join(app_args) if app_args else None,
            channelId=channel_id,
            otherChannelId=other_channel_id,
            originator=originator,
            formats=formats,
        )
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self._json("POST", "/channels/create", params, body))

    async def dial(
        self,
        channel_id: str,
        *,
        caller: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 (ARI ring timeout, not an I/O timeout)
    ) -> None:
        """``POST /channels/{id}/dial``. On BUSY the channel is NOT hung up (README fact 15)."""
        params: Params = {}
        if caller is not None:
            params["caller"] = caller
        if timeout is not None:
            params["timeout"] = str(timeout)
        await self._none("POST", f"/channels/{channel_id}/dial", params)

    async def hangup(
        self, channel_id: str, *, reason: str | None = None, reason_code: int | None = None
    ) -> None:
        """``DELETE /channels/{id}``; ``reason`` is ARI's word (normal, busy...) or a Q.850 code."""
        params: Params = {}
        if reason is not None:
            params["reason"] = reason
        if reason_code is not None:
            params["reason_code"] = str(reason_code)
        await self._none("DELETE", f"/channels/{channel_id}", params)

    async def answer(self, channel_id: str) -> None:
        await self._none("POST", f"/channels/{channel_id}/answer")

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        params: Params = {}
        if context is not None:
            params["context"] = context
        if extension is not None:
            params["extension"] = extension
        if priority is not None:
            params["priority"] = str(priority)
        if label is not None:
            params["label"] = label
        await self._none("POST", f"/channels/{channel_id}/continue", params)

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        """``POST /channels/{id}/play``: 201 (state queued), then PlaybackStarted/Finished."""
        params: Params = {"media": media if isinstance(media, str) else ",".join(media)}
        if playback_id is not None:
            params["playbackId"] = playback_id
        if lang is not None:
            params["lang"] = lang
        return Playback.from_json(await self._json("POST", f"/channels/{channel_id}/play", params))

    async def snoop(
        self,
        channel_id: str,
        *,
        app: str,
        spy: str = "none",
        whisper: str = "none",
        app_args: Sequence[str] = (),
        snoop_id: str | None = None,
    ) -> Channel:
        """``POST /channels/{id}/snoop[/{snoopId}]``: a Snoop/ channel hearing (``spy``) and
        speaking into (``whisper``) the channel's ``in``, ``out`` or ``both`` directions; it
        enters ``app`` (StasisStart) and ends with the channel it snoops on."""
        params: Params = {"app": app, "spy": spy, "whisper": whisper}
        if app_args:
            params["appArgs"] = ",".join(app_args)
        path = f"/channels/{channel_id}/snoop"
        if snoop_id is not None:
            path += f"/{snoop_id}"
        return Channel.from_json(await self._json("POST", path, params))

    async def get_variable(self, channel_id: str, variable: str) -> str:
        data = await self._json("GET", f"/channels/{channel_id}/variable", {"variable": variable})
        return str(data.get("value", ""))

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self._none(
            "POST", f"/channels/{channel_id}/variable", {"variable": variable, "value": value}
        )

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self._json("GET", f"/channels/{channel_id}"))

    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self._json("GET", "/channels")]

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        params: Params = {"mohClass": moh_class} if moh_class is not None else {}
        await self._none("POST", f"/channels/{channel_id}/moh", params)

    async def stop_moh(self, channel_id: str) -> None:
        await self._none("DELETE", f"/channels/{channel_id}/moh")

    # --- bridges ----------------------------------------------------------------------------

    async def create_bridge(
        self, bridge_id: str | None = None, *, type: str = "mixing", name: str | None = None
    ) -> Bridge:
        params: Params = {"type": type}
        if bridge_id is not None:
            params["bridgeId"] = bridge_id
        if name is not None:
            params["name"] = name
        return Bridge.from_json(await self._json("POST", "/bridges", params))

    async def add_channel(
        self, bridge_id: str, channel_id: str | Sequence[str], *, role: str | None = None
    ) -> None:
        """``POST /bridges/{id}/addChannel`` (204). An unknown channel is a 400, not a 404."""
        channel = channel_id if isinstance(channel_id, str) else ",".join(channel_id)
        params: Params = {"channel": channel}
        if role is not None:
            params["role"] = role
        await self._none("POST", f"/bridges/{bridge_id}/addChannel", params)

    async def remove_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        channel = channel_id if isinstance(channel_id, str) else ",".join(channel_id)
        await self._none("POST", f"/bridges/{bridge_id}/removeChannel", {"channel": channel})

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str = "fail",
        beep: bool = False,
        terminate_on: str = "none",
    ) -> LiveRecording:
        """``POST /bridges/{id}/record``: 201 with state ``queued``, then RecordingStarted."""
        params: Params = {
            "name": name,
            "format": format,
            "ifExists": if_exists,
            "beep": _bool(beep),
            "terminateOn": terminate_on,
        }
        if max_duration_seconds is not None:
            params["maxDurationSeconds"] = str(max_duration_seconds)
        if max_silence_seconds is not None:
            params["maxSilenceSeconds"] = str(max_silence_seconds)
        return LiveRecording.from_json(
            await self._json("POST", f"/bridges/{bridge_id}/record", params)
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._none("DELETE", f"/bridges/{bridge_id}")

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self._json("GET", "/bridges")]

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self._json("GET", f"/bridges/{bridge_id}"))

    # --- recordings -------------------------------------------------------------------------

    async def get_live_recording(self, name: str) -> LiveRecording:
        return LiveRecording.from_json(await self._json("GET", f"/recordings/live/{name}"))

    async def stop_recording(self, name: str) -> None:
        """``POST /recordings/live/{name}/stop``: the file is kept (RecordingFinished follows)."""
        await self._none("POST", f"/recordings/live/{name}/stop")

    async def list_stored_recordings(self) -> list[StoredRecording]:
        return [StoredRecording.from_json(r) for r in await self._json("GET", "/recordings/stored")]

    async def get_stored_recording(self, name: str) -> StoredRecording:
        return StoredRecording.from_json(await self._json("GET", f"/recordings/stored/{name}"))

    async def get_stored_recording_file(self, name: str) -> bytes:
        _, data = await self.request("GET", f"/recordings/stored/{name}/file")
        return data

    async def stream_stored_recording_file(
        self, name: str, *, chunk_size: int = 65536
    ) -> AsyncGenerator[bytes, None]:
        """``GET /recordings/stored/{name}/file`` as chunks of at most ``chunk_size`` bytes.

        Same error mapping as :meth:`request`: a non-2xx status raises before the
        first chunk (``AriNotFound`` for an unknown recording); a connection lost or
        a read timeout mid-body raises ``AriConnectionError``. The total request
        timeout is not applied (a long recording may take longer than one REST
        call); a read that stalls for ``request_timeout`` seconds fails instead.
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        method, path = "GET", f"/recordings/stored/{name}/file"
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._timeout.total,
            sock_read=self._timeout.total,
        )
        try:
            async with self.session.request(
                method, self.base_url + path, headers=self.auth_headers, timeout=timeout
            ) as resp:
                if resp.status >= 300:
                    text = (await resp.read()).decode("utf-8", "replace")
                    raise error_for_status(
                        resp.status,
                        _error_message(text, resp.status),
                        method=method,
                        path=path,
                        body=text,
                    )
                async for chunk in resp.content.iter_chunked(chunk_size):
                    yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise AriConnectionError(
                f"no answer from ARI at {self.base_url}: {type(exc).__name__}: {exc}",
                method=method,
                path=path,
            ) from exc

    async def delete_stored_recording(self, name: str) -> None:
        await self._none("DELETE", f"/recordings/stored/{name}")

    # --- playbacks --------------------------------------------------------------------------

    async def get_playback(self, playback_id: str) -> Playback:
        return Playback.from_json(await self._json("GET", f"/playbacks/{playback_id}"))

    async def stop_playback(self, playback_id: str) -> None:
        await self._none("DELETE", f"/playbacks/{playback_id}")

    # --- applications and asterisk ----------------------------------------------------------

    async def subscribe(self, event_source: str, *, app: str | None = None) -> Application:
        """``POST /applications/{app}/subscription?eventSource=channel:<id>`` (AMD pattern).

        Races with the call: events before the subscription is in place are lost
        (README fact 17).
        """
        name = app if app is not None else self.app
        return Application.from_json(
            await self._json(
                "POST", f"/applications/{name}/subscription", {"eventSource": event_source}
            )
        )

    async def unsubscribe(self, event_source: str, *, app: str | None = None) -> Application:
        name = app if app is not None else self.app
        return Application.from_json(
            await self._json(
                "DELETE", f"/applications/{name}/subscription", {"eventSource": event_source}
            )
        )

    async def get_application(self, app: str | None = None) -> Application:
        name = app if app is not None else self.app
        return Application.from_json(await self._json("GET", f"/applications/{name}"))

    async def asterisk_info(self) -> AsteriskInfo:
        return AsteriskInfo.from_json(await self._json("GET", "/asterisk/info"))

    async def ping(self) -> AsteriskPing:
        return AsteriskPing.from_json(await self._json("GET", "/asterisk/ping"))

    # --- device states ----------------------------------------------------------------------

    async def device_state(self, device: str) -> str:
        """``GET /deviceStates/{deviceName}``: ``NOT_INUSE``, ``INUSE``, ``INVALID``...

        Any device, not only ``Stasis:`` ones; the name's slash and ``@`` stay
        percent-encoded (res_ari decodes each path segment after splitting).
        """
        data = await self._json("GET", "/deviceStates/" + quote(device, safe=""))
        return str(data.get("state", "INVALID"))


def _error_message(text: str, status: int) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200] or f"HTTP {status}"
    if isinstance(data, dict):
        for key in ("message", "error"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return text[:200]
