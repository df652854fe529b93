"""The gateway's authentication phase as a whole, without sockets: what to forward, what to judge.

``AuthPhase`` holds one connection's pre-authentication state: the bounded request parser, the reply
scanner and the commands still waiting for their replies. The gateway feeds it the client's bytes
(getting back what to forward to the node) and the node's bytes (getting back the authentication
verdicts they carry); it owns no I/O, so it can be fuzzed and unit-tested on byte streams alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from amr.logic.gateway_auth import AuthOutcome, CommandKind, classify_command, judge_reply
from amr.logic.gateway_resp import ReplyScanner, RequestParser, RespProtocolError


class PendingLimitError(RespProtocolError):
    """Complete commands still waiting for their replies, plus an incomplete one, exceed the limit."""

    def __init__(self) -> None:
        super().__init__("too much data pending before authentication", too_big=True)


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    """What one reply said: ``success``, ``failure`` (with the error's code word, never its text)
    or ``not_required``."""

    outcome: AuthOutcome
    error_code: str = ""


class AuthPhase:
    """Decides, for one connection before it has authenticated, which client bytes go to the node
    and what the node's replies mean for authentication.

    Memory is bounded by ``limit``: the bytes of forwarded commands not answered yet plus the bytes of
    an incomplete command never exceed it (``client_data`` raises RespProtocolError with ``too_big``
    instead), and the reply scanner keeps at most one reply line. After the first ``success`` or
    ``not_required`` verdict the phase is ``done``: the caller switches to splicing bytes.
    """

    __slots__ = ("parser", "scanner", "pending", "in_flight", "done")

    def __init__(self, limit: int) -> None:
        self.parser = RequestParser(limit)
        self.scanner = ReplyScanner()
        self.pending: deque[tuple[CommandKind, int]] = deque()
        self.in_flight = 0
        self.done = False

    @property
    def limit(self) -> int:
        return self.parser.limit

    @property
    def held(self) -> int:
        """Bytes accounted against the limit: forwarded and unanswered, plus incomplete."""
        return self.in_flight + self.parser.buffered

    def client_data(self, data: bytes) -> bytes:
        """Take bytes from the client; return the complete commands to forward to the node, in order
        (``b""`` if none). Raise RespProtocolError if the input is not RESP (``reply`` is what to
        answer) or would take the phase over its limit (``too_big``)."""
        parser = self.parser
        commands = parser.feed(data)
        size = 0
        for cmd in commands:
            size += len(cmd.raw)
        if self.in_flight + size + parser.buffered > parser.limit:
            raise PendingLimitError()
        if not commands:
            return b""
        pending = self.pending
        for cmd in commands:
            pending.append((classify_command(cmd.args), len(cmd.raw)))
        self.in_flight += size
        return commands[0].raw if len(commands) == 1 else b"".join(c.raw for c in commands)

    def node_data(self, data: bytes) -> list[AuthVerdict]:
        """Take bytes from the node; return the verdicts of the replies they complete, in order.

        Replies that say nothing yet (errors to ordinary commands, HELLO/RESET/QUIT answers) give no
        verdict; the list ends at the first ``success`` or ``not_required``, after which the phase is
        done and further bytes are ignored. Raise RespProtocolError if the node's stream is not RESP.
        """
        if self.done:
            return []
        out: list[AuthVerdict] = []
        pending = self.pending
        for reply in self.scanner.feed(data):
            if not pending:
                continue  # an unsolicited reply (the node never sends one before auth)
            kind, size = pending.popleft()
            self.in_flight -= size
            outcome = judge_reply(kind, reply)
            if outcome == "pending":
                continue
            out.append(AuthVerdict(outcome, reply.error_code))
            if outcome != "failure":
                self.done = True
                pending.clear()
                self.in_flight = 0
                break
        return out

    def take_rest(self) -> bytes:
        """The client's bytes not forwarded yet (an incomplete command); the parser is empty after."""
        return self.parser.take_rest()
