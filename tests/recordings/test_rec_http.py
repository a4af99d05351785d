"""HTTP API security and behaviour: auth, roles, own-data rule, input checks, limits, Range,
masking, and an audit entry for every refusal (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rec_helpers import ADMIN, NUMBER, OTHER, Env, wav_bytes

from identity.model import Role
from recordings import audit
from recordings.http import make_recordings_app
from recordings.model import Outcome

pytestmark = pytest.mark.timeout(60)
BASE = "/api/recordings"
MAX_JSON = 4096
MAX_UPLOAD = 50_000


@dataclass
class Api:
    client: TestClient[Any, Any]
    env: Env
    tokens: dict[str, str]
    bodies: list[str] = field(default_factory=list)  # every response body, to check masking

    async def call(
        self, method: str, path: str, who: str | None, *, expect: int, **kwargs: Any
    ) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(who, who)}"
        resp = await self.client.request(method, BASE + path, headers=headers, **kwargs)
        body = await resp.read()
        assert resp.status == expect, f"{method} {path} as {who}: {resp.status} {body[:200]!r}"
        if resp.content_type == "application/json":
            self.bodies.append(body.decode())
            return json.loads(body)
        return resp, body


@pytest.fixture
async def api(env: Env) -> AsyncIterator[Api]:
    service = env.service
    tokens: dict[str, str] = {}
    for name, role, agent in (
        ("root", Role.ADMIN, ""),
        ("carol", Role.COMPLIANCE, ""),
        ("sam", Role.SUPERVISOR, ""),
        ("ann", Role.AGENT, "a1"),
        ("bob", Role.AGENT, "a2"),
    ):
        await env.identity.add_user(ADMIN, name, role, agent_id=agent)
        tokens[name] = (await env.identity.issue_token(ADMIN, name))[1]
    await env.add("rec-1", agent="a1", freq=440)
    await env.add("rec-2", agent="a2", freq=550)
    await env.add("rec-3", number=OTHER, agent="a1", freq=660)
    root = web.Application()
    root.add_subapp(
        BASE,
        make_recordings_app(
            service, env.identity, max_upload_bytes=MAX_UPLOAD, max_json_bytes=MAX_JSON
        ),
    )
    client = TestClient(TestServer(root))
    await client.start_server()
    try:
        yield Api(client, env, tokens)
    finally:
        await client.close()


async def denials(env: Env) -> list[Any]:
    return [e for e in await audit.tail(env.engine, 500) if e.outcome is Outcome.DENIED]


async def test_authentication_is_required_and_refusals_are_audited(api: Api) -> None:
    before = len(await denials(api.env))
    await api.call("GET", "/search?reason=x", None, expect=401)
    await api.call("GET", "/search?reason=x", "not-a-token", expect=401)
    await api.call(
        "GET", "/search?reason=x", None, expect=401, headers={"Authorization": "Basic abc"}
    )
    tid, token = await api.env.identity.issue_token(ADMIN, "sam", label="laptop")
    api.tokens["sam2"] = token
    await api.call("GET", "/search?reason=x", "sam2", expect=200)
    await api.env.identity.revoke_token(ADMIN, tid)
    await api.call("GET", "/search?reason=x", "sam2", expect=401)
    found = (await denials(api.env))[before:]
    assert [(e.actor, json.loads(e.detail)["status"]) for e in found] == [
        ("anonymous", 401),
        ("unknown-token", 401),
        ("anonymous", 401),
        ("unknown-token", 401),
    ]
    # The token is stored only as its SHA-256.
    from identity.schema import tokens as tokens_table

    async with api.env.engine.connect() as conn:
        stored = (await conn.execute(tokens_table.select())).all()
    assert all(token not in str(tuple(r)) for r in stored for token in api.tokens.values())


async def test_roles_and_least_privilege(api: Api) -> None:
    await api.call("GET", "/search?reason=audit", "ann", expect=403)  # an agent never lists
    await api.call("GET", "/search?reason=audit", "root", expect=403)  # admin does not listen
    await api.call("GET", "/files/rec-1/audio?reason=x", "root", expect=403)
    await api.call("POST", "/complaints", "sam", expect=403, json={"number": NUMBER})
    await api.call("GET", "/complaints/1/export?reason=x", "sam", expect=403)
    await api.call("POST", "/users", "carol", expect=403, json={"name": "x", "role": "admin"})
    await api.call("GET", "/audit/verify", "sam", expect=403)
    await api.call("GET", "/store/verify", "carol", expect=403)
    # An agent opens their own recording, never another agent's.
    own = await api.call("GET", "/files/rec-1?reason=self%20review", "ann", expect=200)
    assert own["agent"] == "a1"
    await api.call("GET", "/files/rec-2?reason=curious", "ann", expect=403)
    await api.call("GET", "/files/rec-2/audio?reason=curious", "ann", expect=403)
    await api.call("GET", "/files/rec-2?reason=mine", "bob", expect=200)
    # Supervisor searches, numbers masked.
    page = await api.call("GET", f"/search?number={NUMBER}&reason=qa", "sam", expect=200)
    assert {i["name"] for i in page["items"]} == {"rec-1", "rec-2"}
    assert all(i["number"] == "138****5678" for i in page["items"])
    await api.call("GET", "/files/nope?reason=x", "carol", expect=404)
    refused = await denials(api.env)
    assert len(refused) == 11
    assert {(e.actor, json.loads(e.detail)["status"]) for e in refused} >= {
        ("ann", 403),
        ("root", 403),
        ("sam", 403),
        ("carol", 403),
        ("carol", 404),
    }
    # A search needs a reason, and the search is audited with it.
    await api.call("GET", "/search", "carol", expect=400)
    await api.call("GET", "/search?agent=a1&reason=complaint%2042", "carol", expect=200)
    last = (await audit.tail(api.env.engine, 1))[0]
    assert (last.actor, last.action, last.reason) == ("carol", "search", "complaint 42")


@pytest.mark.parametrize(
    "path",
    [
        "/files/..%2F..%2Fetc%2Fpasswd?reason=x",
        "/files/..%2F..%2Fetc%2Fpasswd/audio?reason=x",
        "/files/%2E%2E?reason=x",
        "/files/.hidden/audio?reason=x",
        "/files/rec-1%00.wav/audio?reason=x",
        "/files/rec-1%2F..%2F..%2Fx/audio?reason=x",
        "/files/..\\..\\boot.ini?reason=x",
    ],
)
async def test_path_traversal_in_names_is_refused(api: Api, path: str) -> None:
    resp = await api.client.get(
        BASE + path, headers={"Authorization": f"Bearer {api.tokens['carol']}"}
    )
    assert resp.status in (400, 404), resp.status
    await resp.read()
    assert (await denials(api.env))[-1].actor == "carol"


SQLI = ["' OR '1'='1", "1; DROP TABLE rec_recordings; --", "a1' --", '" OR ""="', "%' OR 1=1 --"]


async def test_sql_metacharacters_in_every_search_field_are_refused(api: Api) -> None:
    from urllib.parse import quote

    fields = ["number", "from", "to", "agent", "campaign", "complaint", "limit", "cursor"]
    for field_name in fields:
        for bad in SQLI:
            await api.call(
                "GET", f"/search?{field_name}={quote(bad)}&reason=x", "carol", expect=400
            )
    await api.call("GET", f"/search?{quote(SQLI[0])}=1&reason=x", "carol", expect=400)
    # Free text (the reason) is stored as a bound parameter, never executed.
    page = await api.call("GET", f"/search?reason={quote(SQLI[1])}", "carol", expect=200)
    assert len(page["items"]) == 3
    assert (await audit.tail(api.env.engine, 1))[0].reason == SQLI[1]
    # Metacharacters in complaint fields: refused or stored literally, the tables intact.
    await api.call(
        "POST",
        "/complaints",
        "carol",
        expect=400,
        json={"number": SQLI[0], "channel": "call", "text": "t"},
    )
    await api.call(
        "POST",
        "/complaints",
        "carol",
        expect=400,
        json={"number": NUMBER, "channel": SQLI[2], "text": "t"},
    )
    await api.call("GET", f"/complaints/{quote(SQLI[1])}", "carol", expect=400)
    assert len(await denials(api.env)) == len(fields) * len(SQLI) + 4
    _, problems = await api.env.service.verify_store()
    assert problems == [] and await audit.verify(api.env.engine) == []


async def test_oversized_requests_get_413(api: Api) -> None:
    big = {"number": NUMBER, "channel": "call", "text": "x" * (MAX_JSON + 10)}
    await api.call("POST", "/complaints", "carol", expect=413, json=big)

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"\0" * 4096

    query = f"?name=desk-big&number={OTHER}&started_at=2026-03-02T10:00:00%2B00:00"
    await api.call("POST", "/ingest" + query, "root", expect=413, data=b"\0" * (MAX_UPLOAD + 1))
    await api.call("POST", "/ingest" + query, "root", expect=413, data=chunked())
    assert list(api.env.service.store.tmp.iterdir()) == []
    await api.call("GET", "/files/desk-big?reason=x", "carol", expect=404)
    assert [json.loads(e.detail)["status"] for e in (await denials(api.env))[:3]] == [413, 413, 413]
    # A desk-phone upload within limits is indexed.
    data = wav_bytes(0.3, 880)
    rec = await api.call(
        "POST",
        "/ingest" + query.replace("desk-big", "desk-1") + "&agent=ext201",
        "root",
        expect=201,
        data=data,
    )
    assert rec["origin"] == "desk" and rec["size"] == len(data) and rec["number"] == "139****4321"


async def test_play_with_range(api: Api) -> None:
    rec = await api.env.service.get("rec-1")
    data = api.env.service.store.absolute(rec.path).read_bytes()
    resp, body = await api.call("GET", "/files/rec-1/audio?reason=complaint", "carol", expect=200)
    assert body == data and resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Type"] == "audio/wav"
    resp, body = await api.call(
        "GET",
        "/files/rec-1/audio?reason=c",
        "carol",
        expect=206,
        headers={"Range": "bytes=100-199"},
    )
    assert body == data[100:200] and resp.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    resp, body = await api.call(
        "GET", "/files/rec-1/audio?reason=c", "ann", expect=206, headers={"Range": "bytes=-50"}
    )
    assert body == data[-50:]
    resp, body = await api.call(
        "GET",
        "/files/rec-1/audio?reason=c",
        "carol",
        expect=206,
        headers={"Range": f"bytes={len(data) - 10}-"},
    )
    assert body == data[-10:]
    resp = await api.call(
        "GET",
        "/files/rec-1/audio?reason=c",
        "carol",
        expect=416,
        headers={"Range": f"bytes={len(data)}-"},
    )
    assert resp["status"] == 416
    raw = await api.client.get(
        BASE + "/files/rec-1/audio?reason=c",
        headers={"Authorization": f"Bearer {api.tokens['carol']}", "Range": "bytes=999999-"},
    )
    assert raw.status == 416 and raw.headers["Content-Range"] == f"bytes */{len(data)}"
    await raw.read()
    plays = [e for e in await audit.tail(api.env.engine, 50) if e.action == "play"]
    assert len(plays) == 4 and {e.actor for e in plays} == {"carol", "ann"}
    # A recording whose file vanished: 404 naming the problem, before any byte is sent.
    api.env.service.store.absolute((await api.env.service.get("rec-3")).path).unlink()
    gone = await api.call("GET", "/files/rec-3/audio?reason=c", "carol", expect=404)
    assert "missing" in gone["error"]


async def test_complaint_api_masks_numbers_except_compliance_export(api: Api) -> None:
    case = await api.call(
        "POST",
        "/complaints",
        "carol",
        expect=201,
        json={
            "number": "138 1234 5678",
            "channel": "letter",
            "text": f"customer {NUMBER} says the agent was rude",
        },
    )
    assert (await api.env.lists.status(NUMBER)).blacklisted
    cid = case["id"]
    await api.call("GET", f"/complaints/{cid}", "sam", expect=200)
    await api.call("GET", "/complaints?status=open", "sam", expect=200)
    await api.call(
        "POST",
        f"/complaints/{cid}/judgement",
        "carol",
        expect=200,
        json={
            "company_at_fault": True,
            "order_cancelled": True,
            "refund": "99.00",
            "penalty_note": "agent a1 warned",
            "reply": "Refunded, sorry.",
        },
    )
    await api.call("GET", f"/search?complaint={cid}&reason=case", "carol", expect=200)
    await api.call("GET", "/complaints/report", "sam", expect=200)
    resp, body = await api.call(
        "GET", f"/complaints/{cid}/export?reason=case%20file", "carol", expect=200
    )
    assert resp.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["number"] == NUMBER  # the compliance role's export: full number
        assert {f["path"] for f in manifest["files"]} >= {
            "recordings/rec-1.wav",
            "recordings/rec-2.wav",
        }
    closed = await api.call("POST", f"/complaints/{cid}/close", "carol", expect=200, json={})
    assert closed["status"] == "closed"
    report = await api.call("GET", "/complaints/report", "carol", expect=200)
    assert (report["closed"], report["refunds_total"]) == (1, "99.00")
    await api.call("GET", "/audit?limit=200", "carol", expect=200)
    await api.call("GET", "/audit/verify", "root", expect=200)
    # A number typed into a URL or a reason is masked in the answer and in the audit log.
    await api.call("GET", f"/files/{NUMBER}?reason=caller%20{NUMBER}", "carol", expect=404)
    await api.call("GET", f"/files/rec-1?reason=caller%20{NUMBER}", "carol", expect=200)
    for entry in await audit.tail(api.env.engine, 500):
        assert NUMBER not in f"{entry.target} {entry.reason} {entry.detail}", entry.seq
    # No JSON response anywhere carries a full number.
    for body_text in api.bodies:
        assert NUMBER not in body_text and "13987654321" not in body_text, body_text[:200]
    assert any("138****5678" in b for b in api.bodies)


async def test_admin_manages_users_and_maintenance_over_http(api: Api) -> None:
    await api.call(
        "POST", "/users", "root", expect=201, json={"name": "dora", "role": "supervisor"}
    )
    await api.call(
        "POST", "/users", "root", expect=409, json={"name": "dora", "role": "supervisor"}
    )
    await api.call("POST", "/users", "root", expect=400, json={"name": "../x", "role": "agent"})
    issued = await api.call("POST", "/users/dora/tokens", "root", expect=201, json={"label": "pc"})
    api.tokens["dora"] = issued["token"]
    await api.call("GET", "/search?reason=x", "dora", expect=200)
    await api.call("POST", f"/tokens/{issued['id']}/revoke", "root", expect=200, json={})
    await api.call("GET", "/search?reason=x", "dora", expect=401)
    verify = await api.call("GET", "/store/verify", "root", expect=200)
    assert verify == {"checked": 3, "ok": True, "problems": []}
    purge = await api.call("POST", "/store/purge", "root", expect=200, json={"dry_run": True})
    assert purge["purged"] == []
    await api.call("GET", "/nowhere", "root", expect=404)
