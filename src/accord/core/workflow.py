"""Status workflows kept as one table per record type (`{status: allowed next statuses}`).

Tickets, leads and orders each declare such a table; this is the one check of a move against
it, so every workflow answers an illegal move the same way: a 409 naming the field, whose
detail lists the moves that are allowed (a client can correct itself without the docs).
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from accord.core.errors import Conflict


def check_transition(transitions: Mapping[str, Set[str]], old: str, new: str, *,
                     record: str, field: str = "status") -> None:
    """Raise a 409 unless `transitions` allows `old` → `new`. `record` names the record with
    its article ("a ticket", "an order"). Staying put is a move like any other: callers that
    treat it as a no-op check for it first."""
    allowed = transitions.get(old, frozenset())
    if new in allowed:
        return
    listed = ", ".join(sorted(allowed)) or "none"
    raise Conflict(f"{record} cannot go from {old} to {new} (allowed: {listed})", field=field)
