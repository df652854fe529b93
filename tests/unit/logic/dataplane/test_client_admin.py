"""CLIENT LIST/INFO/KILL as the gateway answers them (``amr.logic.dataplane.client_admin``): requests
and filters, the engine's lines cut down to a tenant's clients with their real addresses, and the
engine's filter semantics (checked against valkey 8.1's answers)."""

from __future__ import annotations

import pytest

from amr.logic.dataplane.client_admin import (
    NO_CLIENT,
    ClientEntry,
    ClientFilter,
    ClientRequest,
    choose_clients,
    choose_known,
    choose_label,
    choose_validation_error,
    choose_victims,
    client_type,
    format_addr,
    parse_client_list,
    parse_client_request,
    parse_filter,
    render_command_field,
    render_context_refusal,
    render_entries,
    render_kill_reply,
    render_name_reply,
    render_text_reply,
)

# valkey 8.1's CLIENT LIST on a node: two tenant clients through the gateway's unix socket, the
# replica's link, a health check and the gateway's own connection.
SOCK = "/home/amr/run/d1-0-0.sock:0"
ENGINE = (
    f"id=3 addr={SOCK} laddr={SOCK} fd=9 name= age=120 idle=0 flags=N capa= db=0 sub=0 psub=0 ssub=0 "
    "multi=-1 watch=0 qbuf=0 cmd=ping user=default resp=2 lib-name=redis-py\n"
    f"id=4 addr={SOCK} laddr={SOCK} fd=11 name=worker age=5 idle=5 flags=P capa= db=0 sub=1 psub=0 ssub=0 "
    "multi=-1 watch=0 qbuf=0 cmd=subscribe user=default resp=3 lib-name=\n"
    "id=5 addr=127.0.0.2:40112 laddr=127.0.0.2:18500 fd=12 name= age=300 idle=0 flags=S capa= db=0 sub=0 psub=0 "
    "ssub=0 multi=-1 watch=0 qbuf=0 cmd=replconf user=amr-replication resp=2 lib-name=\n"
    f"id=6 addr={SOCK} laddr={SOCK} fd=13 name= age=300 idle=1 flags=N capa= db=0 sub=0 psub=0 ssub=0 "
    "multi=-1 watch=0 qbuf=0 cmd=role user=amr-ha resp=2 lib-name=\n"
    f"id=7 addr={SOCK} laddr={SOCK} fd=14 name= age=0 idle=0 flags=N capa= db=0 sub=0 psub=0 ssub=0 "
    "multi=-1 watch=0 qbuf=0 cmd=client|list user=amr-gateway resp=2 lib-name=\n"
)
KNOWN = {3: ("10.0.0.5:51000", "10.0.0.1:10000"), 4: ("[2001:db8::7]:40000", "10.0.0.1:8501")}


def entries() -> list[ClientEntry]:
    return choose_known(parse_client_list(ENGINE), KNOWN)


def ids(found: list[ClientEntry]) -> list[int]:
    return [e.id for e in found]


def test_only_the_tenants_clients_are_listed_at_their_real_addresses() -> None:
    listed = entries()
    assert ids(listed) == [3, 4]
    assert [(e.get("addr"), e.get("laddr")) for e in listed] == list(KNOWN.values())
    # Every other field stays the engine's, in its order.
    assert render_entries(listed).decode().splitlines()[0] == (
        "id=3 addr=10.0.0.5:51000 laddr=10.0.0.1:10000 fd=9 name= age=120 idle=0 flags=N capa= db=0 sub=0 "
        "psub=0 ssub=0 multi=-1 watch=0 qbuf=0 cmd=ping user=default resp=2 lib-name=redis-py"
    )
    assert render_entries([]) == b""


