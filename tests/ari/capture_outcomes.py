"""Capture, from a real Asterisk, what ARI sends for each callee behaviour, as the dialer drives it.

Not a test: a tool run by hand against a real Asterisk 22 with the reference
dialplan, the project's ``[dialer-amd]`` and the test dialplan's ``early``
behaviour (README, "Checked against a real Asterisk 22"). For each behaviour,
with and without AMD, it opens the events WebSocket, originates the customer
into the app exactly as the dialer does (AMD: subscribe, then ``continue`` into
``[dialer-amd]`` on the first ``StasisStart``), hangs up one second after the
call is in the app, and writes ``scenario_outcome_<name>_rest.jsonl`` and
``_events.jsonl`` in the format of the reference captures
(``asterisk-reference/README.md``). The numbers are the reference world's
fictitious ``555000N``: nothing personal is stored.

    python tests/ari/capture_outcomes.py http://127.0.0.1:8088/ari tests/ari/data/outcomes
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

USER = "dialer"
PASSWORD = "dialer-secret"
# behaviour -> (number, extra channel variables, ring timeout)
BEHAVIOURS: dict[str, tuple[str, dict[str, str], int]] = {
    "human": ("5550001", {}, 30),
    "machine": ("5550006", {}, 30),
    "busy": ("5550003", {}, 30),
    "congestion": ("5550004", {}, 30),
    "noanswer": ("5550005", {}, 5),
    "reject": ("5550008", {}, 30),
    "unallocated": ("5550000", {}, 30),
    "early": ("5550007", {"SIM_BEHAVIOUR": "early"}, 30),
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Capture:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base.rstrip("/")
        self.http = http
        self.rest: list[dict[str, Any]] = []
        self.frames: list[str] = []

    async def call(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        sent = _now()
        async with self.http.request(
            method,
            self.base + path,
            params=query or None,
            json=body,
            auth=aiohttp.BasicAuth(USER, PASSWORD),
        ) as resp:
            text = await resp.text()
            entry: dict[str, Any] = {
                "seq": len(self.rest) + 1,
                "t": sent,
                "method": method,
                "path": path,
                "query": query,
                "request_body": body,
                "status": resp.status,
                "reason": resp.reason,
                "content_type": resp.headers.get("Content-Type"),
                "response_body": text,
                "response_json": json.loads(text) if text.startswith(("{", "[")) else None,
                "note": None,
            }
        self.rest.append(entry)
        return entry


async def scenario(base: str, ws_url: str, behaviour: str, amd: bool, out: Path) -> None:
    number, extra, timeout = BEHAVIOURS[behaviour]
    name = f"outcome_{'amd_' if amd else ''}{behaviour}"
    cid = f"oc-{'amd-' if amd else ''}{behaviour}"
    async with aiohttp.ClientSession() as http:
        cap = Capture(base, http)
        ws = await http.ws_connect(
            ws_url, params={"app": "dialer", "api_key": f"{USER}:{PASSWORD}"}
        )
        await asyncio.sleep(0.3)
        gone: set[str] = set()
        hangup_at: float | None = None
        variables = {"CAMPAIGN": "demo", "DIALER_AMD_AFTER_GREETING_MS": "800", **extra}
        await cap.call(
            "POST",
            "/channels",
            {
                "endpoint": f"Local/{number}@sim-customers",
                "app": "dialer",
                "appArgs": "customer,campaign-demo",
                "channelId": cid,
                "callerId": '"Dialer" <5551000>',
                "timeout": str(timeout),
            },
            {"variables": variables},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not {cid, cid + ";2"} <= gone:
            wait = 0.2 if hangup_at is None else max(0.0, hangup_at - time.monotonic())
            try:
                msg = await ws.receive(timeout=wait)
            except TimeoutError:
                msg = None
            if hangup_at is not None and time.monotonic() >= hangup_at:
                hangup_at = None
                await cap.call("DELETE", f"/channels/{cid}", {})
            if msg is None or msg.type != aiohttp.WSMsgType.TEXT:
                continue
            cap.frames.append(msg.data)
            event = json.loads(msg.data)
            channel = (event.get("channel") or {}).get("id")
            if event["type"] == "ChannelDestroyed" and channel is not None:
                gone.add(channel)
            if event["type"] == "StasisStart" and channel == cid:
                if amd and event["args"][:1] == ["customer"]:
                    await cap.call(
                        "POST",
                        "/applications/dialer/subscription",
                        {"eventSource": f"channel:{cid}"},
                    )
                    await cap.call(
                        "POST",
                        f"/channels/{cid}/continue",
                        {"context": "dialer-amd", "extension": "s", "priority": "1"},
                    )
                else:
                    hangup_at = time.monotonic() + 1.0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                msg = await ws.receive(timeout=end - time.monotonic())
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.TEXT:
                cap.frames.append(msg.data)
        await ws.close()
    (out / f"scenario_{name}_rest.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in cap.rest)
    )
    (out / f"scenario_{name}_events.jsonl").write_text("".join(f + "\n" for f in cap.frames))
    print(f"{name}: {len(cap.rest)} requests, {len(cap.frames)} events")


async def main(base: str, out: Path) -> None:
    ws_url = base.replace("http", "ws", 1).rstrip("/") + "/events"
    for amd in (False, True):
        for behaviour in BEHAVIOURS:
            await scenario(base, ws_url, behaviour, amd, out)


if __name__ == "__main__":
    target = Path(sys.argv[2])
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(sys.argv[1], target))
