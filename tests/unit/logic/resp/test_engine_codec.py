"""amr.logic.resp.engine_codec: the one RESP codec of amr's engine clients."""

from __future__ import annotations

import pytest
from redis._parsers.helpers import parse_info as redis_py_parse_info

from amr import errors
from amr.logic.resp.engine_codec import (
    encode_command,
    encode_commands,
    engine_error,
    is_error_reply,
    new_reply_parser,
    parse_info,
    redact,
    shape_admin_reply,
)
from amr.logic.resp.frames import render_command


def test_encoding_is_the_data_paths() -> None:
    assert encode_command(b"SET", b"k", b"") == render_command([b"SET", b"k", b""])
    assert (
        encode_command("EXPIRE", "k", 10, 1.5)
        == b"*4\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n10\r\n$3\r\n1.5\r\n"
    )
    assert encode_command("GET", "ключ") == render_command([b"GET", "ключ".encode()])
    assert encode_commands([("PING",), ("GET", "a")]) == encode_command("PING") + encode_command("GET", "a")


def test_replies_parse_incrementally() -> None:
    parser = new_reply_parser(decode=False)
    stream = b"+OK\r\n-WRONGPASS invalid\r\n$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n"
    replies = []
    for i in range(len(stream)):
        parser.feed(stream[i : i + 1])
        while (reply := parser.gets()) is not False:
            replies.append(reply)
    assert replies[0] == b"OK" and replies[2] == b"hello" and replies[3] == [1, None]
    assert is_error_reply(replies[1]) and not is_error_reply(replies[0])
    decoded = new_reply_parser(decode=True)
    decoded.feed(b"$5\r\nhello\r\n")
    assert decoded.gets() == "hello"


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("NOAUTH Authentication required.", errors.EngineAuthError),
        ("WRONGPASS invalid username-password pair or user is disabled.", errors.EngineAuthError),
        ("NOPERM User amr-gateway has no permissions to run the 'get' command", errors.EnginePermissionError),
        ("LOADING Valkey is loading the dataset in memory", errors.EngineLoadingError),
        ("BUSY Valkey is busy running a script.", errors.EngineBusyError),
        ("MOVED 3999 127.0.0.1:8501", errors.EngineRedirect),
        ("ASK 3999 127.0.0.1:8501", errors.EngineRedirect),
        ("TRYAGAIN Multiple keys request during rehashing of slot", errors.EngineTryAgain),
        ("CLUSTERDOWN The cluster is down", errors.EngineClusterDown),
        ("READONLY You can't write against a read only replica.", errors.EngineReadOnly),
        (
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            errors.EngineMasterDown,
        ),
        ("ERR unknown command 'NOPE'", errors.EngineError),
    ],
)
def test_error_replies_map_to_classes_in_the_one_tree(text: str, cls: type[errors.EngineError]) -> None:
    error = engine_error(text, "node at /s: GET failed")
    assert type(error) is cls and isinstance(error, errors.NodeError)
    assert error.code == text.split(" ", 1)[0]
    assert str(error) == f"node at /s: GET failed: {text}"


def test_secrets_never_reach_a_message() -> None:
    error = engine_error("ERR Error in ACL SETUSER modifier '>hunter2 on': Syntax error", "x", ["pw-1"])
    assert "hunter2" not in str(error)
    error = engine_error("ERR unknown command 'pw-1', with args beginning with:", "x", ["pw-1"])
    assert "pw-1" not in str(error) and "[redacted]" in str(error)
    assert redact("#" + "a" * 64 + " and >secret") == "[redacted] and [redacted]"


INFO = (
    "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.2\r\nmaster_port:8500\r\nmaster_link_status:up\r\n"
    "slave_repl_offset:12345\r\nmaster_replid:ab12\r\nused_cpu_sys:1.50\r\n"
    "slave0:ip=127.0.0.2,port=8501,state=online,offset=10,lag=0\r\n"
    "module:name=json,ver=10002,api=1,filters=0,usedby=[],using=[],options=[]\r\n"
    "db0:keys=3,expires=0,avg_ttl=0\r\nlist:a,b,,c\r\nflag:x=1,bare\r\ncmdstat_host:calls=1\r\n"
    "raw line\r\n\r\n"
)


def test_info_parses_as_redis_py_parses_it() -> None:
    assert parse_info(INFO) == redis_py_parse_info(INFO)


def test_admin_replies_are_shaped_as_redis_py_shaped_them() -> None:
    info = shape_admin_reply(("INFO", "replication"), INFO.encode())
    assert isinstance(info, dict) and info["slave_repl_offset"] == 12345
    assert shape_admin_reply(("SAVE",), "OK") is True
    assert shape_admin_reply((b"FLUSHALL", b"SYNC"), b"OK") is True
    assert shape_admin_reply(("BGSAVE", "SCHEDULE"), "Background saving scheduled") is True
    assert shape_admin_reply(("PING",), "PONG") is True
    assert shape_admin_reply(("CONFIG", "GET", "maxmemory"), ["maxmemory", "0"]) == ["maxmemory", "0"]
    assert shape_admin_reply(("ROLE",), ["master", 0, []]) == ["master", 0, []]