@pytest.mark.parametrize(
    "args, request_",
    [
        ((b"CLIENT", b"INFO"), ClientRequest("info")),
        ((b"client", b"id"), ClientRequest("id")),
        (
            (b"CLIENT", b"KILL", b"10.0.0.5:51000"),
            ClientRequest("kill_addr", ClientFilter(addr="10.0.0.5:51000")),
        ),
        ((b"CLIENT", b"LIST"), ClientRequest("list")),
        (
            (b"CLIENT", b"kill", b"addr", b"1.2.3.4:5", b"SKIPME", b"No"),
            ClientRequest(
                "kill",
                ClientFilter(addr="1.2.3.4:5", skipme=False),
                (b"CLIENT", b"LIST", b"ID", NO_CLIENT, b"addr", b"1.2.3.4:5", b"SKIPME", b"No"),
            ),
        ),
        ((b"CLIENT", b"SETNAME", b"x"), ClientRequest("setname", value=b"x")),
        ((b"client", b"setinfo", b"LIB-VER", b"1"), ClientRequest("setinfo", option=b"LIB-VER", value=b"1")),
        ((b"CLIENT", b"GETNAME"), ClientRequest("getname")),
        ((b"CLIENT", b"SETNAME"), None),
        ((b"CLIENT", b"TRACKING", b"ON"), None),
        ((b"CLIENT", b"KILL"), None),
    ],
)
def test_requests(args: tuple[bytes, ...], request_: ClientRequest | None) -> None:
    assert parse_client_request(args) == request_


@pytest.mark.parametrize(
    "words, flt",
    [
        ([b"ID", b"3", b"4", b"ID", b"9"], ClientFilter(ids=frozenset({3, 4, 9}))),  # ID adds up
        ([b"TYPE", b"pubsub", b"TYPE", b"Normal"], ClientFilter(type="normal")),  # the rest: the last counts
        ([b"type", b"slave"], ClientFilter(type="replica")),
        ([b"TYPE", b"master"], ClientFilter(type="primary")),
        (
            [b"USER", b"default", b"MAXAGE", b"60", b"LADDR", b"x:1"],
            ClientFilter(laddr="x:1", user="default", maxage=60),
        ),
        ([b"TYPE", b"bogus"], None),
        ([b"ADDR"], None),
        ([b"FOO", b"bar"], None),
    ],
)
def test_filters(words: list[bytes], flt: ClientFilter | None) -> None:
    assert parse_filter(words) == flt


@pytest.mark.parametrize(
    "flt, caller, skipme_default, expected",
    [
        (ClientFilter(), 3, False, [3, 4]),
        (ClientFilter(), 3, True, [4]),
        (ClientFilter(skipme=False), 3, True, [3, 4]),
        (ClientFilter(type="pubsub"), 3, False, [4]),
        (ClientFilter(type="normal"), 3, False, [3]),
        (ClientFilter(type="replica"), 3, False, []),
        (ClientFilter(user="amr-ha"), 3, False, []),
        (ClientFilter(ids=frozenset({4, 5, 6, 7})), 3, False, [4]),  # amr's are never matched
        (ClientFilter(addr="[2001:db8::7]:40000"), 3, True, [4]),
        (ClientFilter(addr=SOCK), 3, False, []),  # the engine's view of an address matches nothing
        (ClientFilter(laddr="10.0.0.1:10000"), 4, True, [3]),
        (ClientFilter(maxage=60), 4, True, [3]),
    ],
)
def test_what_a_filter_matches(
    flt: ClientFilter, caller: int, skipme_default: bool, expected: list[int]
) -> None:
    assert ids(choose_clients(entries(), flt, caller, skipme_default)) == expected


def test_client_types_from_the_flags() -> None:
    lines = parse_client_list("id=1 flags=N\nid=2 flags=P\nid=3 flags=S\nid=4 flags=M\nid=5 flags=O\n")
    assert [client_type(e) for e in lines] == ["normal", "pubsub", "replica", "primary", "normal"]


