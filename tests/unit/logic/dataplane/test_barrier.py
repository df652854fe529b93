"""Finding the gateway's barriers in a spliced connection's node replies
(``amr.logic.dataplane.barrier``), as the engine answers them in each state the connection can be in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amr.logic.dataplane.barrier import PREFIX_LEN, BarrierWatch, Found, parse_id_reply

PREFIX = b"0123456789abcdef0123"


def confirmation(token: bytes, resp3: bool = False, count: int = 0) -> bytes:
    """The engine's answer to UNSUBSCRIBE <token> (measured on valkey 8.1, in every mode)."""
    head = b">3" if resp3 else b"*3"
    return head + b"\r\n$11\r\nunsubscribe\r\n$%d\r\n%s\r\n:%d\r\n" % (len(token), token, count)


def token(serial: int) -> bytes:
    return PREFIX + b"%08x" % serial


def test_a_barrier_is_an_unsubscribe_from_a_token_channel() -> None:
    watch = BarrierWatch(PREFIX)
    serial, command = watch.add()
    assert serial == 1 and len(PREFIX) == PREFIX_LEN
    assert command == b"*2\r\n$11\r\nUNSUBSCRIBE\r\n$28\r\n" + token(1) + b"\r\n"


@pytest.mark.parametrize(
    "before, reply, after, found",
    [
        # Replies before it pass; the confirmation is dropped; what follows waits.
        (b"+OK\r\n$1\r\nx\r\n", confirmation(token(1)), b"+PONG\r\n", Found(1, False, 0)),
        # RESP3: a push.
        (b"_\r\n", confirmation(token(1), resp3=True), b"", Found(1, True, 0)),
        # RESP2 pub/sub mode: the count says so.
        (
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n",
            confirmation(token(1), count=2),
            b"",
            Found(1, False, 2),
        ),
        # Inside EXEC's reply: one element of its array.
        (b"+QUEUED\r\n*2\r\n", confirmation(token(1)), b"$-1\r\n", Found(1, False, 0)),
    ],
)
def test_the_confirmation_is_found_in_every_state(
    before: bytes, reply: bytes, after: bytes, found: Found
) -> None:
    watch = BarrierWatch(PREFIX)
    watch.add()
    pieces, rest = watch.feed(before + reply + after)
    assert pieces == [before, found] and rest == after
    assert not watch.pending


def test_split_anywhere_it_is_found_once_the_rest_arrives() -> None:
    stream = b"$5\r\nhello\r\n" + confirmation(token(1), count=12) + b":7\r\n"
    for cut in range(1, len(stream)):
        watch = BarrierWatch(PREFIX)
        watch.add()
        pieces, after = watch.feed(stream[:cut])
        if watch.pending:
            more, after = watch.feed(stream[cut:])
            pieces += more
        else:
            after += stream[cut:]  # found already: the rest is the caller's
        assert b"".join(p for p in pieces if isinstance(p, bytes)) == b"$5\r\nhello\r\n", cut
        assert [p for p in pieces if isinstance(p, Found)] == [Found(1, False, 12)]
        assert after == b":7\r\n"


def test_a_barrier_the_engine_never_answered_is_dropped_with_a_later_one() -> None:
    watch = BarrierWatch(PREFIX)
    watch.add()  # inside a MULTI that was DISCARDed
    watch.add()
    pieces, rest = watch.feed(b"+OK\r\n" + confirmation(token(2)))
    assert pieces == [b"+OK\r\n", Found(2, False, 0)] and rest == b""
    assert not watch.pending


def test_a_token_that_is_not_in_flight_is_data() -> None:
    watch = BarrierWatch(PREFIX)
    watch.add()
    stale = confirmation(token(9))
    pieces, rest = watch.feed(stale)
    assert b"".join(p for p in pieces if isinstance(p, bytes)) + watch.tail == stale
    assert watch.pending


@given(st.binary(max_size=300))
def test_replies_without_a_confirmation_pass_whole(data: bytes) -> None:
    watch = BarrierWatch(PREFIX)
    watch.add()
    pieces, rest = watch.feed(data)
    assert b"".join(p for p in pieces if isinstance(p, bytes)) + watch.tail == data and rest == b""
    assert len(watch.tail) < 60


@pytest.mark.parametrize(
    "buf, parsed",
    [
        (b":42\r\n+OK\r\n", (42, 5)),
        (b":4", None),
        (b"-NOPERM no\r\n", (None, 12)),
        (b"+OK\r\n", (None, 0)),
    ],
)
def test_the_connection_id_is_read_from_the_first_reply(
    buf: bytes, parsed: tuple[int | None, int] | None
) -> None:
    assert parse_id_reply(buf) == parsed
