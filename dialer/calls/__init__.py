"""The campaign runner's slices around one shared call book (``book.CallBook``).

* ``placement``: pacing, lead claims, the compliance gate, originate;
* ``control``: a call's state machine stepped and its commands carried out, timers,
  the end-of-call writes;
* ``agents``: login, ready, pause, logout, connecting calls, dispositions, wrap-up;
* ``routing``: the table of ARI event names each slice subscribes to;
* ``reconcile``: reconcile and recovery as pure decisions;
* ``messages``: the dispatcher's typed messages (our Asterisk object ids: ``dialer.ids``).

``dialer.runner.Runner`` wires them and runs the loops. Nothing here is imported
on package import, so the pure modules stay importable without asyncio.
"""
