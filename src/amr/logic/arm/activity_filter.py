"""The activity log query's ``$filter``, ``$select`` and ``$skipToken``, as Azure documents them.

``$filter`` is a conjunction of conditions: ``eventTimestamp ge '<start>'`` (required),
``eventTimestamp le '<end>'`` (default: now), and at most one each of ``resourceGroupName``,
``resourceUri`` (or ``resourceId``, as az sends it), ``resourceProvider``, ``correlationId``,
``status``, ``caller`` compared with ``eq``; ``eventChannels`` (Azure's tenant-level form) is
accepted and changes nothing. Values are quoted (``'...'``, a quote doubled inside) or bare words,
as az sends timestamps. Every refusal says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from amr.errors import ArmError
from amr.logic.arm.activity import render_event_time
from amr.model.activity import ActivityQuery

_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|([^\s']+))")
_EQ_FIELDS = {
    "resourcegroupname": "resource_group",
    "resourceuri": "resource_id",
    "resourceid": "resource_id",
    "resourceprovider": "resource_provider",
    "correlationid": "correlation_id",
    "status": "status",
    "caller": "caller",
}
_IGNORED_FIELDS = {"eventchannels"}
_EXAMPLE = "eventTimestamp ge '2026-01-01T00:00:00Z' and eventTimestamp le '2026-01-02T00:00:00Z'"
_FIELDS_TEXT = (
    "eventTimestamp, resourceGroupName, resourceUri, resourceProvider, correlationId, status, caller"
)

# Azure's EventData property names that $select may name (its list, and the ones its own examples use).
SELECTABLE = (
    "authorization",
    "caller",
    "category",
    "claims",
    "correlationId",
    "description",
    "eventDataId",
    "eventName",
    "eventTimestamp",
    "httpRequest",
    "id",
    "level",
    "operationId",
    "operationName",
    "properties",
    "resourceGroupName",
    "resourceId",
    "resourceProviderName",
    "resourceType",
    "status",
    "subStatus",
    "submissionTimestamp",
    "subscriptionId",
    "tenantId",
)
_SELECTABLE = {name.lower(): name for name in SELECTABLE}


def _bad(message: str, target: str = "$filter") -> ArmError:
    return ArmError("BadRequest", message, 400, target=target)


def _tokens(text: str) -> list[str | tuple[str]]:
    """Bare words as str, quoted values as 1-tuples (so that a quoted 'and' is a value)."""
    out: list[str | tuple[str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _bad(
                f"The $filter has an unterminated quote at character {pos + 1}: close each value with '."
            )
        out.append((m.group(1).replace("''", "'"),) if m.group(1) is not None else m.group(2))
        pos = m.end()
    return out


def parse_event_time(text: str, what: str = "eventTimestamp") -> datetime:
    """An ISO 8601 time as Azure and az write them (``Z``, an offset, or none meaning UTC; up to 7
    fractional digits)."""
    raw = text.strip()
    # Azure writes 7 fractional digits (.NET ticks); Python reads at most 6.
    raw = re.sub(r"(\.\d{6})\d+", r"\1", raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad(
            f"The {what} value '{text}' is not an ISO 8601 time; write it like '2026-01-01T00:00:00Z'."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_activity_filter(text: str | None, now: datetime) -> ActivityQuery:
    """The query a ``$filter`` asks for; ArmError 400 (BadRequest) with what to fix when it does not
    parse, names a field the activity log has not, or lacks its start time."""
    if not text or not text.strip():
        raise _bad(
            f"The $filter parameter is required and must give at least the start time: $filter={_EXAMPLE}."
        )
    tokens = _tokens(text)
    start: datetime | None = None
    end: datetime | None = None
    matches: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        if i:
            joiner = tokens[i]
            if not isinstance(joiner, str) or joiner.lower() != "and":
                shown = joiner if isinstance(joiner, str) else f"'{joiner[0]}'"
                raise _bad(
                    f"The $filter joins conditions with 'and' only; found '{shown}' instead. Example: {_EXAMPLE}."
                )
            i += 1
        if i + 3 > len(tokens):
            raise _bad(
                f"The $filter ends with an incomplete condition; each is <field> <operator> '<value>'. Example: {_EXAMPLE}."
            )
        name, op, value = tokens[i : i + 3]
        i += 3
        if not isinstance(name, str) or not isinstance(op, str):
            raise _bad(f"Each $filter condition is <field> <operator> '<value>'; fields are {_FIELDS_TEXT}.")
        field, op = name.lower(), op.lower()
        raw = value[0] if isinstance(value, tuple) else value
        if field == "eventtimestamp":
            if op not in ("ge", "le"):
                raise _bad(f"eventTimestamp takes 'ge' (start) or 'le' (end), not '{op}'.")
            if (start if op == "ge" else end) is not None:
                raise _bad(f"The $filter gives 'eventTimestamp {op}' twice; give it once.")
            moment = parse_event_time(raw)
            start, end = (moment, end) if op == "ge" else (start, moment)
        elif field in _EQ_FIELDS or field in _IGNORED_FIELDS:
            if op != "eq":
                raise _bad(f"{name} is compared with 'eq' only, not '{op}'.")
            if not raw.strip():
                raise _bad(
                    f"The $filter gives {name} an empty value; give the value to match or leave the condition out."
                )
            if field in _IGNORED_FIELDS:
                continue
            key = _EQ_FIELDS[field]
            if key in matches:
                raise _bad(f"The $filter gives {name} twice; give it once.")
            matches[key] = raw.strip()
        else:
            raise _bad(f"The $filter field '{name}' is not one the activity log has; use {_FIELDS_TEXT}.")
    if start is None:
        raise _bad(f"The $filter must give the start time (eventTimestamp ge '<time>'). Example: {_EXAMPLE}.")
    end = end or now
    if start > end:
        raise _bad("The $filter's start time (eventTimestamp ge) is after its end time (eventTimestamp le).")
    return ActivityQuery(start=render_event_time(start), end=render_event_time(end), **matches)


def parse_activity_select(text: str | None) -> tuple[str, ...] | None:
    """The EventData properties a ``$select`` asks for, in Azure's spelling (None: all of them)."""
    if text is None or not text.strip():
        return None
    names = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        known = _SELECTABLE.get(name.lower())
        if known is None:
            raise _bad(f"The $select property '{name}' is not an activity log property; use {', '.join(SELECTABLE)}.",
                       "$select")  # fmt: skip
        if known not in names:
            names.append(known)
    return tuple(names) or None


