"""AGI scripts ``desk_check`` and ``desk_rate``: desk-phone outbound calls.

``desk_check`` (dialplan: ``AGI(agi://host:4573/desk-check,${EXTEN},${CALLERID(num)})``)
sets ``DESK_DECISION`` (ALLOW/BLOCK); when refused ``DESK_REASON``; when
allowed ``DESK_DIAL`` (the number the dialplan dials, 17909 prefix included)
and, over quota under the ``warn`` policy, ``DESK_QUOTA_WARNING=1`` and
``DESK_REASON=quota_warning``. (``DESK_REASON`` is left unset on a plain
ALLOW: every command is a round trip.) The
extension is argument 2, else the channel's caller id.

``desk_rate`` (from the ``h`` extension, answered calls only:
``AGI(agi://host:4573/desk-rate,${DESK_NUMBER},${CDR(billsec)},${DESK_EXTENSION})``)
rates the call and sets ``DESK_COST`` (fen).

Emergency numbers never reach this script: extensions.conf matches them
first, so they work with this server down.
"""

from __future__ import annotations

import logging

from agi_scripts import variables as v
from agi_scripts.desk import DeskService
from agi_scripts.desk_rules import DeskReason
from agi_scripts.errors import AgiProtocolError
from agi_scripts.routes import Route
from agi_scripts.session import AgiSession
from compliance.numbers import mask

logger = logging.getLogger(__name__)


class DeskScripts:
    """The two desk routes, bound to one ``DeskService``."""

    def __init__(self, service: DeskService) -> None:
        self.service = service

    def routes(self) -> list[Route]:
        blocked = {
            v.DESK_DECISION: v.Verdict.BLOCK.value,
            v.DESK_REASON: DeskReason.CHECK_FAILED.value,
        }
        return [
            Route("desk_check", self.check, failure_variables=blocked),
            Route("desk_rate", self.rate, failure_variables={v.DESK_COST: ""}),
        ]

    @staticmethod
    def _extension(session: AgiSession, index: int) -> str:
        extension = session.env.arg(index) or session.env.callerid
        if not extension.isdigit():
            raise AgiProtocolError("desk call without a numeric extension (caller id)")
        return extension

    async def check(self, session: AgiSession) -> None:
        """Decide a desk call and tell the dialplan."""
        number = session.env.arg(1) or session.env.get("agi_extension")
        extension = self._extension(session, 2)
        decision = await self.service.check(extension, number)
        # Two commands in the usual case. On ALLOW the decision goes last: a session cut
        # short never leaves ALLOW without the number to dial.
        values: dict[str, str] = {}
        if decision.allowed:
            values[v.DESK_DIAL] = decision.dial
            if decision.quota_warning:
                values[v.DESK_QUOTA_WARNING] = "1"
                values[v.DESK_REASON] = decision.reason.value
            values[v.DESK_DECISION] = v.Verdict.ALLOW.value
        else:
            values[v.DESK_DECISION] = v.Verdict.BLOCK.value
            values[v.DESK_REASON] = decision.reason.value
        await session.set_variables(values)
        logger.info(
            "desk_check uniqueid=%s extension=%s number=%s kind=%s decision=%s reason=%s "
            "spend_fen=%d quota_fen=%d",
            session.env.uniqueid,
            extension,
            mask(number),
            decision.kind.value,
            values[v.DESK_DECISION],
            decision.reason.value,
            decision.spend_fen,
            decision.quota_fen,
        )

    async def rate(self, session: AgiSession) -> None:
        """Rate a finished desk call (idempotent per channel uniqueid)."""
        number = session.env.arg(1)
        billsec_text = session.env.arg(2, "0")
        if not billsec_text.isdigit():
            raise AgiProtocolError("desk_rate: billsec argument is not a whole number")
        extension = self._extension(session, 3)
        result = await self.service.rate(session.env.uniqueid, extension, number, int(billsec_text))
        await session.set_variable(v.DESK_COST, str(result.cost_fen))
        logger.info(
            "desk_rate uniqueid=%s extension=%s number=%s kind=%s billsec=%s cost_fen=%d "
            "recorded=%s",
            session.env.uniqueid,
            extension,
            mask(number),
            result.kind.value,
            billsec_text,
            result.cost_fen,
            result.recorded,
        )
