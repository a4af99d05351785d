"""What a leg the dialer originates must carry, and the check every originate passes.

The dialer places exactly two kinds of call (issue 10, "no side doors"):

* a **customer leg**: a call the compliance gate allowed *for that attempt*. It
  carries the gate's ``Decision``, the attempt id, the number the gate checked
  and the caller ID it checked; the channel id is ``dl-<attempt>`` and the
  endpoint is the customer endpoint built from that very number.
* an **agent leg**: an agent's softphone, whose endpoint comes from the agent
  directory an administrator maintains (``dialer agent add``), never from a
  request.

``admit`` is pure: the call-control adapter (``dialer.adapters.AriCallControl``)
calls it, with the directory's endpoint for an agent, before every originate,
so a feature that forgets the gate or takes an endpoint from a request is
refused at the one place calls are made.
"""

from __future__ import annotations

from dataclasses import dataclass

from compliance.model import Decision
from dialer.ids import AGENT_PREFIX, CUSTOMER_PREFIX


class OriginateRefused(Exception):
    """An originate without what its leg needs (a broken invariant: nothing was sent)."""


class AgentNotInDirectory(ValueError):
    """An agent logs in that no administrator put in the agent directory."""


@dataclass(frozen=True, slots=True)
class CustomerLeg:
    """A customer call the gate allowed for ``attempt_id``."""

    attempt_id: str
    number: str
    caller_id: str
    decision: Decision


@dataclass(frozen=True, slots=True)
class AgentLeg:
    """An agent's softphone; the endpoint is checked against the agent directory."""

    agent_id: str


Leg = CustomerLeg | AgentLeg


def admit(
    leg: Leg,
    *,
    channel_id: str,
    endpoint: str,
    caller_id: str,
    customer_endpoint: str,
    directory_endpoint: str | None,
) -> None:
    """Raise ``OriginateRefused`` unless this originate is what ``leg`` allows."""
    if isinstance(leg, CustomerLeg):
        if not leg.decision.allowed:
            raise OriginateRefused(
                f"attempt {leg.attempt_id}: the compliance gate refused this call "
                f"({', '.join(c.value for c in leg.decision.codes)}): not originated"
            )
        if channel_id != CUSTOMER_PREFIX + leg.attempt_id:
            raise OriginateRefused(
                f"channel {channel_id!r} is not attempt {leg.attempt_id}'s: the gate's "
                "decision covers only its own attempt"
            )
        if endpoint != customer_endpoint.format(number=leg.number):
            raise OriginateRefused(
                f"attempt {leg.attempt_id}: endpoint is not the customer endpoint of the "
                "number the gate checked"
            )
        if caller_id != leg.caller_id:
            raise OriginateRefused(
                f"attempt {leg.attempt_id}: caller ID differs from the one the gate checked"
            )
        return
    if directory_endpoint is None:
        raise OriginateRefused(
            f"agent {leg.agent_id!r} is not in the agent directory "
            f"(dialer agent add {leg.agent_id} --endpoint TECH/RESOURCE): not originated"
        )
    if endpoint != directory_endpoint:
        raise OriginateRefused(
            f"agent {leg.agent_id!r}: endpoint {endpoint!r} is not the directory's "
            f"{directory_endpoint!r}: not originated"
        )
    if not channel_id.startswith(AGENT_PREFIX):
        raise OriginateRefused(f"agent leg with a non-agent channel id {channel_id!r}")
