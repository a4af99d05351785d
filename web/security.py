"""What every response and every state-changing request of the pages must satisfy.

Headers on every response (pages, static files, errors, the JSON API alike):
``Content-Security-Policy: default-src 'self'`` with no inline script or style
and no framing, ``X-Frame-Options: DENY``, ``nosniff``, a same-origin referrer,
and ``no-store`` on pages that may carry personal data.

A state-changing request (anything but GET/HEAD/OPTIONS) to a page must come
from this site (``Origin``/``Sec-Fetch-Site``, checked when the browser sends
them) and carry the session's CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``). The WebSocket upgrade, a GET, is held to the same origin
check: a page elsewhere cannot open a socket with the agent's cookie.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=()",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every response, static files and errors included."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


def is_secure(request: web.Request, force: bool = False) -> bool:
    """Behind TLS: directly, or through a proxy that says so. Only ever adds ``Secure``."""
    return force or request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


def csrf_given(request: web.Request, form: dict[str, str] | None) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    return (form or {}).get(CSRF_FIELD, "")


def safe_next(target: str | None, default: str = "/") -> str:
    """A redirect target after sign-in: a path on this site, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
