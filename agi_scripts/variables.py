"""Channel variables the AGI scripts set and read: one constant each, never spelled inline.

The dialplan in ``asterisk_conf/extensions.conf`` branches on these. Fail
closed: the dialplan places a call only when the decision variable is exactly
``ALLOW``; anything else (unset, ``BLOCK``, a failed AGI) refuses it.
"""

from __future__ import annotations

from enum import StrEnum

# Set on every failure the server can see (unknown route, handler error, overload).
AGI_STATUS = "DIALER_AGI_STATUS"
AGI_ERROR = "DIALER_AGI_ERROR"

# dialer_check (agents' manual dialling, click-to-call)
DIALER_DECISION = "DIALER_DECISION"
DIALER_REASON = "DIALER_REASON"
DIALER_REASONS = "DIALER_REASONS"
# manual calls: set by the dialplan itself (manual-${UNIQUEID}); dialer calls: by its originate
DIALER_ATTEMPT_ID = "DIALER_ATTEMPT_ID"
DIALER_RESULT = "DIALER_RESULT"  # dialer_result: the attempt's recorded outcome
DIALER_OPTOUT = "DIALER_OPTOUT"  # optout: 1 recorded, 0 not (failure)
# read when the dialplan did not pass them as AGI arguments
DIALER_CAMPAIGN = "DIALER_CAMPAIGN"
DIALER_PRODUCT = "DIALER_PRODUCT"
DIALER_CALLER_ID = "DIALER_CALLER_ID"

# set by the dialer's originate (dialer.calls.placement / agents); read by the dialplan:
# [dialer-abandon] passes them to the optout AGI, [dialer-amd] gives AMD() its silence
DIALER_NUMBER = "DIALER_NUMBER"
DIALER_ATTEMPT = "DIALER_ATTEMPT"  # the older name of DIALER_ATTEMPT_ID, still set
DIALER_AMD_AFTER_GREETING_MS = "DIALER_AMD_AFTER_GREETING_MS"
DIALER_AGENT = "DIALER_AGENT"  # on an agent's softphone leg

# desk_check / desk_rate (desk phones)
DESK_DECISION = "DESK_DECISION"
DESK_REASON = "DESK_REASON"
DESK_DIAL = "DESK_DIAL"
DESK_QUOTA_WARNING = "DESK_QUOTA_WARNING"
DESK_COST = "DESK_COST"


class Verdict(StrEnum):
    """The two values a decision variable takes."""

    ALLOW = "ALLOW"
    BLOCK = "BLOCK"


class AgiStatus(StrEnum):
    """Values of ``DIALER_AGI_STATUS`` (set only when something went wrong)."""

    FAILED = "FAILED"  # the handler raised: the route's failure variables were set
    NOT_FOUND = "NOT_FOUND"  # no route for agi_network_script
    BUSY = "BUSY"  # too many concurrent sessions: refused without running the handler
    HANGUP = "HANGUP"  # the channel hung up during the script
