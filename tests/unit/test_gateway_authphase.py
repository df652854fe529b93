"""The authentication phase as a whole (``amr.logic.gateway_authphase``): table tests and fuzzing
with random command and reply streams, split anywhere and interleaved."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amr.logic.gateway_authphase import AuthPhase, AuthVerdict, PendingLimitError
from amr.logic.gateway_resp import REPLY_LINE_MAX, RespProtocolError

LIMIT = 16384


def encode(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def test_pipelined_auth_then_commands() -> None:
    phase = AuthPhase(LIMIT)
    partial = b"*2\r\n$3\r\nGET\r\n$1\r"
    data = encode(b"AUTH", b"pw") + encode(b"SET", b"k", b"v") + b"GET k\r\n" + partial
    forwarded = phase.client_data(data)
    assert forwarded == data[: -len(partial)]
    assert phase.held == len(data)
    assert phase.node_data(b"+O") == []
    assert phase.node_data(b"K\r\n+OK\r\n$1\r\nv\r\n") == [AuthVerdict("success")]
    assert phase.done and phase.in_flight == 0
    assert phase.take_rest() == partial
    assert phase.node_data(b"-ERR whatever\r\n") == []


def test_failures_then_success_and_neutral_commands() -> None:
    phase = AuthPhase(LIMIT)
    phase.client_data(
        encode(b"PING") + encode(b"HELLO", b"3") + encode(b"AUTH", b"x") + encode(b"AUTH", b"y")
    )
    verdicts = phase.node_data(
        b"-NOAUTH Authentication required.\r\n"
        b"-NOAUTH HELLO must be called with the client already authenticated\r\n"
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    )
    assert verdicts == [AuthVerdict("failure", "WRONGPASS")]
    assert not phase.done
    assert phase.node_data(b"+OK\r\n") == [AuthVerdict("success")]


def test_no_password_needed() -> None:
    phase = AuthPhase(LIMIT)
    phase.client_data(b"RESET\r\nPING\r\n")
    assert phase.node_data(b"+RESET\r\n+PONG\r\n") == [AuthVerdict("not_required")]


def test_pending_bytes_count_against_the_limit() -> None:
    phase = AuthPhase(1024)
    phase.client_data(b"JUNK xxxx\r\n" * 50)  # 550 bytes forwarded, unanswered
    try:
        phase.client_data(b"JUNK xxxx\r\n" * 50)
    except PendingLimitError as e:
        assert e.too_big
    else:
        raise AssertionError("over the limit")
    phase = AuthPhase(1024)
    phase.client_data(b"JUNK xxxx\r\n" * 50)
    phase.node_data(b"-NOAUTH Authentication required.\r\n" * 50)  # answered: no longer pending
    assert phase.held == 0
    phase.client_data(b"JUNK xxxx\r\n" * 50)


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
    replies = b"".join(CASES[i][1] for i in picks)
    expected: list[str] = []
    for i in picks:
        meaning = CASES[i][2]
        if meaning is not None:
            expected.append(meaning)
            if meaning != "failure":
                break
    phase = AuthPhase(LIMIT)
    forwarded = b"".join(phase.client_data(c) for c in split(commands, client_cuts))
    assert forwarded + phase.take_rest() == commands  # nothing invented, dropped or reordered
    got: list[str] = []
    for chunk in split(replies, node_cuts):
        got.extend(v.outcome for v in phase.node_data(chunk))
    assert got == expected
    assert phase.done == (bool(expected) and expected[-1] != "failure")


def test_hold_after_auth_forwards_one_deciding_command_at_a_time() -> None:
    phase = AuthPhase(LIMIT, hold_after_auth=True)
    ping, auth, get = encode(b"PING"), encode(b"AUTH", b"pw"), encode(b"GET", b"k")
    # PING could decide (a node without a password answers it): AUTH waits for its reply.
    assert phase.client_data(ping + auth + get) == ping
    assert phase.node_data(b"-NOAUTH Authentication required.\r\n") == []
    assert phase.take_held() == auth
    assert phase.take_held() == b""  # GET waits for AUTH's verdict
    assert phase.node_data(b"+OK\r\n") == [AuthVerdict("success")]
    assert phase.take_held() == get


def test_hold_after_auth_keeps_what_follows_an_auth_until_its_verdict() -> None:
    phase = AuthPhase(LIMIT, hold_after_auth=True)
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


def test_without_hold_everything_is_forwarded_and_replay_is_still_recorded() -> None:
    phase = AuthPhase(LIMIT)
    data = encode(b"AUTH", b"pw") + encode(b"GET", b"k")
    assert phase.client_data(data) == data
    assert phase.node_data(b"+OK\r\n") == [AuthVerdict("success")]
    assert phase.replay == {b"AUTH": (b"AUTH", b"pw")}
