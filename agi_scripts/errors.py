"""The AGI package's exception tree: broken I/O and broken protocol, never business answers.

A refused call is a value (a decision written to a dialplan variable); these
exceptions are for a peer that misbehaves, a channel that hung up, or a
server misconfiguration. Every class carries a stable ``error_id`` that ends up
in the logs and, for failures, in ``DIALER_AGI_ERROR``.
"""

from __future__ import annotations

from typing import ClassVar


class AgiError(Exception):
    """Root of every FastAGI failure."""

    error_id: ClassVar[str] = "agi_error"


class AgiProtocolError(AgiError):
    """The peer sent something that is not AGI (garbage, bad encoding, unknown reply)."""

    error_id = "protocol_error"


class AgiEnvironmentTooLarge(AgiProtocolError):
    """The environment block exceeded the configured size limit."""

    error_id = "environment_too_large"


class AgiTimeout(AgiError):
    """The peer did not send the environment block or a reply in time."""

    error_id = "timeout"


class AgiHangup(AgiError):
    """The channel hung up while the script ran.

    Asterisk writes a bare ``HANGUP`` line on the socket when the caller hangs
    up during the AGI (res_agi.c, unless ``AGISIGHUP=no``). Variables can still
    be read and set afterwards; the dialplan then runs only the ``h`` extension.
    """

    error_id = "hangup"


class AgiConnectionLost(AgiHangup):
    """The peer closed the socket (EOF) before the session was over."""

    error_id = "connection_lost"


class AgiCommandError(AgiError):
    """Asterisk answered a command with an error code (510, 511, 520...)."""

    error_id = "command_error"

    def __init__(self, command: str, code: int, text: str) -> None:
        super().__init__(f"AGI command {command.split(' ', 1)[0]!r} failed: {code} {text}")
        self.command = command
        self.code = code
        self.text = text


class RouteConfigError(AgiError):
    """A route table is malformed (duplicate name, handler not ``async def``...)."""

    error_id = "route_config"
