"""The pages' foundation over real HTTP: headers, sign-in, lock-out, sessions, CSRF, the hub.

A bare aiohttp application with the pages installed (no section), the real
identity store on SQLite, requests through aiohttp's test client as a browser
would send them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from identity.model import Principal, Role
from identity.passwords import PasswordHasher
from identity.schema import create_tables, open_engine
from identity.store import IdentityStore
from web.app import install_web
from web.context import WebContext
from web.hub import Hub
from web.i18n import I18n
from web.security import CSP

ADMIN = Principal("cli:test", Role.ADMIN)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    identity: IdentityStore
    ctx: WebContext

    async def signin_form(self) -> str:
        page = await self.client.get("/signin")
        assert page.status == 200
        match = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert match is not None
        return match.group(1)

    async def sign_in(self, name: str, password: str, **headers: str) -> web.Response:
        token = await self.signin_form()
        return await self.client.post(  # type: ignore[return-value]
            "/signin",
            data={"csrf_token": token, "username": name, "password": password, "next": "/"},
            allow_redirects=False,
            headers=headers,
        )


@pytest.fixture
async def site(sqlite_url: str) -> AsyncIterator[Site]:
    engine = open_engine(sqlite_url)
    await create_tables(engine)
    identity = IdentityStore(engine, hasher=PasswordHasher(log_n=10))
    await identity.add_user(ADMIN, "王主管", Role.SUPERVISOR, password="长城-secret-2026")
    await identity.add_user(ADMIN, "ann", Role.AGENT, agent_id="701", password="ann-secret-2026")
    ctx = WebContext(sessions=identity, hub=Hub(coalesce=0.05), i18n=I18n.load(SHANGHAI))
    app = web.Application()
    install_web(app, ctx, sections=())
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Site(client, identity, ctx)
    finally:
        await client.close()
        await identity.aclose()


async def test_every_response_carries_the_security_headers(site: Site) -> None:
    for path in ("/signin", "/static/app.js", "/no-such-page"):
        r = await site.client.get(path)
        assert r.headers["Content-Security-Policy"] == CSP, path
        assert "default-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    page = await (await site.client.get("/signin")).text()
    # No inline script: every <script> either loads a file or is a JSON data block.
    for tag in re.findall(r"<script[^>]*>", page):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag


async def test_sign_in_sets_a_strict_http_only_session_and_signs_out(site: Site) -> None:
    r = await site.sign_in("王主管", "长城-secret-2026")
    assert r.status == 303 and r.headers["Location"] == "/"
    cookie = next(h for h in r.headers.getall("Set-Cookie") if h.startswith("dialer_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    home = await site.client.get("/")
    text = await home.text()
    assert home.status == 200, text
    assert "王主管" in text and "(主管)" in text, text  # Chinese by default
    token = re.search(r'name="csrf-token" content="([^"]+)"', text)
    assert token is not None and token.group(1)
    # Sign-out without the CSRF token is refused; with it, the session ends.
    refused = await site.client.post("/signout", data={}, allow_redirects=False)
    assert refused.status == 403
    out = await site.client.post(
        "/signout", data={"csrf_token": token.group(1)}, allow_redirects=False
    )
    assert out.status == 303 and out.headers["Location"] == "/signin"
    after = await site.client.get("/", allow_redirects=False)
    assert after.status == 303 and after.headers["Location"] == "/signin"


async def test_secure_cookie_behind_tls(site: Site) -> None:
    r = await site.sign_in("ann", "ann-secret-2026", **{"X-Forwarded-Proto": "https"})
    cookie = next(h for h in r.headers.getall("Set-Cookie") if h.startswith("dialer_session="))
    assert "Secure" in cookie


async def test_wrong_password_then_lock_out_shown_in_the_policy_zone(site: Site) -> None:
    for _ in range(4):
        r = await site.sign_in("ann", "wrong-password-1")
        assert r.status == 401
        assert "用户名或密码错误" in await r.text()
    r = await site.sign_in("ann", "wrong-password-1")
    assert r.status == 429
    text = await r.text()
    until = re.search(r"请在 (\d\d:\d\d) 之后再试", text)
    assert until is not None, text
    expected = (datetime.now(UTC).astimezone(SHANGHAI)).strftime("%H")
    assert until.group(1)[:2] in {expected, f"{(int(expected) + 1) % 24:02d}"}
    # Locked: even the right password is not checked.
    assert (await site.sign_in("ann", "ann-secret-2026")).status == 429


async def test_sign_in_form_needs_its_double_submit_token_and_this_origin(site: Site) -> None:
    await site.signin_form()
    r = await site.client.post(
        "/signin",
        data={"csrf_token": "forged", "username": "ann", "password": "ann-secret-2026"},
        allow_redirects=False,
    )
    assert r.status == 403
    token = await site.signin_form()
    r = await site.client.post(
        "/signin",
        data={"csrf_token": token, "username": "ann", "password": "ann-secret-2026"},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert r.status == 403


async def test_next_never_leaves_the_site(site: Site) -> None:
    token = await site.signin_form()
    r = await site.client.post(
        "/signin",
        data={
            "csrf_token": token,
            "username": "ann",
            "password": "ann-secret-2026",
            "next": "//evil.example/x",
        },
        allow_redirects=False,
    )
    assert r.status == 303 and r.headers["Location"] == "/"


async def test_english_on_request_and_kept(site: Site) -> None:
    page = await (await site.client.get("/signin?lang=en")).text()
    assert "User name" in page and 'lang="en"' in page
    again = await (await site.client.get("/signin")).text()
    assert "User name" in again  # the cookie keeps the choice
    back = await (await site.client.get("/signin?lang=zh")).text()
    assert "用户名" in back and 'lang="zh-Hans"' in back


async def test_socket_needs_a_session_and_this_origin(site: Site) -> None:
    with pytest.raises(Exception, match="401"):
        await site.client.ws_connect("/ws?page=agent")
    await site.sign_in("ann", "ann-secret-2026")
    with pytest.raises(Exception, match="403"):
        await site.client.ws_connect("/ws?page=agent", headers={"Origin": "http://evil.example"})
    with pytest.raises(Exception, match="404"):
        await site.client.ws_connect("/ws?page=nothing")


def test_times_are_read_in_the_policy_zone() -> None:
    i18n = I18n.load(SHANGHAI)
    at = datetime(2026, 12, 3, 2, 30, 15, 123456, tzinfo=UTC)
    with i18n.using("zh"):
        assert i18n.when(at) == "2026年12月3日周四 10:30"
        assert i18n.gettext("Sign in") == "登录"
    with i18n.using("en"):
        assert i18n.when(at) == "Thu, 3 Dec 2026 10:30"
        assert i18n.gettext("Sign in") == "Sign in"
    assert i18n.parse_local("2026-12-03T10:30") == datetime(2026, 12, 3, 10, 30, tzinfo=SHANGHAI)
    with pytest.raises(ValueError, match="naive"):
        i18n.when(datetime(2026, 12, 3, 10, 30))


def test_every_message_has_a_chinese_translation() -> None:
    from pathlib import Path

    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    import web as package

    root = Path(package.__file__ or "").parent
    with (root / "locale/zh_Hans/LC_MESSAGES/messages.po").open("rb") as fh:
        catalogue = read_po(fh)
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    used = {
        msg[2] if isinstance(msg[2], str) else msg[2][0]
        for msg in extract_from_dir(str(root), method_map, options_map=options)
    }
    missing = sorted(used - translated)
    assert not missing, f"messages without a Chinese translation (web/i18n.py says how): {missing}"


@dataclass(frozen=True)
class Tick:
    TYPE: ClassVar[str] = "tick"
    name: str
    n: int

    @property
    def key(self) -> str:
        return self.name


async def test_hub_sends_the_snapshot_first_then_coalesces(site: Site) -> None:
    hub = Hub(coalesce=0.2)

    async def page(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, ["t"], [Tick("a", 0)])

    app = web.Application()
    app.router.add_get("/ws", page)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        ws = await client.ws_connect("/ws")
        first = json.loads((await ws.receive()).data)
        assert first == {"messages": [{"type": "tick", "name": "a", "n": 0}]}
        for n in range(1, 500):  # within the coalescing window: only the newest per key
            hub.publish("t", Tick("a", n))
            hub.publish("t", Tick("b", n))
        frame = json.loads((await ws.receive(timeout=5)).data)
        assert frame["messages"] == [
            {"type": "tick", "name": "a", "n": 499},
            {"type": "tick", "name": "b", "n": 499},
        ]
        hub.publish("other", Tick("c", 1))  # another topic: not for this page
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.5)
        await ws.close()
        async with asyncio.timeout(5):
            while hub.subscribers("t"):  # noqa: ASYNC110 - the server notices the close
                await asyncio.sleep(0.01)
    finally:
        await client.close()


async def test_hub_closes_a_page_that_falls_too_far_behind() -> None:
    hub = Hub(coalesce=5.0, outbox_limit=10)

    async def page(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, ["t"], [])

    app = web.Application()
    app.router.add_get("/ws", page)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        ws = await client.ws_connect("/ws")
        hub.publish("t", Tick("first", 0))
        assert json.loads((await ws.receive(timeout=5)).data)["messages"][0]["name"] == "first"
        for n in range(20):  # during the (long) coalescing pause: 20 distinct things
            hub.publish("t", Tick(f"k{n}", n))
        closing = await ws.receive(timeout=10)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == 1013
    finally:
        await client.close()
