"""The gateway's authentication phase decisions: which commands authenticate, and what a reply means.

Token authentication will plug in here: it changes what counts as an authenticating command and how
its outcome is judged, not the gateway's byte handling.

Every way a command could reach the engine without the phase recognising it, and what is decided:

- Inline or RESP, any letter case, quotes and escapes: commands are parsed with the engine's rules
  (``gateway_resp``) and names compared in ASCII upper case, as the engine's command lookup does.
  Input the parser cannot read exactly as the engine would (unbalanced quotes, NUL or 0xFF in an
  inline line, over-long lines, header numbers with a sign or leading zero, a bulk string without
  its CRLF) is refused with an error (the engine's own text where the engine refuses it too) and a
  close; it is never forwarded.
- Empty arguments: ``""`` is a command named "" (the engine answers "unknown command": still
  pending); an empty line and ``*0`` are no command for both, and get no reply.
- A lone CR inside an inline line separates arguments (engine: the same); LF alone ends a line.
- Pipelining: commands that can decide (anything but HELLO, RESET and QUIT without credentials)
  reach the engine one at a time, each after the previous one's verdict (``gateway_authphase``).
- Commands the engine runs without authentication (valkey's NO_AUTH flag: AUTH, HELLO, RESET,
  QUIT; checked against the engine's command table in the differential test): their success never
  authenticates a connection, so they do not stop the authentication deadline; RESET in particular
  only answers +RESET. HELLO with an AUTH clause is an authenticating command.
- AUTH and HELLO AUTH naming an internal user (``node_credentials.INTERNAL_USER_PREFIX``):
  ``internal``, never forwarded (``REFUSED_AUTH``).
- Any other command answered without an error means the default user needs no password (never the
  case for an amr database, whose default user always has the access keys or is off).
"""

from __future__ import annotations

from typing import Literal

from amr.logic.resp.frames import render_command
from amr.logic.resp.reply_scanner import Reply
from amr.logic.security.node_credentials import INTERNAL_USER_PREFIX

CommandKind = Literal["auth", "internal", "neutral", "other"]

# Commands the engine answers without authentication (valkey's NO_AUTH flag): their success proves
# nothing about whether this connection needs a password.
NO_AUTH_COMMANDS = frozenset({b"HELLO", b"RESET", b"QUIT"})
AuthOutcome = Literal["success", "failure", "not_required", "pending"]

# What the gateway sends the engine instead of an AUTH or HELLO that names an internal user: an AUTH
# the engine can only refuse with its own WRONGPASS (no ACL user name may contain a space), in the
# same place in the pipeline, so the client's replies stay in order and the internal name and its
# password never reach the engine.
REFUSED_AUTH = render_command((b"AUTH", b"amr refused", b"-"))


def is_internal_user(name: bytes) -> bool:
    """Whether ``name`` names (or could be taken for) one of amr's internal users: any name with
    ``INTERNAL_USER_PREFIX``, in any letter case, so no spelling of one reaches the engine from a
    public port."""
    prefix = INTERNAL_USER_PREFIX.encode()
    return name[: len(prefix)].lower() == prefix


def classify_command(args: tuple[bytes, ...]) -> CommandKind:
    """``internal`` for AUTH and HELLO AUTH naming an amr internal user (``amr-...``, any case);
    ``auth`` for the other AUTH and HELLO AUTH commands; ``neutral`` for the other commands the
    engine runs before authentication (HELLO, RESET, QUIT); ``other`` for anything else.

    HELLO's AUTH clause is looked for in every argument after the protocol version, and the one
    after any AUTH word counts as a user name: a superset of what the engine's HELLO parsing can
    take for one."""
    name = args[0].upper() if args else b""
    if name == b"AUTH":
        return "internal" if len(args) >= 3 and is_internal_user(args[1]) else "auth"
    if name == b"HELLO":
        clauses = [i for i in range(2, len(args)) if args[i].upper() == b"AUTH"]
        if any(i + 1 < len(args) and is_internal_user(args[i + 1]) for i in clauses):
            return "internal"
        if clauses:
            return "auth"
    if name in NO_AUTH_COMMANDS:
        return "neutral"
    return "other"


def judge_reply(kind: CommandKind, reply: Reply) -> AuthOutcome:
    """What the node's reply to a command of ``kind`` says about the connection's authentication.

    - An authenticating command answered without an error: ``success``; with an error (WRONGPASS,
      ERR invalid password, NOAUTH...): ``failure``. One naming an internal user: ``failure``
      whatever the answer (the engine got ``REFUSED_AUTH`` in its place).
    - Any other command answered without an error: the node serves this connection without a
      password (the default user has none), so authentication is ``not_required``.
    - Any other command answered with an error (NOAUTH, or one raised before the auth check such as
      an unknown command), or a command the engine runs without authentication: still ``pending``.
    """
    if kind == "neutral":
        return "pending"
    if kind == "internal":
        return "failure"
    if kind == "auth":
        return "failure" if reply.is_error else "success"
    return "pending" if reply.is_error else "not_required"
