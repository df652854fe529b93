"""The gateway's authentication phase as a whole, without sockets: what to forward, what to judge.

``AuthPhase`` holds one connection's pre-authentication state: the bounded request parser, the reply
scanner and the commands still waiting for their replies. The gateway feeds it the client's bytes
(getting back what to forward to the node) and the node's bytes (getting back the authentication
verdicts they carry); it owns no I/O, so it can be fuzzed and unit-tested on byte streams alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from amr.logic.dataplane.auth import REFUSED_AUTH, AuthOutcome, CommandKind, classify_command, judge_reply
from amr.logic.resp.reply_scanner import ReplyScanner
from amr.logic.resp.requests import TOO_MUCH_BEFORE_AUTH, Command, RequestParser, RespProtocolError

# What a routed connection's node connections must repeat to act as the client: its credentials and
# its protocol version.
_REPLAYED = frozenset({b"AUTH", b"HELLO"})
# The audit reason of a refused internal user name (the engine's answer to REFUSED_AUTH is WRONGPASS).
INTERNAL_USER_REASON = "internal_user"


class PendingLimitError(RespProtocolError):
    """Complete commands still waiting for their replies, plus an incomplete one, exceed the limit."""

    def __init__(self) -> None:
        super().__init__(TOO_MUCH_BEFORE_AUTH, too_big=True)


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    """What one reply said: ``success``, ``failure`` (with the error's code word, never its text)
    or ``not_required``."""

    outcome: AuthOutcome
    error_code: str = ""


class AuthPhase:
    """Decides, for one connection before it has authenticated, which client bytes go to the node
    and what the node's replies mean for authentication.

    Memory is bounded by ``limit``: the bytes of forwarded commands not answered yet, of held
    commands, and of an incomplete command never exceed it (``client_data`` raises
    RespProtocolError with ``too_big`` instead), and the reply scanner keeps at most one reply line.
    After the first ``success`` or ``not_required`` verdict the phase is ``done``: the caller
    switches to splicing bytes, or hands the connection to the router.

    One deciding command at a time: commands that follow one that can decide authentication (any
    but HELLO/RESET/QUIT without credentials) are held, not forwarded, until it is answered. So a
    pipeline of password guesses reaches the engine one verdict at a time, and the brute-force guard
    counts each before the next is tried (once the source is blocked, the held ones never reach the
    engine); after a success nothing else is in flight on the node connection, and the caller takes
    the held commands (``take_held``) for the splice or the router. Otherwise ``take_held`` gives the
    next ones to forward (the caller asks after every reply).

    AUTH and HELLO AUTH naming an internal user (``gateway_auth.is_internal_user``) are replaced by
    ``REFUSED_AUTH`` before they are forwarded: the engine never sees the name or the password, its
    WRONGPASS answer reaches the client in order, and the verdict is a ``failure`` with the reason
    ``internal_user``. ``replay`` keeps the AUTH and HELLO commands the node accepted (the last of
    each, in the order they succeeded), for the router to authenticate its own node connections the
    same way.
    """

    __slots__ = ("parser", "scanner", "pending", "in_flight", "done", "waiting", "replay")

    def __init__(self, limit: int) -> None:
        self.parser = RequestParser(limit)
        self.scanner = ReplyScanner()
        self.pending: deque[tuple[CommandKind, int, tuple[bytes, ...] | None]] = deque()
        self.in_flight = 0
        self.done = False
        self.waiting: list[Command] = []
        self.replay: dict[bytes, tuple[bytes, ...]] = {}

    @property
    def limit(self) -> int:
        return self.parser.limit

    @property
    def held(self) -> int:
        """Bytes accounted against the limit: forwarded and unanswered, held, plus incomplete."""
        return self.in_flight + self.parser.buffered + sum(len(c.raw) for c in self.waiting)

    def client_data(self, data: bytes) -> bytes:
        """Take bytes from the client; return the complete commands to forward to the node, in order
        (``b""`` if none). Raise RespProtocolError if the input is not RESP (``reply`` is what to
        answer) or would take the phase over its limit (``too_big``)."""
        parser = self.parser
        commands = parser.feed(data)
        if commands:
            self.waiting += commands
            commands = self._release()
        size = 0
        for cmd in commands:
            size += len(cmd.raw)
        held = sum(len(c.raw) for c in self.waiting) if self.waiting else 0
        if self.in_flight + size + held + parser.buffered > parser.limit:
            raise PendingLimitError()
        return self._forward(commands)

    def _forward(self, commands: list[Command]) -> bytes:
        if not commands:
            return b""
        pending = self.pending
        out: list[bytes] = []
        for cmd in commands:
            kind = classify_command(cmd.args)
            raw = REFUSED_AUTH if kind == "internal" else cmd.raw
            name = cmd.args[0].upper()
            keep = cmd.args if name in _REPLAYED and kind != "internal" else None
            pending.append((kind, len(raw), keep))
            self.in_flight += len(raw)
            out.append(raw)
        return out[0] if len(out) == 1 else b"".join(out)

    def _release(self) -> list[Command]:
        """The held commands that may go now: none while a command that can decide authentication
        (anything but HELLO/RESET/QUIT without credentials) is unanswered, else up to and including
        the next such command."""
        if any(kind != "neutral" for kind, _, _ in self.pending):
            return []
        out: list[Command] = []
        while self.waiting:
            cmd = self.waiting.pop(0)
            out.append(cmd)
            if classify_command(cmd.args) != "neutral":
                break
        return out

    def take_held(self) -> bytes:
        """Before authentication: the held commands that may be forwarded now (see ``_release``).
        After it: every held command, for the router (the phase forwards nothing more)."""
        if self.done:
            waiting, self.waiting = self.waiting, []
            return b"".join(c.raw for c in waiting)
        return self._forward(self._release())

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
            kind, size, args = pending.popleft()
            self.in_flight -= size
            if args is not None and not reply.is_error:
                name = args[0].upper()
                self.replay.pop(name, None)
                self.replay[name] = args
            outcome = judge_reply(kind, reply)
            if outcome == "pending":
                continue
            out.append(AuthVerdict(outcome, INTERNAL_USER_REASON if kind == "internal" else reply.error_code))
            if outcome != "failure":
                self.done = True
                pending.clear()
                self.in_flight = 0
                break
        return out

    def take_rest(self) -> bytes:
        """The client's bytes not forwarded yet (an incomplete command); the parser is empty after."""
        return self.parser.take_rest()
