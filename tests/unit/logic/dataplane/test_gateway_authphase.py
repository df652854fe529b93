"""The authentication phase as a whole (``amr.logic.dataplane.authphase``): table tests and fuzzing
with random command and reply streams, split anywhere and interleaved."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amr.logic.dataplane.auth import REFUSED_AUTH, classify_command
from amr.logic.dataplane.authphase import INTERNAL_USER_REASON, AuthPhase, AuthVerdict, PendingLimitError
from amr.logic.resp.reply_scanner import REPLY_LINE_MAX
from amr.logic.resp.requests import INLINE_MAX, RequestParser, RespProtocolError

LIMIT = 16384


def encode(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def answer(phase: AuthPhase, *replies: bytes) -> tuple[list[AuthVerdict], bytes]:
    """Feed the node's replies one at a time, as the gateway does, releasing what each one lets go:
    the verdicts and the bytes forwarded after them."""
    verdicts: list[AuthVerdict] = []
    forwarded = b""
    for reply in replies:
        verdicts += phase.node_data(reply)
        if not phase.done:
            forwarded += phase.take_held()
    return verdicts, forwarded


def test_pipelined_auth_then_commands_wait_for_its_verdict() -> None:
    phase = AuthPhase(LIMIT)
    partial = b"*2\r\n$3\r\nGET\r\n$1\r"
    auth = encode(b"AUTH", b"pw")
    after = encode(b"SET", b"k", b"v") + b"GET k\r\n"
    data = auth + after + partial
    assert phase.client_data(data) == auth
    assert phase.held == len(data)
    assert phase.node_data(b"+O") == []
    assert phase.node_data(b"K\r\n") == [AuthVerdict("success")]
    assert phase.done and phase.in_flight == 0
    # The splice (or the router) takes what waited behind the AUTH, then the incomplete command.
    assert phase.take_held() == after
    assert phase.take_rest() == partial
    assert phase.node_data(b"-ERR whatever\r\n") == []


def test_failures_then_success_and_neutral_commands() -> None:
    phase = AuthPhase(LIMIT)
    ping, hello = encode(b"PING"), encode(b"HELLO", b"3")
    bad, good = encode(b"AUTH", b"x"), encode(b"AUTH", b"y")
    assert phase.client_data(ping + hello + bad + good) == ping
    verdicts, forwarded = answer(
        phase,
        b"-NOAUTH Authentication required.\r\n",
        b"-NOAUTH HELLO must be called with the client already authenticated\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    assert verdicts == [AuthVerdict("failure", "WRONGPASS")]
    assert forwarded == hello + bad + good
    assert not phase.done
    assert phase.node_data(b"+OK\r\n") == [AuthVerdict("success")]


def test_no_password_needed() -> None:
    phase = AuthPhase(LIMIT)
    phase.client_data(b"RESET\r\nPING\r\n")
    assert phase.node_data(b"+RESET\r\n+PONG\r\n") == [AuthVerdict("not_required")]


def test_pending_and_held_bytes_count_against_the_limit() -> None:
    phase = AuthPhase(1024)
    phase.client_data(b"JUNK xxxx\r\n" * 50)  # 550 bytes: one forwarded, unanswered, the rest held
    try:
        phase.client_data(b"JUNK xxxx\r\n" * 50)
    except PendingLimitError as e:
        assert e.too_big
    else:
        raise AssertionError("over the limit")
    phase = AuthPhase(1024)
    phase.client_data(b"JUNK xxxx\r\n" * 50)
    answer(phase, *[b"-NOAUTH Authentication required.\r\n"] * 50)  # answered: no longer pending
    assert phase.held == 0
    phase.client_data(b"JUNK xxxx\r\n" * 50)


def test_pipelined_guesses_reach_the_engine_one_verdict_at_a_time() -> None:
    phase = AuthPhase(LIMIT)
    guesses = [encode(b"AUTH", b"guess%d" % i) for i in range(5)]
    assert phase.client_data(b"".join(guesses)) == guesses[0]
    for i in range(1, 5):
        verdicts, forwarded = answer(phase, b"-WRONGPASS invalid\r\n")
        assert verdicts == [AuthVerdict("failure", "WRONGPASS")]
        assert forwarded == guesses[i]  # the next guess only after the previous one was counted


# Inline forms the engine reads as these commands (valkey's sdssplitargs), and what the phase makes
# of them: quoting, escaping or case never hides a command from it.
INLINE_FORMS = [
    (b'"RESET"\r\n', (b"RESET",), "neutral"),
    (b"'reset'\r\n", (b"reset",), "neutral"),
    (b'"\\x52ESET"\r\n', (b"RESET",), "neutral"),
    (b're"set"\n', (b"reset",), "neutral"),
    (b'"AUTH" guess\r\n', (b"AUTH", b"guess"), "auth"),
    (b"'AUTH' 'gu ess'\r\n", (b"AUTH", b"gu ess"), "auth"),
    (b'"\\x41UTH" "g\\"x"\r\n', (b"AUTH", b'g"x'), "auth"),
    (b"  \x0b\x0cAUTH\tguess \r\n", (b"AUTH", b"guess"), "auth"),
    (b"AUTH\x0bguess\r\n", (b"AUTH\x0bguess",), "other"),  # \v ends no argument
    (b"AUTH guess\rx\r\n", (b"AUTH", b"guess", b"x"), "auth"),  # a lone CR separates
    (b'HELLO 3 "AUTH" default pw\r\n', (b"HELLO", b"3", b"AUTH", b"default", b"pw"), "auth"),
    (b'"AUTH" "amr-admin" pw\r\n', (b"AUTH", b"amr-admin", b"pw"), "internal"),
    (b"AUTH AMR-Gateway pw\r\n", (b"AUTH", b"AMR-Gateway", b"pw"), "internal"),
    (b'hello 3 auth "\\x61mr-ha" pw\r\n', (b"hello", b"3", b"auth", b"amr-ha", b"pw"), "internal"),
    (b'""\r\n', (b"",), "other"),
]


@pytest.mark.parametrize(("line", "args", "kind"), INLINE_FORMS)
def test_inline_forms_are_read_as_the_engine_reads_them(
    line: bytes, args: tuple[bytes, ...], kind: str
) -> None:
    [cmd] = RequestParser(LIMIT).feed(line)
    assert cmd.args == args
    assert classify_command(cmd.args) == kind


def test_quoted_reset_then_a_command_is_never_judged_no_password_required() -> None:
    # The review's attack: RESET's +RESET answer proves nothing; the next command gets NOAUTH.
    phase = AuthPhase(LIMIT)
    phase.client_data(b'"RESET"\r\n')
    assert phase.node_data(b"+RESET\r\n") == []
    assert not phase.done


@pytest.mark.parametrize(
    "command",
    [
        encode(b"AUTH", b"amr-admin", b"the-right-password"),
        encode(b"AUTH", b"AMR-ADMIN", b"pw"),
        b"AUTH amr-gateway pw\r\n",
        encode(b"HELLO", b"3", b"AUTH", b"amr-replication", b"pw"),
        encode(b"HELLO", b"3", b"SETNAME", b"c", b"AUTH", b"amr-ha", b"pw"),
        encode(b"HELLO", b"3", b"AUTH", b"default", b"k", b"AUTH", b"amr-admin", b"pw"),
    ],
)
def test_internal_users_never_reach_the_engine(command: bytes) -> None:
    phase = AuthPhase(LIMIT)
    forwarded = phase.client_data(command)
    assert forwarded == REFUSED_AUTH
    assert b"amr-" not in forwarded.lower() and b"pw" not in forwarded
    # Whatever the engine answers, it is a failure, with its own reason in the audit log.
    assert phase.node_data(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n") == [
        AuthVerdict("failure", INTERNAL_USER_REASON)
    ]
    phase = AuthPhase(LIMIT)
    phase.client_data(command)
    assert phase.node_data(b"+OK\r\n") == [AuthVerdict("failure", INTERNAL_USER_REASON)]
    assert not phase.done and phase.replay == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'"RESET\r\n', "unbalanced quotes"),
        (b'"RE"SET\r\n', "unbalanced quotes"),
        (b"'AUTH\\' x\r\n", "unbalanced quotes"),
        # A NUL: the engine never ends the line, and says so once 64 KiB have come.
        (b"AUTH x\x00y\r\n", "too big inline request"),
        (b"AUTH \x00", "too big inline request"),
        (b"\x00payloadpayload", "too big inline request"),  # valkey's protocol desync test #1
        (b"AU\xffTH x\r\n", "0xFF byte"),  # valkey 8.1 drops the 0xFF and runs AUTH
        (b'"RE\xffSET"', "0xFF byte"),
        (b"*01\r\n$4\r\nPING\r\n", "invalid multibulk length"),
        (b"*+1\r\n$4\r\nPING\r\n", "invalid multibulk length"),
        (b"*2147483648\r\n", "invalid multibulk length"),
        (b"*1\r\n$04\r\nPING\r\n", "invalid bulk length"),
        (b"*1\r\n$-0\r\n", "invalid bulk length"),
        (b"*1\r\n$4\r\nPINGxx", "must end with CRLF"),
        (b"*1\rx$4\r\nPING\r\n", "invalid multibulk length"),
    ],
)
def test_what_cannot_be_read_as_the_engine_would_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(RespProtocolError, match=message):
        AuthPhase(LIMIT).client_data(data)


def test_inline_lines_over_the_engine_limit_are_refused() -> None:
    with pytest.raises(RespProtocolError, match="too big inline") as e:
        AuthPhase(1 << 20).client_data(b"AUTH " + b"x" * INLINE_MAX)
    assert e.value.too_big


# -- fuzzing ---------------------------------------------------------------------------------------

COMMANDS = st.sampled_from(
    [
        encode(b"AUTH", b"secret"),
        encode(b"AUTH", b"default", b"secret"),
        encode(b"HELLO", b"3", b"AUTH", b"default", b"secret"),
        encode(b"HELLO", b"2"),
        encode(b"RESET"),
        encode(b"PING"),
        encode(b"GET", b"k"),
        encode(b"SET", b"k", b"v" * 3000),
        b"AUTH secret\r\n",
        b"PING\n",
        b"\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"*1\r\n$1073741824\r\n",
        b"*2147483647\r\n",
        b"$5\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$4\r\nPING\r\r",
    ]
)
CLIENT_BYTES = st.one_of(COMMANDS, st.binary(max_size=2000), st.binary(min_size=15000, max_size=20000))
REPLIES = st.sampled_from(
    [
        b"+OK\r\n",
        b"+PONG\r\n",
        b"+RESET\r\n",
        b"-WRONGPASS invalid username-password pair\r\n",
        b"-NOAUTH Authentication required.\r\n",
        b"-ERR unknown command\r\n",
        b"$5\r\nhello\r\n",
        b"$-1\r\n",
        b"*2\r\n$1\r\na\r\n:1\r\n",
        b"%1\r\n+proto\r\n:3\r\n",
        b">2\r\n+message\r\n+x\r\n",
        b"|1\r\n+ttl\r\n:3\r\n+OK\r\n",
        b"!10\r\nERR failed\r\n",
        b"_\r\n",
        b"$100000\r\n" + b"x" * 100000 + b"\r\n",
    ]
)
NODE_BYTES = st.one_of(REPLIES, st.binary(max_size=500))
OPS = st.lists(
    st.one_of(st.tuples(st.just("client"), CLIENT_BYTES), st.tuples(st.just("node"), NODE_BYTES)),
    max_size=40,
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [c for c in out if c]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.lists(st.integers(min_value=0), max_size=8), st.integers(min_value=64, max_value=LIMIT))
def test_random_streams_only_raise_our_error_and_stay_bounded(
    ops: list[tuple[str, bytes]], cuts: list[int], limit: int
) -> None:
    phase = AuthPhase(limit)
    client_open = node_open = True
    successes = 0
    for side, data in ops:
        for chunk in split(data, cuts):
            if side == "client" and client_open:
                try:
                    phase.client_data(chunk)
                except RespProtocolError:
                    client_open = False  # the gateway refuses and closes
                    continue
                # Never more held than the limit: unanswered commands plus an incomplete one.
                assert 0 <= phase.held <= phase.limit
                assert len(phase.parser._buf) <= phase.limit
            elif side == "node" and node_open:
                was_done = phase.done
                try:
                    verdicts = phase.node_data(chunk)
                except RespProtocolError:
                    node_open = False
                    continue
                assert len(phase.scanner._buf) <= REPLY_LINE_MAX
                if was_done:
                    assert verdicts == []
                # Only the last verdict may end the phase; failures carry a code word, never text.
                for v in verdicts[:-1]:
                    assert v.outcome == "failure"
                for v in verdicts:
                    assert " " not in v.error_code and len(v.error_code) <= 32
                successes += sum(v.outcome != "failure" for v in verdicts)
                assert phase.done == (successes > 0)
            assert phase.in_flight == sum(size for _kind, size, _args in phase.pending) >= 0
    assert successes <= 1


# One command of each kind and the reply a node gives it, with what that reply means.
CASES = [
    (encode(b"AUTH", b"secret"), b"+OK\r\n", "success"),
    (encode(b"AUTH", b"bad"), b"-WRONGPASS invalid username-password pair\r\n", "failure"),
    (encode(b"HELLO", b"3", b"AUTH", b"default", b"secret"), b"%1\r\n+server\r\n+valkey\r\n", "success"),
    (encode(b"HELLO", b"3", b"AUTH", b"default", b"x"), b"-WRONGPASS bad\r\n", "failure"),
    (encode(b"HELLO", b"3"), b"-NOAUTH HELLO must be called with the client already authenticated\r\n", None),
    (encode(b"RESET"), b"+RESET\r\n", None),
    (b"PING\r\n", b"-NOAUTH Authentication required.\r\n", None),
    (encode(b"GET", b"k"), b"$-1\r\n", "not_required"),
    (encode(b"NOPE"), b"-ERR unknown command 'NOPE'\r\n", None),
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(CASES))), min_size=1, max_size=30),
    st.lists(st.integers(min_value=0), max_size=10),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_pipelined_sessions_judged_like_one_command_at_a_time(
    picks: list[int], client_cuts: list[int], node_cuts: list[int]
) -> None:
    commands = b"".join(CASES[i][0] for i in picks)
    expected: list[str] = []
    for i in picks:
        meaning = CASES[i][2]
        if meaning is not None:
            expected.append(meaning)
            if meaning != "failure":
                break
    phase = AuthPhase(LIMIT)
    forwarded = b"".join(phase.client_data(c) for c in split(commands, client_cuts))
    got: list[str] = []
    answered = 0
    # A node that answers each forwarded command with its case's reply, split anywhere.
    while phase.pending and not phase.done:
        reply = CASES[picks[answered]][1]
        answered += 1
        for chunk in split(reply, node_cuts):
            got.extend(v.outcome for v in phase.node_data(chunk))
        forwarded += phase.take_held()
    assert forwarded + phase.take_held() + phase.take_rest() == commands  # nothing invented or dropped
    assert got == expected
    assert phase.done == (bool(expected) and expected[-1] != "failure")


def test_one_deciding_command_at_a_time() -> None:
    phase = AuthPhase(LIMIT)
    ping, auth, get = encode(b"PING"), encode(b"AUTH", b"pw"), encode(b"GET", b"k")
    # PING could decide (a node without a password answers it): AUTH waits for its reply.
    assert phase.client_data(ping + auth + get) == ping
    assert phase.node_data(b"-NOAUTH Authentication required.\r\n") == []
    assert phase.take_held() == auth
    assert phase.take_held() == b""  # GET waits for AUTH's verdict
    assert phase.node_data(b"+OK\r\n") == [AuthVerdict("success")]
    assert phase.take_held() == get


def test_what_follows_an_auth_waits_for_its_verdict_and_replay_is_recorded() -> None:
    phase = AuthPhase(LIMIT)
    hello = encode(b"HELLO", b"3")
    bad, good = encode(b"AUTH", b"wrong"), encode(b"AUTH", b"pw")
    after = encode(b"GET", b"k") + encode(b"SET", b"a", b"b")
    # HELLO goes, the first AUTH goes; the second AUTH and the rest wait for its verdict.
    assert phase.client_data(hello + bad + good + after) == hello + bad
    assert phase.held == len(hello + bad + good + after)
    assert phase.node_data(b"%1\r\n+proto\r\n:3\r\n") == []
    assert phase.node_data(b"-WRONGPASS invalid\r\n") == [AuthVerdict("failure", "WRONGPASS")]
    # After a failure the next AUTH is released, and the commands after it still wait.
    assert phase.take_held() == good
    assert phase.node_data(b"+OK\r\n") == [AuthVerdict("success")]
    assert phase.take_held() == after
    # What the router repeats on its own node connections: the accepted HELLO and AUTH, in order.
    assert list(phase.replay.values()) == [(b"HELLO", b"3"), (b"AUTH", b"pw")]
