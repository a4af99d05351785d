"""AGI script ``dialer_check``: the compliance gate for calls agents dial by hand (click-to-call).

Dialplan: ``AGI(agi://host:4573/dialer-check,${EXTEN},${DIALER_CAMPAIGN},${DIALER_PRODUCT},
${DIALER_CALLER_ID},${DIALER_CALLBACK},${DIALER_DIALLED_NUMBER})``; campaign,
product and caller id may be left out (fewer arguments), then the channel
variables of the same names are read (the reference capture passes only number
and campaign); an argument passed empty counts as given (empty). Without a
caller id the gate checks the campaign's registered one; the dialplan must then
present that number (extensions.conf sets it from ``DIALER_CALLER_ID``).

One atomic check-and-reserve per call (the attempt id is ``manual-<uniqueid>``,
so a retried AGI never reserves twice), then ``DIALER_DECISION`` = ALLOW|BLOCK.
When allowed that is the only command: the dialplan derives the attempt id
itself, ``manual-${UNIQUEID}`` (``ATTEMPT_PREFIX``; extensions.conf), so a
session cut short can never leave ALLOW without it, and the caller waits for one
round trip less. When refused, ``DIALER_REASON`` (the first reason code) and,
with several, ``DIALER_REASONS`` (all, comma-separated). An empty product lets
the gate choose (the lead's product, else the campaign's first). Fails closed: a gate
error is a BLOCK with reason ``check_failed`` (the server's failure policy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from agi_scripts import variables as v
from agi_scripts.errors import AgiProtocolError
from agi_scripts.routes import Route
from agi_scripts.session import AgiSession
from compliance.clock import utcnow
from compliance.model import AttemptOutcome, Decision
from compliance.numbers import mask
from compliance.outcomes import dialstatus_ledger_outcome

logger = logging.getLogger(__name__)

CHECK_FAILED = "check_failed"
# The attempt id of a manual call is ATTEMPT_PREFIX + the channel's uniqueid; the
# dialplan (extensions.conf, [agent-manual]) builds the same string from ${UNIQUEID}.
ATTEMPT_PREFIX = "manual-"


class CheckAndReserve(Protocol):
    """What this script asks of the compliance gate (``compliance.gate.ComplianceGate``)."""

    async def check_and_reserve(
        self,
        number: str,
        campaign: str,
        product: str | None,
        at: datetime,
        caller_id: str | None = None,
        is_callback: bool = False,
        dialled_number: str | None = None,
        *,
        attempt_id: str,
    ) -> Decision: ...

    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None: ...




class DialerCheck:
    """The ``dialer_check`` route, bound to one gate."""

    def __init__(self, gate: CheckAndReserve, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.gate = gate
        self.clock = clock

    def routes(self) -> list[Route]:
        return [
            Route(
                "dialer_check",
                self.check,
                failure_variables={
                    v.DIALER_DECISION: v.Verdict.BLOCK.value,
                    v.DIALER_REASON: CHECK_FAILED,
                },
            ),
            Route("dialer_result", self.result),
        ]

    @staticmethod
    async def _variable(session: AgiSession, variable: str) -> str:
        """The channel variable, "" when unset: for an argument the dialplan left out."""
        return await session.get_variable(variable) or ""

    async def check(self, session: AgiSession) -> None:
        """Check and reserve one manually dialled call; tell the dialplan."""
        env = session.env
        args = env.args
        given = len(args)
        number = env.arg(1) or env.get("agi_extension")
        # Argument N, or only when the dialplan passed fewer, the channel variable. A present
        # but empty argument (``dialer-check,${EXTEN},demo,,``: Asterisk sends
        # ``agi_arg_3: ``) is the dialplan's own answer, typically the same variable expanded
        # to nothing: asking the channel again would cost a round trip for the same value.
        campaign = args[1] if given >= 2 else await self._variable(session, v.DIALER_CAMPAIGN)
        product = args[2] if given >= 3 else await self._variable(session, v.DIALER_PRODUCT)
        # Not the channel's own caller id: that is the agent's phone, not what the customer
        # will see. None lets the gate check the campaign's number, which the dialplan presents.
        caller_id = (
            args[3] if given >= 4 else await self._variable(session, v.DIALER_CALLER_ID)
        ) or None
        is_callback = env.arg(5).lower() in ("1", "yes", "true")
        dialled = env.arg(6) or None
        if not env.uniqueid:
            raise AgiProtocolError("dialer_check: no agi_uniqueid to name the attempt after")
        attempt_id = ATTEMPT_PREFIX + env.uniqueid
        decision = await self.gate.check_and_reserve(
            number,
            campaign,
            product or None,
            self.clock(),
            caller_id=caller_id,
            is_callback=is_callback,
            dialled_number=dialled,
            attempt_id=attempt_id,
        )
        codes = [str(code) for code in decision.codes]
        values: dict[str, str] = {}
        if decision.allowed:
            # the only variable: the dialplan sets DIALER_ATTEMPT_ID=manual-${UNIQUEID}
            values[v.DIALER_DECISION] = v.Verdict.ALLOW.value
        else:
            values[v.DIALER_DECISION] = v.Verdict.BLOCK.value
            values[v.DIALER_REASON] = codes[0] if codes else CHECK_FAILED
            if len(codes) > 1:
                values[v.DIALER_REASONS] = ",".join(codes)
        await session.set_variables(values)
        # mask() and the joins cost more than the check of the level: only for a written line
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "dialer_check uniqueid=%s attempt_id=%s number=%s campaign=%s product=%s "
                "caller_id=%s decision=%s reasons=%s policy=%s",
                env.uniqueid,
                attempt_id,
                mask(number),
                campaign,
                product,
                mask(caller_id or ""),
                values[v.DIALER_DECISION],
                ",".join(codes) or "-",
                decision.policy_version,
            )

    async def result(self, session: AgiSession) -> None:
        """From the ``h`` extension: report how a manually dialled attempt ended.

        ``AGI(agi://host:4573/dialer-result,${DIALER_ATTEMPT_ID},${DIALSTATUS})``;
        sets ``DIALER_RESULT`` to the outcome recorded in the ledger.
        """
        attempt_id = session.env.arg(1)
        if not attempt_id.startswith(ATTEMPT_PREFIX):
            raise AgiProtocolError("dialer_result: first argument is not a manual attempt id")
        status = session.env.arg(2).upper()
        outcome = dialstatus_ledger_outcome(status)
        await self.gate.resolve(attempt_id, outcome)
        await session.set_variable(v.DIALER_RESULT, outcome.value)
        logger.info(
            "dialer_result uniqueid=%s attempt_id=%s dialstatus=%s outcome=%s",
            session.env.uniqueid,
            attempt_id,
            status or "-",
            outcome.value,
        )
