"""The desk-phone rules are a pure core: importing them pulls in no I/O library."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("asyncio", "aiohttp", "redis", "sqlalchemy", "panoramisk", "socket", "aiosqlite")


def test_desk_rules_import_no_io_library() -> None:
    code = (
        "import sys, json; import agi_scripts.desk_rules; "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
