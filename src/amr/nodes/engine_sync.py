"""The small synchronous engine client the node launcher needs (amr.nodes.launch runs before the
engine exists, without an event loop, and must start in a few tens of milliseconds): one short
connection to a peer over TCP, AUTH, one command. Same codec as amr.nodes.engine_client."""

from __future__ import annotations

import socket

from amr.logic.engine_codec import (
    Arg,
    ReplyProtocolError,
    encode_commands,
    is_error_reply,
    new_reply_parser,
)

READ_CHUNK = 1 << 16


def ask_peer(
    host: str, port: int, user: str, password: str, command: tuple[Arg, ...], timeout: float
) -> object:
    """Authenticate as ``user`` and run ``command`` on ``host:port``; return its reply, or None if
    the node refused the user or answered an error. Raise OSError if it cannot be reached or breaks
    off, ValueError if what it sends is not RESP."""
    with socket.create_connection((host, port), timeout=timeout) as stream:
        stream.sendall(encode_commands([("AUTH", user, password), command]))
        parser = new_reply_parser(decode=False)
        replies: list[object] = []
        while len(replies) < 2:
            try:
                reply = parser.gets()
            except ReplyProtocolError as e:
                raise ValueError(f"not RESP: {e}") from e
            if reply is not False:
                replies.append(reply)
                continue
            chunk = stream.recv(READ_CHUNK)
            if not chunk:
                raise OSError("connection closed")
            parser.feed(chunk)
    if any(is_error_reply(r) for r in replies):
        return None
    return replies[1]
