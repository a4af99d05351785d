"""The fake Asterisk answers every captured command exactly as Asterisk 22.10.1 did.

Each transcript in data/ (copied from shared/asterisk-reference/agi) is replayed
through ``FakeAsterisk``: for every command the capture server sent, the bytes
the fake answers must equal the bytes Asterisk answered. This keeps the fake
used by every other AGI test from drifting into fiction.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agi_scripts.testing import FakeAsterisk, PeerResult

DATA = Path(__file__).parent / "data"
CHANNEL = {
    "CALLERID(num)": "201",
    "CALLERID(name)": "Desk 201",
    "CALLERID(all)": '"Desk 201" <201>',
    "DIALER_CAMPAIGN": "demo",
}


def exchanges(name: str) -> tuple[bool, list[tuple[str, bytes]]]:
    """(hung up before the first command, [(command, reply bytes)])."""
    entries = [json.loads(line) for line in (DATA / name).read_text().splitlines()]
    pairs: list[tuple[str, bytes]] = []
    hung_up_first = False
    for i, e in enumerate(entries):
        if e["dir"] == "recv" and i > 0 and not pairs and e["data"] == "HANGUP\n":
            hung_up_first = True
        if e["dir"] != "send":
            continue
        reply = b""
        for later in entries[i + 1 :]:
            if later["dir"] == "send":
                break
            if later["dir"] == "recv":
                reply += later["data"].encode()
        pairs.append((e["data"].rstrip("\n"), reply))
    return hung_up_first, pairs


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*_transcript.jsonl")))
def test_fake_replies_match_the_capture(name: str) -> None:
    hung_up_first, pairs = exchanges(name)
    assert pairs, "a transcript with no command"
    channel = dict(CHANNEL)
    if "dialer-check" in name:
        channel["CALLERID(num)"] = "5551000"
    fake = FakeAsterisk("127.0.0.1", 0, channel_vars=channel)
    state = PeerResult(hung_up=hung_up_first)
    for command, captured in pairs:
        got = fake._reply(command, state)
        assert got == captured, f"{name}: {command!r}"
