"""The agent's console: one live screen per agent (state, screen-pop, script, dispositions)."""

from __future__ import annotations

from pathlib import Path

from identity.access import Action
from web.agent.views import install, live
from web.context import Section

SECTION = Section(
    name="agent",
    title="Agent console",
    action=Action.AGENT_ACT,
    package_dir=Path(__file__).parent,
    install=install,
    live=live,
)
