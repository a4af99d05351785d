"""AGI script ``optout``: the customer pressed the opt-out key; put the number on the DNC list.

Dialplan (the abandon message and other customer-facing prompts):
``AGI(agi://host:4573/optout,${DIALER_NUMBER},${DIALER_ATTEMPT_ID},${DIALER_CAMPAIGN})``.
Sets ``DIALER_OPTOUT=1`` once recorded; on any failure the server sets
``DIALER_OPTOUT=0`` and the dialplan tells the customer to call back (the
request must not be silently lost: it is also logged, masked, with the attempt).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from agi_scripts import variables as v
from agi_scripts.errors import AgiProtocolError
from agi_scripts.routes import Route
from agi_scripts.session import AgiSession
from compliance.lists import ListReason
from compliance.numbers import mask

logger = logging.getLogger(__name__)


class DoNotCallList(Protocol):
    """What opt-out needs of the lists (``compliance.lists.ListStore.add``)."""

    async def add(
        self,
        number: str,
        reason: ListReason,
        *,
        source: str,
        actor: str,
        note: str = "",
        at: datetime | None = None,
    ) -> object: ...


class OptOut:
    """The ``optout`` route, bound to the do-not-call list."""

    def __init__(self, lists: DoNotCallList) -> None:
        self.lists = lists

    def routes(self) -> list[Route]:
        return [Route("optout", self.optout, failure_variables={v.DIALER_OPTOUT: "0"})]

    async def optout(self, session: AgiSession) -> None:
        """Record the opt-out (rules.md B: "do not call me" blacklists at once)."""
        number = session.env.arg(1)
        if not number:
            raise AgiProtocolError("optout without the customer's number (argument 1)")
        attempt_id = session.env.arg(2)
        campaign = session.env.arg(3)
        await self.lists.add(
            number,
            ListReason.OPT_OUT,
            source="ivr-keypress",
            actor="customer",
            note=f"attempt={attempt_id} campaign={campaign} uniqueid={session.env.uniqueid}",
        )
        await session.set_variable(v.DIALER_OPTOUT, "1")
        logger.info(
            "optout uniqueid=%s attempt_id=%s campaign=%s number=%s",
            session.env.uniqueid,
            attempt_id or "-",
            campaign or "-",
            mask(number),
        )
