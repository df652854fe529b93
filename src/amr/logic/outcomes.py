"""What a reconcile or HA tick did, as typed values: a severity and a message.

Loops log each outcome at the level its severity names (the values are the ``logging`` levels, so
no mapping is needed), and tests assert on the values instead of matching message prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Severity(IntEnum):
    """How much an outcome matters to an operator; the values are the ``logging`` levels."""

    INFO = 20  # planned work done (a create, an update) or a change of what is watched
    WARNING = 30  # something went wrong and amr dealt with it (a failover, a repair, a cleanup)
    ERROR = 40  # something went wrong and stays wrong until someone or a later tick fixes it


@dataclass(frozen=True)
class Outcome:
    """One line of what a tick did. ``changed_state``: the tick changed a record (a database
    became Succeeded or Failed), so work waiting on it (its cache, the routes) may move on now."""

    severity: Severity
    message: str
    changed_state: bool = True

    def __str__(self) -> str:
        return self.message


def info(message: str) -> Outcome:
    """An outcome of planned work."""
    return Outcome(Severity.INFO, message)


def warning(message: str, changed_state: bool = True) -> Outcome:
    """An outcome of a problem amr dealt with (or keeps dealing with)."""
    return Outcome(Severity.WARNING, message, changed_state)
