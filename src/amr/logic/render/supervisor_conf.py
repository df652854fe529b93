"""Rendering supervisord configuration: the main supervisord.conf and one program file per node.

Pure text rendering, no I/O. Supervisor reads these files with its own ``RawConfigParser`` subclass,
which treats `` ;`` and `` #`` as the start of an inline comment, expands ``%(name)s`` in every value and
splits ``command`` with ``shlex``. So every value is checked (no line breaks, no inline-comment markers),
``%`` is doubled, and command arguments are shell-quoted.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from amr.model.node import NodeSpec

# Supervisor program names also become file names and XML-RPC names; ':' would split a namespec.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_INLINE_COMMENT = re.compile(r"\s[;#]")

CORE_PROGRAMS: tuple[str, ...] = ("api", "gateway", "ha", "monitord")
"""The long-running amr processes that the main supervisord.conf runs besides the nodes."""

NODE_PROGRAM_PREFIX = "node-"

NETNS_PROGRAM = "netns"
"""The program that holds the nodes' private network namespace (amr.nodes.netns)."""

_LOG_MAX_BYTES = "10MB"
_LOG_BACKUPS = 3


def supervisor_program_name(node_name: str) -> str:
    """Decide the supervisor program (and group) name of a node: ``node-<name>``.

    Raises ValueError if the node name is not safe as a program and file name.
    """
    if not _SAFE_NAME.match(node_name):
        raise ValueError(f"node name {node_name!r} is not safe as a supervisor program name")
    return NODE_PROGRAM_PREFIX + node_name


def _value(text: str, what: str) -> str:
    """Make ``text`` safe as one supervisor ini value, or raise ValueError if it cannot be."""
    if any(c in text for c in "\r\n\0"):
        raise ValueError(f"{what} contains a line break or NUL: {text!r}")
    if _INLINE_COMMENT.search(text):
        raise ValueError(f"{what} contains ' ;' or ' #', which supervisor reads as a comment: {text!r}")
    if text != text.strip():
        raise ValueError(f"{what} has leading or trailing whitespace: {text!r}")
    return text.replace("%", "%%")


def _command(args: list[str], what: str) -> str:
    """Render a command line that supervisor's ``shlex.split`` turns back into ``args``."""
    return _value(" ".join(shlex.quote(a) for a in args), what)


GATEWAY_WORKER_ENV = "AMR_GATEWAY_WORKER_INDEX"
"""The environment variable that tells a gateway process its worker index (0 when unset)."""


def gateway_program_name(worker: int) -> str:
    """Decide the supervisor program of gateway worker ``worker``: ``gateway``, then ``gateway-1``..."""
    return "gateway" if worker <= 0 else f"gateway-{worker}"


def _core_program(name: str, python: str, home: str, program: str = "", worker: int = 0) -> str:
    program = program or name
    log = posixpath.join(home, "logs", f"{program}.log")
    environment = [f'environment = {GATEWAY_WORKER_ENV}="{int(worker)}"'] if worker > 0 else []
    return "\n".join(
        [
            f"[program:{program}]",
            f"command = {_command([python, '-m', 'amr', name, '--home', home], f'{name} command')}",
            f"directory = {_value(home, 'home')}",
            *environment,
            "autostart = true",
            "autorestart = true",
            "startsecs = 1",
            "startretries = 10",
            "stopsignal = TERM",
            "stopwaitsecs = 15",
            "stopasgroup = true",
            "killasgroup = true",
            "redirect_stderr = true",
            f"stdout_logfile = {_value(log, f'{name} log file')}",
            f"stdout_logfile_maxbytes = {_LOG_MAX_BYTES}",
            f"stdout_logfile_backups = {_LOG_BACKUPS}",
            "",
        ]
    )


