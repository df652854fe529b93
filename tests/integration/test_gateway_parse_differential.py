"""The authentication phase's request parser against a real valkey-server, on generated input.

The phase decides what a command is from the arguments it parses, so it must read the engine's
bytes exactly as the engine does. Each generated inline line is sent to a real engine as
``EVAL "return ARGV" 0 <generated>``: the reply is the argv the engine parsed (or its protocol
error), compared with ``RequestParser``'s parse of the same line. Multibulk header numbers are
compared the same way (a count <= 0 is skipped by both; a bad one is a protocol error for both).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amr.logic.dataplane.auth import NO_AUTH_COMMANDS
from amr.logic.resp.requests import RequestParser, RespProtocolError
from tests.integration.gateway_harness import Node, run_nopass_valkey

LIMIT = 16384
PREFIX = b'EVAL "return ARGV" 0 '


class Engine:
    """One raw connection to a real engine; reconnects after the engine closes it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(5)
            self.sock.connect(self.path)
            self.buf = b""
        return self.sock

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            assert self.sock is not None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("engine closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bulk(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            assert self.sock is not None
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def request(self, data: bytes) -> list[bytes] | str:
        """Send ``data``; the array of bulk strings it answers, or the text of its error (after
        which, for a protocol error, the engine has closed the connection)."""
        sock = self._connect()
        sock.sendall(data)
        head = self._line()
        if head.startswith(b"-"):
            if b"Protocol error" in head:
                self.close()
            return head[1:].decode()
        if head.startswith(b"+"):
            return [head[1:]]
        assert head.startswith(b"*"), head
        out = []
        for _ in range(int(head[1:])):
            bulk = self._line()
            assert bulk.startswith(b"$"), bulk
            out.append(self._bulk(int(bulk[1:])))
        return out

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    for node in run_nopass_valkey(tmp_path_factory.mktemp("differential")):
        e = Engine(node.socket_path)
        yield e
        e.close()


def ours(data: bytes) -> list[bytes] | str:
    """What the phase's parser makes of ``data``: the one command's arguments, or its error."""
    try:
        commands = RequestParser(LIMIT).feed(data)
    except RespProtocolError as e:
        return str(e)
    assert len(commands) == 1
    return list(commands[0].args)


# Bytes that matter to sdssplitargs (quotes, escapes, hex digits, every kind of blank, a lone CR)
# and some that do not; never NUL or LF (see test_nul_and_line_ends below).
PIECES = st.sampled_from(
    [b'"', b"'", b"\\", b"x", b"4", b"1", b"f", b"G", b"n", b"t", b"a", b" ", b"  ", b"\t", b"\r",
     b"\x0b", b"\x0c", b"\x80", b"\xff", b"AUTH", b"RESET", b'\\"', b"\\'", b"\\x41", b"\\x4", b"amr-"]
)  # fmt: skip
TAILS = st.lists(PIECES, max_size=16).map(b"".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TAILS)
def test_inline_lines_split_like_the_engine(engine: Engine, tail: bytes) -> None:
    line = PREFIX + tail + b"\r\n"
    theirs = engine.request(line)
    mine = ours(line)
    if b"\xff" in tail:
        # valkey 8.1 drops 0xFF bytes from inline arguments (not in its sdssplitargs' documented
        # rules): the phase refuses such lines rather than depend on it.
        assert isinstance(mine, str) and "0xFF" in mine
    elif isinstance(theirs, str):
        # The engine's only refusal of a complete inline line: unbalanced quotes.
        assert "unbalanced quotes" in theirs
        assert isinstance(mine, str) and "unbalanced quotes" in mine, (line, mine)
    else:
        assert mine == [b"EVAL", b"return ARGV", b"0", *theirs], line


HEADER = st.lists(
    st.sampled_from([b"0", b"1", b"2", b"9", b"-", b"+", b" ", b"a"]), min_size=0, max_size=22
).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HEADER)
def test_multibulk_counts_read_like_the_engine(engine: Engine, count: bytes) -> None:
    # A count <= 0 is skipped and PING runs; a positive count waits for "$" and gets "PING"; a
    # count the engine cannot read is a protocol error.
    data = b"*" + count + b"\r\nPING\r\n"
    theirs = engine.request(data)
    engine.close()
    try:
        commands = RequestParser(LIMIT).feed(data)
    except RespProtocolError as e:
        mine: str | list[bytes] = str(e)
    else:
        mine = [b"PONG"] if [c.args for c in commands] == [(b"PING",)] else "no command"
    if isinstance(mine, str) and "unauthenticated multibulk length" in mine:
        # A count our size limit refuses before any byte of it arrives (this engine, with no
        # password, would wait; one with a password refuses it too: see the test below).
        assert theirs != [b"PONG"], data
    elif isinstance(theirs, str):
        assert isinstance(mine, str)
        kind = "invalid multibulk length" if "invalid multibulk length" in theirs else "expected '$'"
        assert kind in theirs and kind in mine, (data, theirs, mine)
    else:
        assert mine == theirs == [b"PONG"], data