def render_skip_token(event_timestamp: str, seq: int) -> str:
    """The opaque ``$skipToken`` of the page that goes on after an entry (its time and sequence)."""
    return base64.urlsafe_b64encode(f"{event_timestamp}|{seq}".encode()).decode().rstrip("=")


def parse_skip_token(token: str) -> tuple[str, int]:
    """The entry a ``$skipToken`` goes on after (its time and sequence number)."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    stamp, sep, seq = text.partition("|")
    if not sep or not seq.isdigit() or len(stamp) != len("2026-01-01T00:00:00.000000Z"):
        raise _bad(
            "The $skipToken is not one this API gave; follow nextLink as it was returned.", "$skipToken"
        )
    return stamp, int(seq)


_OFFSET = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_offset(text: str) -> timedelta:
    """az's ``--offset``: a length of time written ``##d##h##m`` (``6h``, ``1d12h``, ``30m``)."""
    m = _OFFSET.match(text.strip().lower())
    if m is None or not any(m.groups()):
        raise ValueError(f"'{text}' is not a time offset; write it like 6h, 1d, 1d12h or 30m")
    days, hours, minutes = (int(g or 0) for g in m.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def render_activity_filter(
    start: datetime, end: datetime, matches: Sequence[tuple[str, str | None]] = ()
) -> str:
    """The ``$filter`` of a time range and the ``(field, value)`` matches that have a value, as
    ``parse_activity_filter`` reads it."""
    parts = [
        f"eventTimestamp ge {_quoted(render_event_time(start))}",
        f"eventTimestamp le {_quoted(render_event_time(end))}",
    ]
    parts += [f"{name} eq {_quoted(value)}" for name, value in matches if value]
    return " and ".join(parts)