def render_supervisord_conf(
    home: str,
    python: str,
    include_dir: str,
    socket: str,
    pidfile: str,
    logfile: str,
    *,
    include_core_programs: bool = True,
    minfds: int = 1024,
    gateway_workers: int = 1,
    private_network: bool = False,
) -> str:
    """Render the main supervisord.conf for one AMR_HOME.

    ``minfds`` is the open-file limit supervisord raises itself (and so every child) to: the gateway
    holds two descriptors per client connection and a node one per client, so the SKUs' connection
    limits (up to 200,000) need far more than the usual 1024.

    It decides: the XML-RPC unix socket (mode 0700, the only way to control supervisord), the pid and
    log files, the programs in ``CORE_PROGRAMS`` (``<python> -m amr <program> --home <home>``, logs
    in ``<home>/logs/<program>.log``) and an ``[include]`` of ``<include_dir>/*.conf``, where each node
    gets one program file. ``nodaemon`` is not set: the caller passes ``-n`` to run in the foreground.

    ``gateway_workers`` > 1 adds programs ``gateway-1`` .. ``gateway-<N-1>``: the same command with
    ``AMR_GATEWAY_WORKER_INDEX`` set, logging to ``<home>/logs/gateway-<i>.log``. Each is its own
    program, so supervisord restarts a crashed worker on its own while the others keep serving the
    ports they share (SO_REUSEPORT), and stopping supervisord stops them all.

    ``private_network`` adds the ``netns`` program, which holds the private network namespace the
    nodes run in (``python -m amr.nodes.netns <home>``, see ``render_netns_program``), with the core
    programs or without them.

    ``include_core_programs=False`` leaves those out; tests of the node backend use it
    to run a supervisord that manages nodes only.

    Raises ValueError for paths supervisor cannot represent (line breaks, `` ;``/`` #``, and any
    whitespace in ``include_dir``, because supervisor splits ``[include] files`` on whitespace).
    """
    if any(c.isspace() for c in include_dir):
        raise ValueError(f"include_dir {include_dir!r} contains whitespace, which supervisor cannot include")
    childlogdir = posixpath.dirname(logfile) or "."
    sections = [
        "; Written by amr; changes are overwritten when supervisord is started.",
        "",
        "[unix_http_server]",
        f"file = {_value(socket, 'socket')}",
        "chmod = 0700",
        "",
        "[supervisord]",
        f"pidfile = {_value(pidfile, 'pidfile')}",
        f"logfile = {_value(logfile, 'logfile')}",
        f"logfile_maxbytes = {_LOG_MAX_BYTES}",
        f"logfile_backups = {_LOG_BACKUPS}",
        "loglevel = info",
        f"childlogdir = {_value(childlogdir, 'childlogdir')}",
        f"directory = {_value(home, 'home')}",
        "umask = 077",
        f"minfds = {int(minfds)}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl = unix://{_value(socket, 'socket')}",
        "",
    ]
    if include_core_programs:
        for name in CORE_PROGRAMS:
            sections.append(_core_program(name, python, home))
        for worker in range(1, max(int(gateway_workers), 1)):
            sections.append(_core_program("gateway", python, home, gateway_program_name(worker), worker))
    if private_network:
        sections.append(render_netns_program(python, home))
    sections += [
        "[include]",
        f"files = {_value(posixpath.join(include_dir, '*.conf'), 'include_dir')}",
        "",
    ]
    return "\n".join(sections)


def render_netns_program(python: str, home: str) -> str:
    """Render ``[program:netns]``: the holder of the nodes' private network. It starts first
    (``priority``) and is restarted whenever it exits; a restarted holder joins the namespace of the
    nodes still running (amr.nodes.netns)."""
    log = posixpath.join(home, "logs", f"{NETNS_PROGRAM}.log")
    return "\n".join(
        [
            f"[program:{NETNS_PROGRAM}]",
            f"command = {_command([python, '-m', 'amr.nodes.netns', home], 'netns command')}",
            f"directory = {_value(home, 'home')}",
            "priority = 1",
            "autostart = true",
            "autorestart = true",
            "startsecs = 0",
            "startretries = 10",
            "stopsignal = TERM",
            "stopwaitsecs = 5",
            "redirect_stderr = true",
            f"stdout_logfile = {_value(log, 'netns log file')}",
            f"stdout_logfile_maxbytes = {_LOG_MAX_BYTES}",
            f"stdout_logfile_backups = {_LOG_BACKUPS}",
            "",
        ]
    )


def render_node_program(spec: NodeSpec, server_binary: str, log_file: str, python: str = "") -> str:
    """Render the supervisor program file of one node: ``[program:node-<name>]``.

    With ``python``, the command is amr's node launcher (``<python> -m amr.nodes.launch <server>
    <directory>``), which asks the node's peers who is primary and then execs the server, so a
    restarted primary never comes back as an empty primary its replica would copy. Without it, the
    server is run directly with the node's valkey.conf.

    It decides how the node's process is kept alive: started at once (``startsecs=0`` so a node counts
    as started as soon as it is spawned; readiness is checked with PING, not by waiting), restarted
    whenever it exits, stopped with TERM (valkey saves and exits cleanly) and killed with its group
    after 10 s. valkey-server logs to stdout (``logfile ""``), which supervisor writes to ``log_file``.
    """
    name = supervisor_program_name(spec.name)
    conf = posixpath.join(spec.directory, "valkey.conf")
    if python:
        args = [python, "-m", "amr.nodes.launch", server_binary, spec.directory]
    else:
        args = [server_binary, conf]
    return "\n".join(
        [
            f"; Written by amr for node {spec.name} (database {spec.database_uid}, shard {spec.shard}).",
            f"[program:{name}]",
            f"command = {_command(args, 'node command')}",
            f"directory = {_value(spec.directory, 'node directory')}",
            "autostart = true",
            "autorestart = true",
            "startsecs = 0",
            "startretries = 3",
            "stopsignal = TERM",
            "stopwaitsecs = 10",
            "killasgroup = true",
            "redirect_stderr = true",
            f"stdout_logfile = {_value(log_file, 'node log file')}",
            f"stdout_logfile_maxbytes = {_LOG_MAX_BYTES}",
            f"stdout_logfile_backups = {_LOG_BACKUPS}",
            "",
        ]
    )
