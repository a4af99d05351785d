"""simpbx cannot drift into fiction: every route and parameter it accepts exists in real ARI.

The spec is the Asterisk 22.10.1 api-docs: read from
``<repo>/../shared/asterisk-reference/ari-api-docs/*.json`` when that folder
exists, else from ``data/ari_api_routes.json`` (route, parameter and error-code
names derived from the same files; a test keeps the two identical).
The routes are read from simpbx's own aiohttp router, not from a list kept
beside it, so a route added to the server without the spec fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ari_helpers import DATA, SHARED_REFERENCE

from dialer.ari import EVENT_CLASSES
from simulation.simpbx import ARI_ROUTES, SimPbx
from simulation.simpbx.server import EVENTS_QUERY

API_DOCS = SHARED_REFERENCE / "ari-api-docs"


def derive_spec(api_docs: Path) -> dict[str, Any]:
    routes: dict[str, Any] = {}
    for path in sorted(api_docs.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for api in doc.get("apis", []):
            for op in api.get("operations", []):
                params = op.get("parameters", [])
                routes[op["httpMethod"] + " " + api["path"]] = {
                    kind: sorted(p["name"] for p in params if p["paramType"] == kind)
                    for kind in ("query", "body", "path")
                } | {"errors": sorted(int(e["code"]) for e in op.get("errorResponses", []))}
    models = json.loads((api_docs / "events.json").read_text(encoding="utf-8"))["models"]
    return {"routes": routes, "event_models": sorted(models)}


def load_spec() -> dict[str, Any]:
    if API_DOCS.is_dir():
        return derive_spec(API_DOCS)
    data: dict[str, Any] = json.loads((DATA / "ari_api_routes.json").read_text(encoding="utf-8"))
    return data


SPEC = load_spec()


def router_routes(recordings: Path) -> set[tuple[str, str]]:
    """(method, path relative to /ari) of every ARI route simpbx's router serves."""
    app = SimPbx(clock="manual", recordings_dir=recordings).app
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith("/ari/") or route.method in ("HEAD", "*"):
            continue
        found.add((route.method, path[len("/ari") :]))
    return found


def test_router_serves_exactly_the_declared_routes(tmp_path: Path) -> None:
    declared = {(r.method, r.path) for r in ARI_ROUTES} | {("GET", "/events")}
    assert router_routes(tmp_path) == declared


@pytest.mark.parametrize("route", ARI_ROUTES, ids=[f"{r.method} {r.path}" for r in ARI_ROUTES])
def test_route_and_parameters_exist_in_real_ari(route: Any) -> None:
    key = f"{route.method} {route.path}"
    spec = SPEC["routes"].get(key)
    assert spec is not None, f"{key} is not an ARI route in the api-docs"
    assert set(route.query) <= set(spec["query"]), (
        f"{key}: parameters {sorted(set(route.query) - set(spec['query']))} are not in the api-docs"
    )
    assert set(route.body) <= set(spec["body"]), f"{key}: body {sorted(route.body)}"
    assert set(re.findall(r"{(\w+)}", route.path)) == set(spec["path"])


def test_events_websocket_parameters_exist() -> None:
    spec = SPEC["routes"]["GET /events"]
    # api_key is the generic ARI authentication parameter, valid on every route.
    assert EVENTS_QUERY - {"api_key"} <= set(spec["query"])


def test_every_modelled_event_class_is_an_ari_event_model() -> None:
    assert set(EVENT_CLASSES) <= set(SPEC["event_models"])


def test_error_statuses_simpbx_uses_are_documented() -> None:
    # The statuses the simulator can answer on the routes the dialer uses most.
    expected = {
        "POST /channels": {400, 409},
        "DELETE /channels/{channelId}": {400, 404},
        "POST /bridges/{bridgeId}/addChannel": {400, 404, 422},
        "POST /bridges/{bridgeId}/record": {400, 404, 409, 422},
        "POST /applications/{applicationName}/subscription": {400, 404, 422},
    }
    for key, statuses in expected.items():
        assert statuses <= set(SPEC["routes"][key]["errors"]), key


@pytest.mark.skipif(
    not API_DOCS.is_dir(), reason="../shared/asterisk-reference not beside the repo"
)
def test_derived_spec_copy_is_current() -> None:
    stored = json.loads((DATA / "ari_api_routes.json").read_text(encoding="utf-8"))
    derived = derive_spec(API_DOCS)
    assert stored["routes"] == derived["routes"]
    assert stored["event_models"] == derived["event_models"]


@pytest.mark.skipif(
    not SHARED_REFERENCE.is_dir(), reason="../shared/asterisk-reference not beside the repo"
)
def test_copied_captures_are_identical_to_the_reference() -> None:
    copies = sorted(p for p in DATA.iterdir() if p.suffix in (".jsonl", ".txt"))
    assert len(copies) >= 37
    for copy in copies:
        original = SHARED_REFERENCE / "ari-events" / copy.name
        assert original.read_bytes() == copy.read_bytes(), copy.name
