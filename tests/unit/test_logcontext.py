"""Log context: binding fields per request/connection/task, and the line format that prints them."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from amr.errors import ConfigError
from amr.logcontext import (
    ContextFormatter,
    LogContextFilter,
    bind_log_context,
    current_log_context,
    log_context,
    log_context_for,
    log_line_format,
    parse_log_level,
    render_log_fields,
)
from amr.testing.waits import wait_until_async


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through amr's formatter and filter into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ContextFormatter(log_line_format("api")))
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("amr.test_logcontext")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def record(**fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("amr.x", logging.INFO, __file__, 1, "message", None, None)
    for name, value in fields.items():
        setattr(rec, name, value)
    return rec


def test_a_line_without_context_is_the_plain_format(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.warning("port %s busy", 10000)
    line = stream.getvalue().rstrip("\n")
    assert line.endswith(" api WARNING amr.test_logcontext: port 10000 busy")


def test_bound_fields_are_printed_and_unbound_after_the_block(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with log_context(request_id="req-1"):
        with log_context(database="/subscriptions/s/db"):
            logger.info("inner")
        logger.info("outer")
    logger.info("after")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("inner [request_id=req-1 database=/subscriptions/s/db]")
    assert lines[1].endswith("outer [request_id=req-1]")
    assert lines[2].endswith("after")
    assert current_log_context() == {}


def test_extra_wins_over_a_bound_field(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    with log_context(node="n-bound"):
        logger.info("restarted", extra={"node": "n-extra"})
    assert stream.getvalue().rstrip().endswith("restarted [node=n-extra]")


def test_empty_values_bind_nothing() -> None:
    with log_context(request_id="", database=None):
        assert current_log_context() == {}


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="password"):
        with log_context(password="x"):
            pass


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("abc-123", "request_id=abc-123"),
        ("two words", 'request_id="two words"'),
        ("x\nFAKE ERROR line", 'request_id="x\\nFAKE ERROR line"'),
        ('q"]', 'request_id="q\\"]"'),
        ("a" * 500, "request_id=" + "a" * 200),
    ],
)
def test_values_cannot_forge_fields_or_lines(value: str, printed: str) -> None:
    assert render_log_fields(record(request_id=value)) == printed


def test_fields_print_in_a_fixed_order() -> None:
    rec = record(client="1.2.3.4:5", database="db", request_id="r")
    assert render_log_fields(rec) == "request_id=r database=db client=1.2.3.4:5"


def test_exceptions_follow_the_line_with_its_fields(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    with log_context(database="db"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("tick failed")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("tick failed [database=db]")
    assert rest[0] == "Traceback (most recent call last):"


def test_tasks_inherit_the_binding_of_their_creator_and_keep_their_own() -> None:
    seen: dict[str, object] = {}

    async def child(name: str) -> None:
        await asyncio.sleep(0)
        seen[name] = dict(current_log_context())

    async def connection() -> None:
        # As the gateway does per connection: bind in the task, no unbinding needed.
        bind_log_context(database="db-a", client="1.2.3.4:5")
        await asyncio.get_running_loop().create_task(child("spawned"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            loop.create_task(connection()),
            loop.create_task(child("settle"), context=log_context_for(database="db-b")),
        )
        seen["main"] = dict(current_log_context())

    asyncio.run(main())
    assert seen == {
        "spawned": {"database": "db-a", "client": "1.2.3.4:5"},
        "settle": {"database": "db-b"},
        "main": {},
    }


def test_protocol_callbacks_run_with_the_binding_of_the_task_that_made_the_transport() -> None:
    """The gateway binds a connection's fields in the task that accepts it; the transport's callbacks
    (data_received and what it schedules) must see them, on uvloop as on asyncio."""
    import socket

    import uvloop

    seen: list[dict[str, str]] = []

    class Proto(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            seen.append(dict(current_log_context()))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()

        async def accept() -> None:
            bind_log_context(database="db-c")
            await loop.connect_accepted_socket(Proto, ours)

        await loop.create_task(accept())
        theirs.sendall(b"PING\r\n")
        await wait_until_async(lambda: seen, 1, what="the protocol callback")
        theirs.close()

    uvloop.run(main())
    assert seen and seen[0] == {"database": "db-c"}


def test_log_levels() -> None:
    assert parse_log_level("debug") == logging.DEBUG
    assert parse_log_level(" WARNING ") == logging.WARNING
    with pytest.raises(ConfigError, match="verbose"):
        parse_log_level("verbose")