def test_nul_and_line_ends(engine: Engine) -> None:
    # A lone CR inside a line separates arguments for both; CRLF and LF both end a line.
    for line in (
        b'EVAL "return ARGV" 0 a\rb\r\n',
        b'EVAL "return ARGV" 0 a\rb\n',
        b"EVAL 'return ARGV' 0 a\r\r\n",
    ):
        theirs = engine.request(line)
        assert isinstance(theirs, list)
        assert ours(line) == [b"EVAL", b"return ARGV", b"0", *theirs]
    # A NUL in an inline line: the engine never finishes reading the line (it waits until its
    # 64 KiB inline limit, and then answers "too big inline request"); the phase answers that at once.
    engine.close()
    sock = engine._connect()
    sock.sendall(b"PING\x00\r\n")
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(100)
    engine.close()
    assert ours(b"PING\x00\r\n") == "Protocol error: too big inline request"
    # A 0xFF byte: valkey 8.1 drops it, so a line the gateway could read as an unknown command
    # runs as AUTH there; the phase refuses it.
    theirs = engine.request(b'EVAL "return ARGV" 0 AU\xffTH\r\n')
    assert theirs == [b"AUTH"]
    assert "0xFF byte" in str(ours(b"AU\xffTH guess\r\n"))


def test_the_commands_the_engine_runs_without_authentication_are_the_ones_the_phase_knows(
    engine: Engine,
) -> None:
    # The phase judges every other command's success as "no password required": a command the
    # engine ran before authentication that the phase did not know would be judged wrongly.
    node = redis.Redis(unix_socket_path=engine.path)
    try:
        table = node.command()
    finally:
        node.close()
    no_auth = {name.upper().encode() for name, info in table.items() if "no_auth" in info["flags"]}
    assert no_auth == NO_AUTH_COMMANDS | {b"AUTH"}


@pytest.mark.parametrize("length", [b"4", b"04", b"+4", b"-0", b" 4", b"4 ", b"4a", b"", b"-1"])
def test_bulk_lengths_read_like_the_engine(engine: Engine, length: bytes) -> None:
    data = b"*1\r\n$" + length + b"\r\nPING\r\n"
    theirs = engine.request(data)
    engine.close()
    mine = ours(data)
    if theirs == [b"PONG"]:
        assert mine == [b"PING"]
    else:
        assert isinstance(theirs, str) and "invalid bulk length" in theirs, theirs
        assert isinstance(mine, str) and "invalid bulk length" in mine, mine


def engine_refusal(path: str, data: bytes) -> str:
    """The error line an engine that wants a password answers ``data`` with before AUTH (the rest of
    ``data`` may meet a closed socket: the engine refuses as soon as it has read enough)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        while b"\r\n" not in got:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    return got.split(b"\r\n", 1)[0].decode()


# What a client sends before AUTH that both refuse: the phase must answer with the engine's text.
# Lines without an end go on past the engine's 64 KiB inline limit (valkey's Tcl "Protocol desync
# regression test" sends \x00, *\x00 and $\x00 followed by endless bytes).
NO_END = 70_000
REFUSED_BY_BOTH = [
    b"\x00" + b"payload" * (NO_END // 7),
    b"*\x00" + b"payload" * (NO_END // 7),
    b"$\x00" + b"payload" * (NO_END // 7),
    b"A" * NO_END,
    b"*" + b"1" * NO_END,
    b"*1\r\n$" + b"9" * NO_END,
    b"*" + b"1" * 40 + b"\r\n",
    b"*3000000000\r\n",
    b"*100000\r\n",
    b"*1\r\n$1073741824\r\n",
    b"*1\r\n$20000\r\n",
    b"*1\r\n$-10\r\n",
]


@pytest.mark.parametrize("data", REFUSED_BY_BOTH, ids=lambda d: repr(d[:24]))
def test_refusals_before_authentication_are_the_engines_own(nodes: dict[str, Node], data: bytes) -> None:
    theirs = engine_refusal(nodes["a"].socket_path, data)
    assert theirs.startswith("-ERR Protocol error: "), theirs
    assert theirs == "-ERR " + str(ours(data)), data[:40]
