"""The abandon path never goes silent: every site prompt in ``[dialer-abandon]`` has a
stock fall-back, and ``dialer serve`` checks at start-up over ARI that the contexts and
prompts it relies on exist (``dialer.pbx_checks``): a missing site prompt is a warning, a
missing context or fall-back an error that stops the start with the fix.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from dialer.app import StartupError, open_stack
from dialer.ari.client import AriClient
from dialer.config import AriSettings, DatabaseSettings, DialerSection, Settings
from dialer.pbx_checks import (
    ABANDON_FALLBACK,
    ABANDON_PROMPT,
    ABANDON_PROMPTS,
    PbxNeeds,
    Severity,
    check_pbx,
)
from simulation.simpbx.server import STOCK_SOUNDS, running_simpbx

pytestmark = pytest.mark.timeout(60)
CONF = Path(__file__).parents[2] / "asterisk_conf" / "extensions.conf"
CORE_SOUNDS = Path("/usr/share/asterisk/sounds/en")
SITE_PROMPT = re.compile(r"\b(Playback|Read)\(([^)]*)\)")


def context_lines(text: str, context: str) -> list[str]:
    out: list[str] = []
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            section = m.group(1)
        elif section == context and line:
            out.append(line)
    return out


def prompts_of(line: str) -> tuple[str, list[str]] | None:
    """(application, sound files) of a Playback/Read line; Read's prompt is its 2nd arg."""
    m = SITE_PROMPT.search(line)
    if m is None:
        return None
    args = m.group(2).split(",")
    files = args[0] if m.group(1) == "Playback" else (args[1] if len(args) > 1 else "")
    return m.group(1), [f for f in files.split("&") if f]


def stock_sound_exists(name: str) -> bool:
    if CORE_SOUNDS.is_dir():
        return any(CORE_SOUNDS.glob(f"{name}.*"))
    return name in STOCK_SOUNDS


def fallback_problems(lines: list[str]) -> list[str]:
    """Every site (dialer/) prompt must be followed, on the next line, by a check of
    PLAYBACKSTATUS / READSTATUS, and before the next site prompt, label or Hangup, by
    the same application with stock prompts only, all of which exist."""
    problems: list[str] = []
    status = {"Playback": "${PLAYBACKSTATUS}", "Read": "${READSTATUS}"}
    for i, line in enumerate(lines):
        found = prompts_of(line)
        if found is None or not any(f.startswith("dialer/") for f in found[1]):
            continue
        app, files = found
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if status[app] not in nxt:
            problems.append(f"{files}: next line does not check {status[app]}: {nxt!r}")
            continue
        stock: list[str] = []
        for follow in lines[i + 1 :]:
            if "Hangup(" in follow or re.match(r"same\s*=>\s*n\(", follow):
                break
            other = prompts_of(follow)
            if other is None:
                continue
            if any(f.startswith("dialer/") for f in other[1]):
                break
            if other[0] == app:
                stock += other[1]
        if not stock:
            problems.append(f"{files}: no stock {app} fall-back")
        problems += [
            f"{files}: fall-back {s!r} is not a stock sound"
            for s in stock
            if not stock_sound_exists(s)
        ]
    return problems


def test_every_site_prompt_of_the_abandon_context_has_a_stock_fallback() -> None:
    lines = context_lines(CONF.read_text(), "dialer-abandon")
    site = [p for line in lines if (p := prompts_of(line)) and p[1][0].startswith("dialer/")]
    assert {f for _, files in site for f in files} == {
        "dialer/abandon-message",
        "dialer/press-9-optout",
        "dialer/optout-failed-call-us",
        "dialer/optout-done",
    }
    assert fallback_problems(lines) == []
    # The fall-back of the information message gives a number to call back.
    first = next(i for i, line in enumerate(lines) if "dialer/abandon-message" in line)
    assert any("SayDigits(${CALLERID(num)})" in line for line in lines[first : first + 5])


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        ("same => n,Playback(dialer/x)\nsame => n,Hangup(16)", "does not check"),
        (
            "same => n,Playback(dialer/x)\nsame => n,NoOp(${PLAYBACKSTATUS})\nsame => n,Hangup()",
            "no stock Playback",
        ),
        (
            'same => n,Read(K,dialer/x,1)\nsame => n,ExecIf($["${READSTATUS}" = "ERROR"]'
            "?Read(K,no-such-sound-xyz,1))",
            "not a stock sound",
        ),
    ],
)
def test_the_checker_catches_a_missing_fallback(snippet: str, problem: str) -> None:
    problems = fallback_problems(context_lines("[c]\n" + snippet, "c"))
    assert any(problem in p for p in problems), problems


