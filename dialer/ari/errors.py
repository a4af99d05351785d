"""ARI failures as a small exception tree.

Only broken I/O is an exception: an HTTP status that is not 2xx, or no answer at
all. Each class says whether repeating the same request may succeed
(``retriable``) and carries a stable ``error_id`` for logs. Asterisk puts the
explanation in ``{"message": ...}`` except for ``500 Allocation failed``, which
uses ``{"error": ...}`` (reference README, fact 18); both are read.
"""

from __future__ import annotations

from typing import ClassVar


class AriError(Exception):
    """Root of every failure raised by :mod:`dialer.ari`."""

    retriable: ClassVar[bool] = False
    error_id: ClassVar[str] = "ari-error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        body: str = "",
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        where = f"{method} {path}".strip()
        prefix = f"{status} " if status is not None else ""
        super().__init__(f"{prefix}{where}: {message}" if where else f"{prefix}{message}")


class AriHttpError(AriError):
    """A status code that has no class of its own (e.g. 405, 412)."""

    error_id = "ari-http"


class AriBadRequest(AriHttpError):
    """400: missing or invalid parameters (e.g. no endpoint, unknown channel for a bridge)."""

    error_id = "ari-bad-request"


class AriUnauthorized(AriHttpError):
    """401: wrong or missing credentials; repeating will not help."""

    error_id = "ari-unauthorized"


class AriNotFound(AriHttpError):
    """404: the channel, bridge, recording or route does not exist (any more)."""

    error_id = "ari-not-found"


class AriConflict(AriHttpError):
    """409: duplicate id, or the object is in the wrong state (e.g. not in Stasis)."""

    error_id = "ari-conflict"


class AriUnprocessable(AriHttpError):
    """422: well-formed but unusable (unknown recording format, unknown event source)."""

    error_id = "ari-unprocessable"


class AriUnavailable(AriError):
    """Asterisk could not serve the request now: 5xx or no connection. Retriable."""

    retriable = True
    error_id = "ari-unavailable"


class AriServerError(AriUnavailable):
    """5xx from Asterisk (``500 Allocation failed`` for an unloaded channel technology)."""

    error_id = "ari-server-error"


class AriConnectionError(AriUnavailable):
    """No HTTP answer: refused, reset, timed out."""

    error_id = "ari-connection"


_BY_STATUS: dict[int, type[AriHttpError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def error_for_status(
    status: int, message: str, *, method: str = "", path: str = "", body: str = ""
) -> AriError:
    """The exception instance for an HTTP error status."""
    if status >= 500:
        return AriServerError(message, status=status, method=method, path=path, body=body)
    cls = _BY_STATUS.get(status, AriHttpError)
    return cls(message, status=status, method=method, path=path, body=body)
