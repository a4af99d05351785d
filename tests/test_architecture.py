"""The pure core stays pure: importing it loads no I/O library.

The modules below decide (numbers, policy, rules, pacing, call states, outcomes,
agents, dispositions, desk-phone rules, recording names); adapters do the I/O.
A fresh interpreter imports them all and must not have loaded any of the
forbidden packages, directly or through another import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PURE_MODULES = (
    "compliance.model",
    "compliance.numbers",
    "compliance.masking",
    "compliance.policy",
    "compliance.engine",
    "dialer.pacing",
    "simulation.pacing_sim",
    "dialer.fsm",
    "dialer.outcomes",
    "dialer.agent_pool",
    "dialer.dispositions",
    "dialer.retry",
    "agi_scripts.desk_rules",
    "recordings.naming",
    "identity.model",
    "identity.names",
    "identity.passwords",
    "identity.lockout",
    "identity.access",
    "identity.sessions",
    "casework.cases",
    "casework.quality",
    "casework.settings",
    "reports.model",
    "reports.anomaly",
    "reports.charts",
    "reports.export",
    "reports.staffing",
)
FORBIDDEN = ("asyncio", "aiohttp", "redis", "sqlalchemy", "panoramisk", "asyncpg", "aiosqlite")

PROBE = """
import importlib, json, sys
for name in sys.argv[1].split(","):
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(","))))
"""


def test_pure_core_imports_no_io_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(PURE_MODULES), ",".join(FORBIDDEN)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout)
    assert loaded == [], f"pure modules pulled in I/O libraries: {loaded}"


def test_required_layout_exists() -> None:
    for name in ("dialer", "agi_scripts", "asterisk_conf", "compliance", "recordings", "identity",
                 "tests", "docker", "pyproject.toml", "README.md"):
        assert (ROOT / name).exists(), f"required top-level entry missing: {name}"
