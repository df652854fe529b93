"""The one RESP codec amr's own engine clients use (amr.nodes.engine_client, amr.nodes.engine_sync):
encoding commands, parsing replies incrementally, naming engine errors, hiding secrets.

Commands are encoded by ``amr.logic.resp_frames.render_command``, the encoder of the gateway's data
path, so there is one encoder. Replies are parsed by hiredis (C, incremental): slot migration sends
over a hundred thousand admin commands for a scale-out, and each must cost microseconds. An error
reply becomes the class ``ENGINE_ERRORS`` names for its first word, in the style of redis-py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import hiredis

from amr.errors import (
    EngineAuthError,
    EngineBusyError,
    EngineClusterDown,
    EngineError,
    EngineLoadingError,
    EngineMasterDown,
    EnginePermissionError,
    EngineReadOnly,
    EngineRedirect,
    EngineTryAgain,
)
from amr.logic.resp_frames import render_command

Arg = str | int | float | bytes
Command = Sequence[Arg]
# What the parser raises when the bytes are not RESP.
ReplyProtocolError = hiredis.ProtocolError

# The class of an error reply, by its first word; any other code is a plain EngineError.
ENGINE_ERRORS: Mapping[str, type[EngineError]] = {
    "NOAUTH": EngineAuthError,
    "WRONGPASS": EngineAuthError,
    "NOPERM": EnginePermissionError,
    "LOADING": EngineLoadingError,
    "BUSY": EngineBusyError,
    "MOVED": EngineRedirect,
    "ASK": EngineRedirect,
    "TRYAGAIN": EngineTryAgain,
    "CLUSTERDOWN": EngineClusterDown,
    "READONLY": EngineReadOnly,
    "MASTERDOWN": EngineMasterDown,
}

# ACL password rules (">secret", "#<sha256>") that an engine error might echo back.
_SECRET = re.compile(r"(?<![\w>])[>#<!](?![>\s])\S+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide ACL password rules in an engine message, and any of ``secrets`` (passwords we sent)."""
    text = _SECRET.sub("[redacted]", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def as_bytes(arg: Arg) -> bytes:
    """One command argument as the engine reads it."""
    return arg if isinstance(arg, bytes) else str(arg).encode()


def encode_command(*args: Arg) -> bytes:
    """A command as a RESP array of bulk strings."""
    return render_command([as_bytes(a) for a in args])


def encode_commands(commands: Iterable[Command]) -> bytes:
    """Several commands back to back, as one pipeline write."""
    return b"".join(render_command([as_bytes(a) for a in c]) for c in commands)


def describe_command(command: Command) -> str:
    """A command's name for messages and logs (never its arguments: they may be keys or secrets)."""
    if not command:
        return ""
    first = command[0]
    return first.decode(errors="replace") if isinstance(first, bytes) else str(first)


def new_reply_parser(decode: bool) -> hiredis.Reader:
    """An incremental reply parser: ``feed`` bytes, ``gets`` a reply or False. Bulk and simple
    strings come as str when ``decode`` (UTF-8), else bytes; error replies as hiredis.ReplyError."""
    return hiredis.Reader(encoding="utf-8") if decode else hiredis.Reader()


def is_error_reply(reply: object) -> bool:
    """Whether a parsed reply is an error reply."""
    return isinstance(reply, hiredis.ReplyError)


def engine_error(reply: object, where: str, secrets: Iterable[str] = ()) -> EngineError:
    """The exception for an error reply: the class ENGINE_ERRORS names for its code, its message
    prefixed with ``where`` (the node and command) and redacted."""
    text = redact(str(reply), secrets)
    code = text.split(" ", 1)[0]
    cls = ENGINE_ERRORS.get(code, EngineError)
    return cls(f"{where}: {text}", code)


def parse_info(text: str) -> dict[str, Any]:
    """An INFO reply as a dict, as redis-py parses it (numbers as int or float, ``k=v,...`` values
    as dicts, comma lists as lists, ``module`` lines gathered under ``modules``)."""
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            info.setdefault("__raw__", []).append(line)
            continue
        key, value = line.split(":", 1)
        if key == "cmdstat_host":
            key, value = line.rsplit(":", 1)
        if key == "module":
            info.setdefault("modules", []).append(_info_value(value))
        else:
            info[key] = _info_value(value)
    return info


def _info_value(value: str) -> Any:
    if "," not in value and "=" not in value:
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return value
    if "=" not in value:
        return [_info_value(v) for v in value.split(",") if v]
    fields: dict[str, Any] = {}
    for item in value.split(","):
        if not item:
            continue
        if "=" in item:
            k, v = item.rsplit("=", 1)
            fields[k] = _info_value(v)
        else:
            fields[item] = True
    return fields


def _text(reply: object) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def shape_admin_reply(command: Command, reply: object) -> object:
    """The value an admin command's reply stands for, as redis-py's response callbacks shape it (the
    reconciler was written against them): INFO as a dict, SAVE and FLUSHALL as whether they said
    OK, BGSAVE and BGREWRITEAOF as True, PING as whether it said PONG; anything else unchanged."""
    name = describe_command(command).upper()
    if name == "INFO":
        return parse_info(_text(reply))
    if name in ("SAVE", "FLUSHALL", "FLUSHDB"):
        return _text(reply) == "OK"
    if name in ("BGSAVE", "BGREWRITEAOF"):
        return True
    if name == "PING":
        return _text(reply) == "PONG"
    return reply
