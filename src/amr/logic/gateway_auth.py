"""The gateway's authentication phase decisions: which commands authenticate, and what a reply means.

Token authentication will plug in here: it changes what counts as an authenticating command and how
its outcome is judged, not the gateway's byte handling.
"""

from __future__ import annotations

from typing import Literal

from amr.logic.gateway_resp import Reply

CommandKind = Literal["auth", "neutral", "other"]

# Commands the engine answers without authentication (valkey's NO_AUTH flag): their success proves
# nothing about whether this connection needs a password.
NO_AUTH_COMMANDS = frozenset({b"HELLO", b"RESET", b"QUIT"})
AuthOutcome = Literal["success", "failure", "not_required", "pending"]


def classify_command(args: tuple[bytes, ...]) -> CommandKind:
    """``auth`` for AUTH and for HELLO with an AUTH clause; ``neutral`` for the other commands the
    engine runs before authentication (HELLO, RESET, QUIT); ``other`` for anything else."""
    name = args[0].upper() if args else b""
    if name == b"AUTH":
        return "auth"
    if name == b"HELLO" and any(a.upper() == b"AUTH" for a in args[2:]):
        return "auth"
    if name in NO_AUTH_COMMANDS:
        return "neutral"
    return "other"


def judge_reply(kind: CommandKind, reply: Reply) -> AuthOutcome:
    """What the node's reply to a command of ``kind`` says about the connection's authentication.

    - An authenticating command answered without an error: ``success``; with an error (WRONGPASS,
      ERR invalid password, NOAUTH...): ``failure``.
    - Any other command answered without an error: the node serves this connection without a
      password (the default user has none), so authentication is ``not_required``.
    - Any other command answered with an error (NOAUTH, or one raised before the auth check such as
      an unknown command), or a command the engine runs without authentication: still ``pending``.
    """
    if kind == "neutral":
        return "pending"
    if kind == "auth":
        return "failure" if reply.is_error else "success"
    return "pending" if reply.is_error else "not_required"
