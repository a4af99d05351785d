"""What every ``dialer`` subcommand shares, whichever package contributes it: exit codes
and the bad-input error.

It lives at the bottom of the package graph (compliance imports nothing above it) so
that ``compliance``, ``recordings``, ``agi_scripts``, ``dialer`` and ``simulation``
register subcommands without importing each other.

Exit codes (the same for every subcommand):
  0  success; for ``check``: the call is allowed
  1  the business answer is "no" (``check``: refused; ``verify``: problems found)
  2  bad input: usage, a malformed number, file, policy or unknown name
  3  a service or file could not be reached (database, Redis, ARI)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NO = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3


class UserError(Exception):
    """Bad input from the person at the keyboard; printed without a traceback, exit 2."""
