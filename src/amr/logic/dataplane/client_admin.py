"""CLIENT LIST, CLIENT INFO and CLIENT KILL as a tenant must see them through the gateway.

The engine sees every client at the gateway's unix socket address, and lists amr's own connections
too. The gateway answers these commands itself: a tenant's clients are the ones the gateway knows
(each spliced connection's engine client id, its TCP peer and the public address it reached; each
EnterpriseCluster connection under an id of the gateway's own). Their lines carry that real
``addr=`` and ``laddr=``; every other connection of the engine (amr's health checks, replication,
the gateway's own connections) is neither listed nor killable.

A request's filters are the engine's: TYPE, USER, ADDR, LADDR, ID (several ids, repeated ID adds
more), SKIPME, MAXAGE (the last of each other kind counts). The engine checks their syntax first
(``validation_command``: its own error messages, exactly); ``choose_clients`` then applies them to
the tenant's clients the way the engine's ``clientMatchesFilter`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from amr.logic.resp.frames import render_bulk
from amr.logic.resp.requests import parse_engine_int

# An id no engine ever hands out: filters on it match nothing.
NO_CLIENT = b"9223372036854775807"
NO_SUCH_CLIENT = b"-ERR No such client\r\n"
OK = b"+OK\r\n"

Action = Literal["list", "info", "kill", "kill_addr", "id", "setname", "getname", "setinfo"]
_TYPES = {
    b"normal": "normal", b"pubsub": "pubsub", b"replica": "replica", b"slave": "replica",
    b"primary": "primary", b"master": "primary",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """A CLIENT LIST/KILL filter; None (or 0 for ``maxage``) where it does not restrict."""

    ids: frozenset[int] | None = None
    addr: str | None = None
    laddr: str | None = None
    type: str | None = None
    user: str | None = None
    maxage: int = 0
    skipme: bool | None = None  # None: the command's default (LIST no, KILL yes)


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """What a taken-over CLIENT command asks: ``action`` and its filter (``kill_addr`` is the old
    ``CLIENT KILL ip:port`` form, which kills one client and answers +OK or an error)."""

    action: Action
    filter: ClientFilter = ClientFilter()
    # The engine command whose answer says whether the filter's syntax is right (None: nothing to check).
    validation: tuple[bytes, ...] | None = None
    # SETNAME's name; SETINFO's option and value.
    option: bytes = b""
    value: bytes = b""


@dataclass(frozen=True, slots=True)
class ClientEntry:
    """One client as a CLIENT LIST line: its fields in the engine's order."""

    fields: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str = "") -> str:
        for k, v in self.fields:
            if k == key:
                return v
        return default

    @property
    def id(self) -> int:
        try:
            return int(self.get("id", "0"))
        except ValueError:
            return 0

    def with_fields(self, values: Mapping[str, str]) -> ClientEntry:
        """The entry with some fields' values replaced (a missing one is added at the end)."""
        out = [(k, values.get(k, v)) for k, v in self.fields]
        have = {k for k, _ in self.fields}
        out += [(k, v) for k, v in values.items() if k not in have]
        return replace(self, fields=tuple(out))

    def render(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.fields)


# Commands whose CLIENT LIST ``cmd`` names the subcommand too (``client|list``), as the engine's do.
_CONTAINERS = frozenset({
    b"acl", b"client", b"cluster", b"command", b"config", b"function", b"latency", b"memory", b"module",
    b"object", b"pubsub", b"script", b"slowlog", b"xgroup", b"xinfo",
})  # fmt: skip


def render_command_field(name: bytes, first: bytes) -> str:
    """CLIENT LIST's ``cmd`` for a connection whose latest command was ``name`` (``first``: its first
    argument, if short): lower case, ``container|sub`` for commands with subcommands, NULL if none."""
    if not name:
        return "NULL"
    lowered = name.lower()
    if lowered in _CONTAINERS and first:
        lowered += b"|" + first.lower()
    return lowered.decode("utf-8", "replace")


