"""The supervisord renderers produce configs supervisor parses the way we mean."""

from __future__ import annotations

import configparser
import shlex

import pytest

from amr.logic.render.supervisor_conf import (
    render_node_program,
    render_supervisord_conf,
    supervisor_program_name,
)
from amr.model.node import NodeSpec, Role


def _parse(text: str) -> configparser.RawConfigParser:
    # Supervisor's parser: RawConfigParser with ';' and '#' inline comments, then %-expansion.
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    parser.read_string(text)
    return parser


def _get(parser: configparser.RawConfigParser, section: str, option: str) -> str:
    return parser.get(section, option) % {}  # what supervisor's expand() does with no names


def _main(**kw: object) -> str:
    args: dict[str, object] = dict(
        home="/home/u/.amr",
        python="/opt/venv/bin/python",
        include_dir="/home/u/.amr/supervisor/conf.d",
        socket="/home/u/.amr/supervisor/supervisor.sock",
        pidfile="/home/u/.amr/supervisor/logs/supervisord.pid",
        logfile="/home/u/.amr/supervisor/logs/supervisord.log",
    )
    args.update(kw)
    return render_supervisord_conf(**args)  # type: ignore[arg-type]


def _spec(**kw: object) -> NodeSpec:
    args: dict[str, object] = dict(
        name="db1-s0-p",
        database_uid="db1",
        shard=0,
        role=Role.PRIMARY,
        directory="/home/u/.amr/nodes/db1/db1-s0-p",
        socket="/home/u/.amr/run/db1-s0-p.sock",
        internal_host="127.0.0.2",
        port=10001,
        config="port 10001\n",
    )
    args.update(kw)
    return NodeSpec(**args)  # type: ignore[arg-type]


def test_main_conf_sections_and_options() -> None:
    p = _parse(_main())
    assert _get(p, "unix_http_server", "file") == "/home/u/.amr/supervisor/supervisor.sock"
    assert _get(p, "unix_http_server", "chmod") == "0700"
    assert _get(p, "supervisord", "pidfile") == "/home/u/.amr/supervisor/logs/supervisord.pid"
    assert _get(p, "supervisord", "logfile") == "/home/u/.amr/supervisor/logs/supervisord.log"
    assert not p.has_option("supervisord", "nodaemon")
    assert (
        _get(p, "rpcinterface:supervisor", "supervisor.rpcinterface_factory")
        == "supervisor.rpcinterface:make_main_rpcinterface"
    )
    assert _get(p, "supervisorctl", "serverurl") == "unix:///home/u/.amr/supervisor/supervisor.sock"
    assert _get(p, "include", "files") == "/home/u/.amr/supervisor/conf.d/*.conf"


@pytest.mark.parametrize("program", ["api", "gateway", "ha"])
def test_core_programs(program: str) -> None:
    p = _parse(_main())
    section = f"program:{program}"
    assert shlex.split(_get(p, section, "command")) == [
        "/opt/venv/bin/python",
        "-m",
        "amr",
        program,
        "--home",
        "/home/u/.amr",
    ]
    assert _get(p, section, "autostart") == "true"
    assert _get(p, section, "autorestart") == "true"
    assert _get(p, section, "startsecs") == "1"
    assert _get(p, section, "stopasgroup") == "true"
    assert _get(p, section, "killasgroup") == "true"
    assert _get(p, section, "redirect_stderr") == "true"
    assert _get(p, section, "stdout_logfile") == f"/home/u/.amr/logs/{program}.log"
    assert _get(p, section, "stdout_logfile_maxbytes")
    assert _get(p, section, "stdout_logfile_backups")


def test_core_programs_can_be_left_out() -> None:
    p = _parse(_main(include_core_programs=False))
    assert not [s for s in p.sections() if s.startswith("program:")]
    assert p.has_section("include")


def test_awkward_paths_survive_quoting() -> None:
    home = "/tmp/my amr's 100% home"
    p = _parse(_main(home=home, python="/opt/py thon/bin/python"))
    assert shlex.split(_get(p, "program:api", "command")) == [
        "/opt/py thon/bin/python",
        "-m",
        "amr",
        "api",
        "--home",
        home,
    ]
    assert _get(p, "program:api", "stdout_logfile") == f"{home}/logs/api.log"


