"""Asterisk object ids derived from ours (pure): ``dl-<attempt>`` for the customer leg,
``ag-<agent>`` for an agent's softphone; Local channels' second halves end in ``;2``."""

from __future__ import annotations

import uuid

CUSTOMER_PREFIX = "dl-"
AGENT_PREFIX = "ag-"


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:20]


def attempt_of(channel_id: str) -> str | None:
    """``dl-<attempt>`` -> attempt; the ``;2`` half and other channels -> None."""
    if channel_id.startswith(CUSTOMER_PREFIX) and ";" not in channel_id:
        return channel_id[len(CUSTOMER_PREFIX) :]
    return None


def is_ours(channel_id: str) -> bool:
    """A channel this dialer creates: ``dl-<attempt>`` or ``ag-<agent>`` (not a ``;2`` half)."""
    return ";" not in channel_id and channel_id.startswith((CUSTOMER_PREFIX, AGENT_PREFIX))
