"""The supervisors' floor: the live wallboard (agents, campaigns, why the pacer holds
back, campaign start/pause/stop) fed by ``dialer.floor``."""

from __future__ import annotations

from pathlib import Path

from identity.access import Action
from web.context import Section
from web.floor.views import install, live
from web.i18n import N_

SECTION = Section(
    name="floor",
    title=N_("Wallboard"),
    action=Action.CAMPAIGNS_READ,
    package_dir=Path(__file__).parent,
    install=install,
    live=live,
)
