"""The authentication phase's RESP framing: request parser and reply scanner, table tests and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amr.logic.dataplane.auth import classify_command, judge_reply
from amr.logic.resp.reply_scanner import Reply, ReplyScanner
from amr.logic.resp.requests import (
    INVALID_BULK_LENGTH,
    INVALID_MBULK_LENGTH,
    TOO_BIG_BULK_COUNT,
    TOO_BIG_INLINE,
    TOO_BIG_MBULK_COUNT,
    TOO_MUCH_BEFORE_AUTH,
    UNAUTHENTICATED_BULK_LENGTH,
    UNAUTHENTICATED_MBULK_LENGTH,
    RequestParser,
    RespProtocolError,
    choose_bulk_refusal,
    parse_engine_int,
    split_inline_args,
)

LIMIT = 16384


def encode(args: list[bytes]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def parse_all(data: bytes, limit: int = LIMIT) -> list[tuple[bytes, ...]]:
    return [c.args for c in RequestParser(limit).feed(data)]


def test_multibulk_and_inline() -> None:
    data = encode([b"AUTH", b"pw"]) + b"PING\r\n" + b"SET a  b\n" + encode([b"GET", b"a"])
    p = RequestParser(LIMIT)
    cmds = p.feed(data)
    assert [c.args for c in cmds] == [(b"AUTH", b"pw"), (b"PING",), (b"SET", b"a", b"b"), (b"GET", b"a")]
    assert b"".join(c.raw for c in cmds) == data
    assert p.buffered == 0


def test_ignored_commands_like_valkey() -> None:
    # Empty inline lines and empty/negative arrays get no reply from the node: not commands.
    assert parse_all(b"\r\n   \r\n*0\r\n*-1\r\nPING\r\n") == [(b"PING",)]


def test_split_anywhere() -> None:
    data = encode([b"HELLO", b"3", b"AUTH", b"default", b"k" * 100]) + b"PING\r\n"
    for cut in range(len(data) + 1):
        p = RequestParser(LIMIT)
        got = [c.args for c in p.feed(data[:cut])] + [c.args for c in p.feed(data[cut:])]
        assert got == [(b"HELLO", b"3", b"AUTH", b"default", b"k" * 100), (b"PING",)]


def test_huge_bulk_length_refused_at_once() -> None:
    with pytest.raises(RespProtocolError) as e:
        RequestParser(LIMIT).feed(b"*1\r\n$1073741824\r\n")
    assert e.value.too_big


def test_huge_array_length_refused_at_once() -> None:
    with pytest.raises(RespProtocolError) as e:
        RequestParser(LIMIT).feed(b"*100000\r\n")
    assert e.value.too_big


def test_long_inline_refused() -> None:
    p = RequestParser(LIMIT)
    p.feed(b"a" * LIMIT)
    with pytest.raises(RespProtocolError) as e:
        p.feed(b"a")
    assert e.value.too_big


@pytest.mark.parametrize(
    "data",
    [b"*x\r\n", b"*1\r\n:5\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$3\r\nabcde", b"*1\r\n$" + b"9" * 40, b"*1\n"],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(RespProtocolError) as e:
        RequestParser(LIMIT).feed(data)
    assert not e.value.too_big
    assert e.value.reply.startswith(b"-ERR Protocol error")


# (input, the error, whether it is a size limit): the engine's text wherever the engine refuses the
# same input; valkey's Tcl suite ("Protocol desync regression test") sends the \x00, *\x00 and $\x00
# lines followed by endless bytes without a line end.
REFUSALS = [
    (b"A" * (LIMIT + 1), TOO_BIG_INLINE, True),
    (b"$\x01" + b"payload" * 3000, TOO_BIG_INLINE, True),
    (b"\x00" + b"payload" * 10, TOO_BIG_INLINE, False),  # a NUL: the engine never ends the line
    (b"$\x00" + b"payload" * 10, TOO_BIG_INLINE, False),
    (b"*\x00" + b"payload" * 10, TOO_BIG_MBULK_COUNT, False),
    (b"*" + b"1" * 40, TOO_BIG_MBULK_COUNT, False),
    (b"*" + b"1" * 40 + b"\r\n", INVALID_MBULK_LENGTH, False),
    (b"*1\n", INVALID_MBULK_LENGTH, False),
    (b"*x\r\n", INVALID_MBULK_LENGTH, False),
    (b"*3000000000\r\n", INVALID_MBULK_LENGTH, False),
    (b"*1\r\n$" + b"9" * 40, TOO_BIG_BULK_COUNT, False),
    (b"*1\r\n$1x\r\n", INVALID_BULK_LENGTH, False),
    (b"*1\r\n$-10\r\n", INVALID_BULK_LENGTH, False),
    (b"*100000\r\n", UNAUTHENTICATED_MBULK_LENGTH, True),
    (b"*1\r\n$1073741824\r\n", INVALID_BULK_LENGTH, True),
    (b"*1\r\n$20000\r\n", UNAUTHENTICATED_BULK_LENGTH, True),
    (b"*2\r\n$5\r\nhello\r\n$16380\r\n", TOO_MUCH_BEFORE_AUTH, True),
]


@pytest.mark.parametrize("data, error, too_big", REFUSALS)
def test_refusals_answer_the_engines_text(data: bytes, error: str, too_big: bool) -> None:
    p = RequestParser(LIMIT)
    with pytest.raises(RespProtocolError) as e:
        for i in range(0, len(data), 1000):  # as it arrives, in pieces
            p.feed(data[i : i + 1000])
    assert str(e.value) == error and e.value.too_big is too_big
    assert e.value.reply == b"-ERR " + error.encode() + b"\r\n"


@pytest.mark.parametrize(
    "length, error",
    [
        (16000, TOO_MUCH_BEFORE_AUTH),  # the engine would read it: only the phase's budget refuses
        (16384, TOO_MUCH_BEFORE_AUTH),
        (16385, UNAUTHENTICATED_BULK_LENGTH),
        (512 * 1024**2, UNAUTHENTICATED_BULK_LENGTH),
        (512 * 1024**2 + 1, INVALID_BULK_LENGTH),
    ],
)
def test_bulk_refusal_by_length(length: int, error: str) -> None:
    assert choose_bulk_refusal(length) == error


def test_take_rest() -> None:
    p = RequestParser(LIMIT)
    assert p.feed(b"PING\r\n*2\r\n$3\r\nGE") != []
    assert p.take_rest() == b"*2\r\n$3\r\nGE"
    assert p.buffered == 0
    assert [c.args for c in p.feed(b"PING\r\n")] == [(b"PING",)]


def scan(data: bytes) -> list[tuple[bytes, bytes]]:
    return [(r.kind, r.head) for r in ReplyScanner().feed(data)]


def test_reply_scanner_resp2_and_resp3() -> None:
    stream = (
        b"+OK\r\n"
        b"-WRONGPASS invalid username-password pair\r\n"
        b"$5\r\nhello\r\n"
        b"$-1\r\n"
        b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n"
        b"*-1\r\n"
        b"%2\r\n+server\r\n+valkey\r\n+proto\r\n:3\r\n"
        b">3\r\n+message\r\n+ch\r\n+x\r\n"  # push: not a reply
        b"|1\r\n+ttl\r\n:3\r\n=5\r\ntxt:x\r\n"  # attribute, then the reply
        b"_\r\n,1.5\r\n#t\r\n(12\r\n!3\r\nERR\r\n~1\r\n+a\r\n"
    )
    kinds = [k for k, _ in scan(stream)]
    assert kinds == [b"+", b"-", b"$", b"$", b"*", b"*", b"%", b"=", b"_", b",", b"#", b"(", b"!", b"~"]
    split = ReplyScanner()
    got: list[bytes] = []
    for i in range(len(stream)):
        got.extend(r.kind for r in split.feed(stream[i : i + 1]))
    assert got == kinds


def test_reply_error_code_never_includes_text() -> None:
    (r,) = ReplyScanner().feed(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
    assert r.is_error and r.error_code == "WRONGPASS"


def test_classify_and_judge() -> None:
    assert classify_command((b"auth", b"x")) == "auth"
    assert classify_command((b"HELLO", b"3", b"AUTH", b"default", b"x")) == "auth"
    assert classify_command((b"HELLO", b"3")) == "neutral"
    assert classify_command((b"reset",)) == "neutral"
    assert classify_command((b"PING",)) == "other"
    ok, err = Reply(b"+", b"+OK"), Reply(b"-", b"-NOAUTH Authentication required.")
    assert judge_reply("auth", ok) == "success"
    assert judge_reply("auth", Reply(b"%", b"%7")) == "success"
    assert judge_reply("auth", err) == "failure"
    assert judge_reply("other", err) == "pending"
    assert judge_reply("other", Reply(b"+", b"+PONG")) == "not_required"
    # RESET/HELLO succeed without a password even where one is required: they prove nothing.
    assert judge_reply("neutral", Reply(b"+", b"+RESET")) == "pending"


# -- fuzzing ---------------------------------------------------------------------------------------

arg = st.binary(min_size=0, max_size=300)
command = st.lists(arg, min_size=1, max_size=6)
inline_word = st.binary(min_size=1, max_size=20).filter(
    lambda b: not any(c in b for c in b" \t\r\n\x0b\x0c\"'\x00\xff") and not b.startswith(b"*")
)
inline = st.lists(inline_word, min_size=1, max_size=5)


def split_points(data: bytes, draw_cuts: list[int]) -> list[bytes]:
    cuts = sorted({c % (len(data) + 1) for c in draw_cuts})
    parts, last = [], 0
    for c in cuts:
        parts.append(data[last:c])
        last = c
    parts.append(data[last:])
    return parts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(command.map(lambda a: ("m", a)), inline.map(lambda a: ("i", a))), max_size=12),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_valid_streams_parse_the_same_however_split(
    cmds: list[tuple[str, list[bytes]]], cuts: list[int]
) -> None:
    data = b"".join(encode(a) if kind == "m" else b" ".join(a) + b"\r\n" for kind, a in cmds)
    expected = [tuple(a) for _, a in cmds]
    p = RequestParser(LIMIT)
    got: list[tuple[bytes, ...]] = []
    raw = b""
    for part in split_points(data, cuts):
        for c in p.feed(part):
            got.append(c.args)
            raw += c.raw
        assert p.buffered <= LIMIT
    assert got == expected
    assert raw == data


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=20), st.integers(min_value=64, max_value=4096))
def test_random_bytes_only_raise_our_error_and_stay_bounded(chunks: list[bytes], limit: int) -> None:
    p = RequestParser(limit)
    for chunk in chunks:
        try:
            p.feed(chunk)
        except RespProtocolError:
            return
        assert p.buffered <= p.limit
        assert len(p._buf) <= p.limit


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"*", b"$", b"1", b"9", b"\r\n", b"\r", b"\n", b"-", b"a", b"0"]), max_size=200
    ),
    st.integers(min_value=32, max_value=512),
)
def test_resp_like_noise_stays_bounded(tokens: list[bytes], limit: int) -> None:
    p = RequestParser(limit)
    for t in tokens:
        try:
            p.feed(t)
        except RespProtocolError:
            return
        assert len(p._buf) <= p.limit


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_scanner_random_bytes_only_raise_our_error(chunks: list[bytes]) -> None:
    s = ReplyScanner()
    for chunk in chunks:
        try:
            s.feed(chunk)
        except RespProtocolError:
            return


def quote_like_valkey(arg: bytes) -> bytes:
    """An argument in the form valkey's sdscatrepr writes (and redis-cli sends): double quotes,
    escapes for quotes, backslashes, control and non-ASCII bytes."""
    out = bytearray(b'"')
    for c in arg:
        if c in b'\\"':
            out += b"\\" + bytes([c])
        elif c == 10:
            out += b"\\n"
        elif c == 13:
            out += b"\\r"
        elif 32 <= c < 127:
            out.append(c)
        else:
            out += b"\\x%02x" % c
    return bytes(out + b'"')


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.sampled_from([b" ", b"\t", b" \x0b "]))
def test_quoted_arguments_split_back_to_themselves(args: list[bytes], sep: bytes) -> None:
    line = sep.join(quote_like_valkey(a) for a in args)
    assert split_inline_args(line) == args
    [cmd] = RequestParser(LIMIT).feed(line + b"\r\n")
    assert list(cmd.args) == args


@pytest.mark.parametrize(
    ("text", "value"),
    [(b"0", 0), (b"1", 1), (b"-1", -1), (b"10", 10), (b"9223372036854775807", 2**63 - 1),
     (b"-9223372036854775808", -(2**63)), (b"", None), (b"-", None), (b"-0", None), (b"01", None),
     (b"+1", None), (b" 1", None), (b"1 ", None), (b"9223372036854775808", None), (b"1" * 21, None),
     (b"\xd9\xa1", None)],
)  # fmt: skip
def test_header_numbers_are_read_like_string2ll(text: bytes, value: int | None) -> None:
    assert parse_engine_int(text) == value
