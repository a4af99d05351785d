"""User names and agent ids (pure).

A user name is what a person types to sign in and what the audit log shows: 1-64
characters of letters and digits of any script (``王主管``, ``ann``), ``_ . @ -``
inside, normalised to Unicode NFC so the same name typed on two keyboards is one user.
An agent id names the dialer's agent (ARI bridge ``agent-<id>``, endpoint
``PJSIP/<id>``), so it stays within ``A-Z a-z 0-9 _ . : @ -``.
"""

from __future__ import annotations

import re
import unicodedata

USER_NAME_RE = re.compile(r"[^\W_][\w.@-]{0,63}")
AGENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}")


class BadIdentityName(ValueError):
    """A user name or agent id that is not acceptable (bad input)."""


def check_user_name(name: str) -> str:
    """The name in its stored form (NFC), or ``BadIdentityName`` saying why not."""
    normal = unicodedata.normalize("NFC", name)
    if not USER_NAME_RE.fullmatch(normal):
        raise BadIdentityName(
            f"user name {name[:40]!r} is not valid: 1-64 letters or digits (any script) "
            "and _ . @ - inside, no spaces, not starting with a punctuation mark"
        )
    return normal


def is_agent_id(value: str) -> bool:
    return AGENT_ID_RE.fullmatch(value) is not None


def check_agent_id(value: str) -> str:
    if not is_agent_id(value):
        raise BadIdentityName(
            f"agent id {value[:40]!r} is not valid: 1-64 characters of A-Z a-z 0-9 _ . : @ -"
        )
    return value