def test_the_old_kill_form_kills_the_oldest_match_only() -> None:
    request = ClientRequest("kill_addr", ClientFilter(addr="x"))
    matched = parse_client_list("id=9 addr=x\nid=4 addr=x\n")
    assert ids(choose_victims(request, matched)) == [4]
    assert ids(choose_victims(ClientRequest("kill"), matched)) == [9, 4]


def test_replies() -> None:
    assert render_text_reply(b"id=1\n", resp3=False) == b"$5\r\nid=1\n\r\n"
    assert render_text_reply(b"id=1\n", resp3=True) == b"=9\r\ntxt:id=1\n\r\n"
    assert render_kill_reply("kill", 2) == b":2\r\n"
    assert render_kill_reply("kill_addr", 1) == b"+OK\r\n"
    assert render_kill_reply("kill_addr", 0) == b"-ERR No such client\r\n"
    assert render_context_refusal("list").startswith(b"-ERR Can't execute 'client|list': only (P|S)SUBSCRIBE")
    assert format_addr("::1", 5) == "[::1]:5" and format_addr("10.0.0.1", 5) == "10.0.0.1:5"


@pytest.mark.parametrize(
    "args, error, given",
    [
        # valkey 8.1 checks CLIENT LIST's filters as CLIENT KILL's: its errors stand.
        (
            (b"CLIENT", b"KILL", b"TYPE", b"bogus"),
            "ERR Unknown client type 'bogus'",
            "ERR Unknown client type 'bogus'",
        ),
        ((b"CLIENT", b"LIST", b"ID", b"abc"), "ERR syntax error", "ERR syntax error"),
        ((b"CLIENT", b"KILL", b"SKIPME", b"maybe"), "ERR syntax error", "ERR syntax error"),
        # An older engine's CLIENT LIST knows only TYPE and ID: a filter amr reads is not an error.
        ((b"CLIENT", b"KILL", b"ADDR", b"1.2.3.4:5", b"SKIPME", b"yes"), "ERR syntax error", None),
    ],
)
def test_the_engines_errors_for_a_filter(args: tuple[bytes, ...], error: str, given: str | None) -> None:
    request = parse_client_request(args)
    assert request is not None
    assert choose_validation_error(request, error) == given


@pytest.mark.parametrize(
    "args, label",
    [
        ((b"CLIENT", b"SETNAME", b"x=y"), ("name", "x=y")),
        ((b"CLIENT", b"SETNAME", b""), ("name", "")),
        (
            (b"CLIENT", b"SETNAME", b"a b"),
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
        ),
        ((b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py(x_v1)"), ("lib-name", "redis-py(x_v1)")),
        (
            (b"CLIENT", b"SETINFO", b"Lib-Ver", b"a\nb"),
            b"-ERR Lib-Ver cannot contain spaces, newlines or special characters.\r\n",
        ),
        ((b"CLIENT", b"SETINFO", b"foo", b"x"), b"-ERR Unrecognized option 'foo'\r\n"),
    ],
)
def test_names_and_library_labels_as_the_engine_takes_them(args: tuple[bytes, ...], label: object) -> None:
    """EnterpriseCluster endpoints keep a client's name and library labels themselves (valkey 8.1's
    checks and messages)."""
    request = parse_client_request(args)
    assert request is not None and choose_label(request) == label


def test_getname_replies() -> None:
    assert render_name_reply("n", resp3=False) == b"$1\r\nn\r\n"
    assert render_name_reply("", resp3=False) == b"$-1\r\n" and render_name_reply("", resp3=True) == b"_\r\n"


@pytest.mark.parametrize(
    ("name", "first", "field"),
    [
        (b"", b"", "NULL"),
        (b"SUBSCRIBE", b"news", "subscribe"),
        (b"get", b"k", "get"),
        (b"CLIENT", b"LIST", "client|list"),
        (b"config", b"", "config"),  # its argument was too long to keep
    ],
)
def test_the_cmd_field_names_the_latest_command_as_the_engine_does(
    name: bytes, first: bytes, field: str
) -> None:
    assert render_command_field(name, first) == field
