"""Log context: the fields a log line is about (``request_id``, ``database``, ``node``, ``client``),
bound once where a request, a connection or a reconcile step begins instead of passed to every call.

The API binds ``request_id`` per request, the gateway ``database`` and ``client`` per connection, the
reconciler ``database`` per settle. Binding lives in a ``ContextVar``, so it follows asyncio tasks
(each task starts with a copy of its creator's context) and the protocol callbacks of a transport
created inside that task. ``LogContextFilter`` copies the bound fields onto each record, where
``ContextFormatter`` prints them; a field passed with ``extra=`` wins over a bound one.

``configure_logging`` is the one logging set-up of every amr process (api, gateway, ha): it sits at
the bottom layer so that an entry point run with ``python -m`` below amr.app (``amr.gateway``) uses
the same one.

Bind identifiers only (ids, names, addresses): never keys, passwords or tokens.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import TextIO

from amr.errors import ConfigError

LOG_FIELDS: tuple[str, ...] = ("request_id", "database", "node", "client", "source", "path")
"""The record attributes a log line prints when they are set, in this order."""

# A client picks its request id: a value is cut to this many characters before it is printed.
MAX_FIELD_CHARS = 200

_EMPTY: Mapping[str, str] = MappingProxyType({})

# A ContextVar must be created once, at import: the variable is a key, the values live in each
# task's context, so this holds no state of its own.
_BOUND: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("amr_log_context", default=_EMPTY)


def _merged(fields: Mapping[str, object]) -> Mapping[str, str]:
    unknown = set(fields) - set(LOG_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields {sorted(unknown)}; known: {', '.join(LOG_FIELDS)}")
    merged = dict(_BOUND.get())
    # An empty value (no request id sent) binds nothing rather than printing "request_id=".
    merged.update({k: str(v) for k, v in fields.items() if v is not None and str(v) != ""})
    return MappingProxyType(merged)


def bind_log_context(**fields: object) -> None:
    """Bind ``fields`` in the current context until it ends: for the body of a task or a protocol
    callback, whose context is its own copy. Elsewhere use ``log_context``, which unbinds."""
    _BOUND.set(_merged(fields))


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind ``fields`` for the duration of the ``with`` block (and the tasks it creates)."""
    token = _BOUND.set(_merged(fields))
    try:
        yield
    finally:
        _BOUND.reset(token)


def log_context_for(**fields: object) -> contextvars.Context:
    """A copy of the current context with ``fields`` bound, to start a task in
    (``loop.create_task(coro, context=log_context_for(database=...))``)."""
    context = contextvars.copy_context()
    context.run(bind_log_context, **fields)
    return context


def current_log_context() -> Mapping[str, str]:
    """The fields bound in the current context."""
    return _BOUND.get()


class LogContextFilter(logging.Filter):
    """A handler filter that copies the bound fields onto every record (unless the record already
    has that field from ``extra=``); it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _BOUND.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _printable(value: object) -> str:
    text = str(value)[:MAX_FIELD_CHARS]
    # Quote anything a reader (or a log parser) could mistake for another field or another line.
    if text and all(c.isprintable() and not c.isspace() and c not in '"[]=' for c in text):
        return text
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def render_log_fields(record: logging.LogRecord) -> str:
    """``name=value`` for each of ``LOG_FIELDS`` set on ``record``, space-separated; "" if none.
    Values with spaces, quotes, brackets or control characters are quoted and escaped, so a
    client-chosen request id cannot forge a log line."""
    parts = []
    for name in LOG_FIELDS:
        value = getattr(record, name, None)
        if value is not None and value != "":
            parts.append(f"{name}={_printable(value)}")
    return " ".join(parts)


class ContextFormatter(logging.Formatter):
    """The message line followed by the record's context fields in brackets, when it has any:
    ``... amr.reconciler.loop: reconcile: ... [database=/subscriptions/...]``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = render_log_fields(record)
        return f"{line} [{fields}]" if fields else line


def parse_log_level(level: str) -> int:
    """The logging level named ``level`` (DEBUG, INFO, WARNING, ERROR, CRITICAL; any case)."""
    levels = logging.getLevelNamesMapping()
    name = level.strip().upper()
    if name not in levels or name == "NOTSET":
        raise ConfigError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return levels[name]


def log_line_format(process: str) -> str:
    """The line format of ``process``'s log: time, process, level, logger, message."""
    return f"%(asctime)s {process.replace('%', '%%')} %(levelname)s %(name)s: %(message)s"


def configure_logging(process: str, level: str, stream: TextIO | None = None) -> None:
    """Send this process's log records to ``stream`` (stderr, which the supervisor writes to
    ``logs/<process>.log``) at ``level`` and above, one line each with the bound context fields.
    Like ``logging.basicConfig``, it leaves a root logger that already has handlers as it is."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(ContextFormatter(log_line_format(process)))
    handler.addFilter(LogContextFilter())
    logging.basicConfig(level=parse_log_level(level), handlers=[handler])
