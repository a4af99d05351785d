"""What every page handler can reach, and how a section of the site is described.

A section (``web/agent/``, ``web/floor/``, ``web/casework/``) is a subpackage
that exposes one ``SECTION = Section(...)``: its URL prefix and template
prefix (``name``), the title in the navigation, the right (``identity.access``)
that shows it there, ``install`` to add its routes, and optionally ``live``,
which answers a page's WebSocket with the topics that page may follow and the
messages that rebuild it. ``web/sections.py`` lists the sections; adding a
line there (and the subpackage) is all it takes to add pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from identity.access import Action
from identity.model import ActiveSession, SignInResult
from web.hub import Hub, Message
from web.i18n import I18n

if TYPE_CHECKING:
    from dialer.app import DialerStack


class Sessions(Protocol):
    """The identity store's side that the pages use (``identity.store.IdentityStore``)."""

    async def sign_in(self, name: str, password: str, address: str = "") -> SignInResult: ...

    async def resolve_session(self, session_id: str) -> ActiveSession | None: ...

    async def revoke_session(self, session_id: str) -> bool: ...


@dataclass
class WebContext:
    """Shared by every section: identity, the hub, languages and times, the dialer."""

    sessions: Sessions
    hub: Hub
    i18n: I18n
    stack: DialerStack | None = None
    secure_cookies: bool = False  # force ``Secure`` (TLS ended before a proxy that does not say)
    product_name: str = "Callgate"
    extra: dict[str, object] = field(default_factory=dict)

    def dialer(self) -> DialerStack:
        if self.stack is None:
            raise RuntimeError("this page needs the dialer stack; the web app was given none")
        return self.stack


CTX_KEY: web.AppKey[WebContext] = web.AppKey("web_context", WebContext)


@dataclass(frozen=True)
class LiveFeed:
    """A page's socket: the topics it follows and the messages that rebuild it now."""

    topics: Sequence[str]
    snapshot: Sequence[Message] = ()


Install = Callable[[web.Application, WebContext], None]
Live = Callable[[web.Request, ActiveSession, WebContext], Awaitable[LiveFeed]]


@dataclass(frozen=True)
class Section:
    name: str  # URL prefix /<name>/, templates "<name>/...", static /static/<name>/
    title: str  # message id, translated in the navigation
    action: Action  # the right that shows the section in the navigation
    package_dir: Path  # the subpackage's folder: templates/ and static/ are found there
    install: Install
    live: Live | None = None

    @property
    def templates(self) -> Path:
        return self.package_dir / "templates"

    @property
    def static(self) -> Path:
        return self.package_dir / "static"

    @property
    def path(self) -> str:
        return f"/{self.name}/"


SECTIONS_KEY: web.AppKey[tuple[Section, ...]] = web.AppKey("web_sections", tuple)