@pytest.mark.parametrize(
    "kw",
    [
        {"home": "/tmp/a\nb"},
        {"socket": "/tmp/a ;b/s.sock"},
        {"pidfile": "/tmp/x #y/pid"},
        {"include_dir": "/tmp/with space/conf.d"},
    ],
)
def test_unrepresentable_paths_are_refused(kw: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        _main(**kw)


def test_node_program() -> None:
    spec = _spec()
    text = render_node_program(spec, "/opt/valkey/bin/valkey-server", spec.directory + "/valkey.log")
    p = _parse(text)
    assert p.sections() == ["program:node-db1-s0-p"]
    s = "program:node-db1-s0-p"
    assert shlex.split(_get(p, s, "command")) == [
        "/opt/valkey/bin/valkey-server",
        "/home/u/.amr/nodes/db1/db1-s0-p/valkey.conf",
    ]
    assert _get(p, s, "directory") == spec.directory
    expected = {
        "autostart": "true",
        "autorestart": "true",
        "startsecs": "0",
        "startretries": "3",
        "stopsignal": "TERM",
        "stopwaitsecs": "10",
        "redirect_stderr": "true",
        "stdout_logfile": "/home/u/.amr/nodes/db1/db1-s0-p/valkey.log",
    }
    for option, value in expected.items():
        assert _get(p, s, option) == value, option


def test_node_program_quotes_its_paths() -> None:
    spec = _spec(directory="/tmp/100% sure/n1")
    p = _parse(render_node_program(spec, "/opt/v k/valkey-server", "/tmp/100% sure/n1/valkey.log"))
    s = "program:node-db1-s0-p"
    assert shlex.split(_get(p, s, "command")) == ["/opt/v k/valkey-server", "/tmp/100% sure/n1/valkey.conf"]
    assert _get(p, s, "directory") == "/tmp/100% sure/n1"


def test_program_name() -> None:
    assert supervisor_program_name("db1-s0-p") == "node-db1-s0-p"
    for bad in ["", "a:b", "a b", "../x", "a/b", "-x"]:
        with pytest.raises(ValueError):
            supervisor_program_name(bad)


def test_gateway_workers_are_programs_of_their_own() -> None:
    p = _parse(_main(gateway_workers=3))
    gateways = sorted(s for s in p.sections() if s.startswith("program:gateway"))
    assert gateways == ["program:gateway", "program:gateway-1", "program:gateway-2"]
    assert not p.has_option("program:gateway", "environment")
    for i in (1, 2):
        section = f"program:gateway-{i}"
        assert shlex.split(_get(p, section, "command"))[2:4] == ["amr", "gateway"]
        assert _get(p, section, "environment") == f'AMR_GATEWAY_WORKER_INDEX="{i}"'
        assert _get(p, section, "autorestart") == "true"
        assert _get(p, section, "stdout_logfile") == f"/home/u/.amr/logs/gateway-{i}.log"


def test_one_gateway_worker_is_the_gateway_program_alone() -> None:
    p = _parse(_main(gateway_workers=1))
    assert [s for s in p.sections() if s.startswith("program:gateway")] == ["program:gateway"]


def test_the_private_network_holder_starts_first_with_or_without_core_programs() -> None:
    from amr.logic.render.supervisor_conf import render_supervisord_conf

    for core in (True, False):
        text = render_supervisord_conf(
            home="/h", python="/venv/bin/python", include_dir="/h/supervisor/programs", socket="/h/s.sock",
            pidfile="/h/s.pid", logfile="/h/logs/s.log", include_core_programs=core, private_network=True,
        )  # fmt: skip
        section = text.split("[program:netns]", 1)[1].split("\n\n", 1)[0]
        assert "command = /venv/bin/python -m amr.nodes.netns /h" in section
        assert "priority = 1" in section
        assert "autorestart = true" in section
    plain = render_supervisord_conf(
        home="/h", python="/p", include_dir="/h/i", socket="/h/s", pidfile="/h/p", logfile="/h/l",
    )  # fmt: skip
    assert "[program:netns]" not in plain