def format_addr(host: str, port: int) -> str:
    """An address as the engine writes it (``ip:port``, an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_client_request(args: tuple[bytes, ...] | list[bytes]) -> ClientRequest | None:
    """The request of ``CLIENT LIST|INFO|KILL|ID ...``; None for another subcommand. Filter values
    the engine would refuse make the request a ``validation`` the engine answers with its error."""
    sub = args[1].lower() if len(args) > 1 else b""
    rest = list(args[2:])
    if sub == b"info" and not rest:
        return ClientRequest("info")
    if sub == b"id" and not rest:
        return ClientRequest("id")
    if sub == b"getname" and not rest:
        return ClientRequest("getname")
    if sub == b"setname" and len(rest) == 1:
        return ClientRequest("setname", value=rest[0])
    if sub == b"setinfo" and len(rest) == 2:
        return ClientRequest("setinfo", option=rest[0], value=rest[1])
    if sub == b"kill" and len(rest) == 1:
        return ClientRequest("kill_addr", ClientFilter(addr=rest[0].decode("utf-8", "replace")))
    if sub not in (b"list", b"kill") or (sub == b"kill" and not rest):
        return None
    action: Action = "list" if sub == b"list" else "kill"
    validation = (b"CLIENT", b"LIST", b"ID", NO_CLIENT, *rest) if rest else None
    return ClientRequest(action, parse_filter(rest) or ClientFilter(), validation)


def parse_filter(rest: list[bytes]) -> ClientFilter | None:
    """The filter in CLIENT LIST/KILL arguments the engine accepted; None if they are not one."""
    ids: set[int] | None = None
    values: dict[str, str] = {}
    i = 0
    while i < len(rest):
        option = rest[i].lower()
        if option == b"id":
            ids = ids if ids is not None else set()
            i += 1
            while i < len(rest) and (n := parse_engine_int(rest[i])) is not None and n > 0:
                ids.add(n)
                i += 1
            continue
        if i + 1 >= len(rest):
            return None
        value = rest[i + 1]
        if option == b"type":
            kind = _TYPES.get(value.lower())
            if kind is None:
                return None
            values["type"] = kind
        elif option == b"skipme" and value.lower() not in (b"yes", b"no"):
            return None
        elif option in (b"addr", b"laddr", b"user", b"maxage", b"skipme"):
            values[option.decode()] = value.decode("utf-8", "replace")
        else:
            return None
        i += 2
    try:
        maxage = int(values.get("maxage", "0"))
    except ValueError:
        return None
    skipme = values.get("skipme")
    return ClientFilter(
        frozenset(ids) if ids is not None else None,
        values.get("addr"),
        values.get("laddr"),
        values.get("type"),
        values.get("user"),
        maxage,
        None if skipme is None else skipme.lower() == "yes",
    )


def choose_validation_error(request: ClientRequest, error: str) -> str | None:
    """The engine's error for the request's filter (``error``, from its ``validation``) the client
    gets; None when only an older engine's narrower CLIENT LIST grammar refused it (valkey before
    8.1 and redis take TYPE and ID there, but every filter in CLIENT KILL) and amr reads it."""
    if error.startswith("ERR syntax error") and request.validation is not None:
        if parse_filter(list(request.validation[4:])) is not None:
            return None
    return error


def parse_client_list(text: bytes | str) -> list[ClientEntry]:
    """The entries of a CLIENT LIST (or CLIENT INFO) reply's text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(ClientEntry(tuple(_field(word) for word in line.split(" ") if word)))
    return out


def _field(word: str) -> tuple[str, str]:
    key, _, value = word.partition("=")
    return key, value


def choose_known(entries: Iterable[ClientEntry], known: Mapping[int, tuple[str, str]]) -> list[ClientEntry]:
    """The engine's entries of the tenant's clients (``known``: engine id -> (addr, laddr) as the
    gateway saw them), with those addresses; every other connection is left out."""
    out = []
    for entry in entries:
        where = known.get(entry.id)
        if where is not None:
            out.append(entry.with_fields({"addr": where[0], "laddr": where[1]}))
    return out


