"""asterisk_conf/extensions.conf against the route table and the fail-closed rules."""

from __future__ import annotations

import re
from pathlib import Path

from agi_scripts.app import ROUTE_NAMES
from agi_scripts.desk_config import load_desk_config
from agi_scripts.protocol import route_key
from compliance.numbers import DEFAULT_EMERGENCY

CONF = Path(__file__).parents[2] / "asterisk_conf"
AGI_CALL = re.compile(r"AGI\(agi://(?P<host>[^/]+)/(?P<script>[^,)]+)(?P<args>[^)]*)\)")


def contexts() -> dict[str, list[tuple[str, str]]]:
    """context -> [(extension, application line)] in file order (comments stripped)."""
    out: dict[str, list[tuple[str, str]]] = {}
    current, exten = "", ""
    for raw in (CONF / "extensions.conf").read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            current = m.group(1)
            out[current] = []
        elif m := re.match(r"exten\s*=>\s*([^,]+),([^,]+),(.*)", line):
            exten = m.group(1).strip()
            out[current].append((exten, m.group(3)))
        elif m := re.match(r"same\s*=>\s*([^,]+),(.*)", line):
            out[current].append((exten, m.group(2)))
    return out


def test_every_agi_script_in_the_dialplan_has_a_route() -> None:
    text = (CONF / "extensions.conf").read_text()
    scripts = {m.group("script") for m in AGI_CALL.finditer(text)}
    assert scripts, "no AGI() call found: the parser or the file is wrong"
    missing = {s for s in scripts if route_key(s) not in ROUTE_NAMES}
    assert missing == set()
    assert {route_key(s) for s in scripts} == set(ROUTE_NAMES)  # and no route unused
    for m in AGI_CALL.finditer(text):
        assert "?" not in m.group("script"), "pass arguments after commas, not as a ?query"
        assert m.group("host") == "${DIALER_AGI}"


def test_every_agi_check_is_followed_by_a_fail_closed_branch() -> None:
    for name, lines in contexts().items():
        apps = [app for _ext, app in lines]
        for i, app in enumerate(apps):
            m = AGI_CALL.search(app)
            if not m or route_key(m.group("script")) not in ("desk_check", "dialer_check"):
                continue
            after = " ".join(apps[i + 1 : i + 4])
            assert '"${AGISTATUS}" != "SUCCESS"' in after, name
            decision = "DESK_DECISION" if "desk" in m.group("script") else "DIALER_DECISION"
            # BLOCK is not the only refusal: anything but ALLOW refuses
            assert f'"${{{decision}}}" != "ALLOW"' in after, name


def test_emergency_numbers_are_matched_before_and_without_the_agi_check() -> None:
    desk = contexts()["desk-outbound"]
    extens = [e for e, _ in desk]
    configured = load_desk_config(CONF / "desk.toml").plan.emergency
    assert set(configured) == set(DEFAULT_EMERGENCY)
    for number in configured:
        assert number in extens, f"emergency {number} not an exact extension of desk-outbound"
        apps = [app for e, app in desk if e == number]
        assert not any("AGI(" in a for a in apps), f"emergency {number} must not need the AGI"
        assert any(a.startswith("Dial(") for a in apps)
        # exact extensions come first in the file as well as in Asterisk's matching order
        assert extens.index(number) < extens.index("_X.")


def test_desk_calls_dial_the_number_the_check_returned() -> None:
    desk = [app for e, app in contexts()["desk-outbound"] if e == "_X."]
    dials = [a for a in desk if a.startswith("Dial(")]
    assert dials == ["Dial(PJSIP/${DESK_DIAL}@${TRUNK},60)"]


def test_sample_desk_file_is_valid() -> None:
    config = load_desk_config(CONF / "desk.toml")
    assert config.class_of("201").value == "executive"
    assert config.quota_of("230").local_fen == 10000
    assert config.quota.long_distance_fen == 15000 and config.quota.local_fen == 8000


def test_manual_calls_build_the_attempt_id_the_gate_reserved() -> None:
    """dialer_check sets only DIALER_DECISION on ALLOW: the dialplan names the attempt
    itself, in the same spelling (ATTEMPT_PREFIX + uniqueid), and h does not depend on
    a Set() that a hangup right after the AGI could skip."""
    from agi_scripts.dialer_check import ATTEMPT_PREFIX

    expected = f"{ATTEMPT_PREFIX}${{UNIQUEID}}"
    manual = contexts()["agent-manual"]
    main = [app for e, app in manual if e == "_X."]
    assert f"Set(DIALER_ATTEMPT_ID={expected})" in main
    check_at = next(i for i, a in enumerate(main) if "/dialer-check," in a)
    allow_at = next(i for i, a in enumerate(main) if '"${DIALER_DECISION}" != "ALLOW"' in a)
    assert check_at < allow_at < main.index(f"Set(DIALER_ATTEMPT_ID={expected})")
    h = [app for e, app in manual if e == "h"]
    results = [a for a in h if "/dialer-result," in a]
    assert results == [f"AGI(agi://${{DIALER_AGI}}/dialer-result,{expected},${{DIALSTATUS}})"]