def test_the_readme_says_what_each_prompt_must_say() -> None:
    readme = (CONF.parent / "README.md").read_text()
    for prompt in ("abandon-message", "press-9-optout", "optout-failed-call-us", "optout-done"):
        assert f"dialer/{prompt}" in readme
    assert "<company name>" in readme and "<公司名称>" in readme
    assert "<callback number>" in readme and "<回拨号码>" in readme


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "dialer.pbx_checks"
    ]


ABANDON = PbxNeeds(amd_context=None, abandon_context="dialer-abandon", abandon_media="")


async def test_missing_abandon_prompt_is_a_warning_naming_file_and_fallback() -> None:
    async with running_simpbx() as sim:
        client = AriClient(sim.base_url, "dialer", "dialer-secret", app="dialer")
        try:
            found = await check_pbx(client, ABANDON)
            assert [f.severity for f in found] == [Severity.WARNING] * 4
            message = str(found[0])
            assert ABANDON_PROMPT in message and ABANDON_FALLBACK in message
            assert "asterisk_conf/README.md" in message
            assert ("GET", "/deviceStates/Local/s@dialer-abandon", 200) in [
                (r.method, r.path, r.status) for r in sim.requests
            ]
            for prompt in ABANDON_PROMPTS:
                sim.sounds.add(prompt)
            assert await check_pbx(client, ABANDON) == []
        finally:
            await client.close()


async def test_missing_abandon_context_is_an_error_with_the_fix_not_a_false_warning() -> None:
    async with running_simpbx() as sim:
        sim.engine.dialplan_contexts.discard("dialer-abandon")
        sim.sounds.add(ABANDON_PROMPT)
        client = AriClient(sim.base_url, "dialer", "dialer-secret", app="dialer")
        try:
            [finding] = await check_pbx(client, ABANDON)
        finally:
            await client.close()
    assert finding.severity is Severity.ERROR
    assert "[dialer-abandon]" in finding.problem and "silence" in finding.problem
    assert "extensions.conf" in finding.fix and 'abandon_context = ""' in finding.fix
    # Nothing claims that a message would play.
    assert "plays" not in str(finding)


async def test_missing_amd_context_and_fallback_prompts_are_errors() -> None:
    async with running_simpbx() as sim:
        sim.engine.dialplan_contexts.discard("dialer-amd")
        sim.sounds.discard("vm-press")
        client = AriClient(sim.base_url, "dialer", "dialer-secret", app="dialer")
        try:
            found = await check_pbx(
                client,
                PbxNeeds(amd_context="dialer-amd", abandon_context="", abandon_media="sound:x"),
            )
            assert [f.severity for f in found] == [Severity.ERROR, Severity.ERROR]
            assert "[dialer-amd]" in found[0].problem and "dialer.amd = false" in found[0].fix
            assert "'sound:x'" in found[1].problem
            [optout] = [f for f in await check_pbx(client, ABANDON) if f.severity is Severity.ERROR]
            assert "dialer/press-9-optout" in optout.problem and "'vm-press'" in optout.problem
        finally:
            await client.close()


async def test_ari_down_during_the_check_is_a_warning_not_a_refusal() -> None:
    async with running_simpbx() as sim:
        sim.fail_next("GET", "/deviceStates/*", 500)
        client = AriClient(sim.base_url, "dialer", "dialer-secret", app="dialer")
        try:
            [finding] = await check_pbx(client, ABANDON)
        finally:
            await client.close()
    assert finding.severity is Severity.WARNING and "cannot check" in finding.problem


async def test_the_stack_checks_the_pbx_at_startup(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_simpbx() as sim:
        settings = Settings(
            ari=AriSettings(url=sim.base_url, username="dialer", password="dialer-secret"),
            database=DatabaseSettings(url=sqlite_url),
            dialer=DialerSection(abandon_context="dialer-abandon"),
        )
        with caplog.at_level(logging.WARNING, logger="dialer.pbx_checks"):
            stack = await open_stack(settings, with_recordings=False)
        try:
            assert stack.runner.config.abandon_context == "dialer-abandon"
            assert any(ABANDON_PROMPT in m for m in warnings_of(caplog))
        finally:
            await stack.close()
        # Without the context it refuses to start, naming the context and the fix.
        sim.engine.dialplan_contexts.discard("dialer-abandon")
        with pytest.raises(StartupError, match=r"\[dialer-abandon\].*fix: load"):
            await open_stack(settings, with_recordings=False)