def client_type(entry: ClientEntry) -> str:
    """The engine's client type from the line's flags (a monitor is normal, as the engine counts)."""
    flags = entry.get("flags")
    if "M" in flags:
        return "primary"
    if "S" in flags and "O" not in flags:
        return "replica"
    if "P" in flags:
        return "pubsub"
    return "normal"


def choose_clients(
    entries: Iterable[ClientEntry], flt: ClientFilter, caller: int, skipme_default: bool
) -> list[ClientEntry]:
    """The entries ``flt`` matches (``caller``: the asking client's id, for SKIPME)."""
    skipme = skipme_default if flt.skipme is None else flt.skipme
    out = []
    for entry in entries:
        if flt.ids is not None and entry.id not in flt.ids:
            continue
        if flt.addr is not None and entry.get("addr") != flt.addr:
            continue
        if flt.laddr is not None and entry.get("laddr") != flt.laddr:
            continue
        if flt.type is not None and client_type(entry) != flt.type:
            continue
        if flt.user is not None and entry.get("user") != flt.user:
            continue
        if flt.maxage and _int(entry.get("age")) < flt.maxage:
            continue
        if skipme and entry.id == caller:
            continue
        out.append(entry)
    return out


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def render_entries(entries: Iterable[ClientEntry]) -> bytes:
    """CLIENT LIST's text: a line per client, each ending in a newline."""
    return "".join(entry.render() + "\n" for entry in entries).encode()


def render_text_reply(text: bytes, resp3: bool) -> bytes:
    """CLIENT LIST/INFO's reply: a bulk string, or a verbatim string (``txt``) in RESP3."""
    if resp3:
        return b"=%d\r\ntxt:%s\r\n" % (len(text) + 4, text)
    return render_bulk(text)


def render_kill_reply(action: Action, killed: int) -> bytes:
    """CLIENT KILL's reply: the count, or for the old ``ip:port`` form +OK or "No such client"."""
    if action == "kill_addr":
        return OK if killed else NO_SUCH_CLIENT
    return b":%d\r\n" % killed


def render_context_refusal(action: Action) -> bytes:
    """The engine's answer to a CLIENT command in RESP2 pub/sub mode (where only PING and the
    subscription commands run)."""
    name = "client|kill" if action == "kill_addr" else f"client|{action}"
    return (
        f"-ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
        "are allowed in this context\r\n"
    ).encode()


def choose_label(request: ClientRequest) -> tuple[str, str] | bytes:
    """The field of its CLIENT LIST line a SETNAME or SETINFO sets and the value, or the engine's
    error: a name, library name or version takes printable ASCII but spaces only."""
    field = "name"
    if request.action == "setinfo":
        field = request.option.lower().decode("ascii", "replace")
        if field not in ("lib-name", "lib-ver"):
            return b"-ERR Unrecognized option '%s'\r\n" % _printable(request.option)
    if not all(0x21 <= c <= 0x7E for c in request.value):
        if field == "name":
            return b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        return b"-ERR %s cannot contain spaces, newlines or special characters.\r\n" % _printable(
            request.option
        )
    return field, request.value.decode("ascii")


def _printable(text: bytes) -> bytes:
    return bytes(c if 0x20 <= c <= 0x7E else 0x3F for c in text[:128])


def render_name_reply(name: str, resp3: bool) -> bytes:
    """CLIENT GETNAME's reply: the name, or a null when it has none."""
    if name:
        return render_bulk(name.encode())
    return b"_\r\n" if resp3 else b"$-1\r\n"


def choose_victims(request: ClientRequest, matched: list[ClientEntry]) -> list[ClientEntry]:
    """Whom a CLIENT KILL closes: every match, or for the old form the first one (the engine's
    oldest, as it walks its clients in order)."""
    if request.action == "kill_addr":
        return sorted(matched, key=lambda e: e.id)[:1]
    return matched
