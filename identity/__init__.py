"""Identity and access: who a caller is and what they may do, for every API and page.

``identity.model`` (roles, principals, users), ``identity.names`` (user names, which may
be Chinese), ``identity.passwords`` (scrypt), ``identity.lockout`` (failed sign-ins),
``identity.access`` (the one authorization decision), ``identity.sessions`` (session ids
and CSRF tokens) are pure; ``identity.schema`` and ``identity.store`` hold the SQL side;
``identity.cli`` is ``dialer user ...``.
"""
