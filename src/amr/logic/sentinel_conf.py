"""Rendering the Sentinel that fails over non-clustered HA databases: its first sentinel.conf, where its
files live, and which HA settings it can work with.

One Sentinel runs per host (the ``sentinel`` supervisor program). It listens on no TCP port at all, only
on a unix socket (mode 0700) in its own directory, where amr's reconciler tells it what to monitor.
amr writes sentinel.conf once; from then on Sentinel rewrites it with its state (monitors, epochs, known
replicas), which must survive restarts, so amr never overwrites it.
"""

from __future__ import annotations

import posixpath

from amr.errors import ConfigError

SENTINEL_PROGRAM = "sentinel"
"""The supervisor program (and log file name) of the host's Sentinel."""

SENTINELS_PER_HOST = 1

_CONF_NAME = "sentinel.conf"
_SOCKET_NAME = "sentinel.sock"


def sentinel_conf_path(sentinel_dir: str) -> str:
    """Where the Sentinel's config file lives."""
    return posixpath.join(sentinel_dir, _CONF_NAME)


def sentinel_socket_path(sentinel_dir: str) -> str:
    """Where the Sentinel's unix socket lives (its only listener)."""
    return posixpath.join(sentinel_dir, _SOCKET_NAME)


def validate_sentinel_settings(quorum: int, down_after_ms: int, failover_timeout_ms: int) -> None:
    """Decide whether Sentinel can work with these ``ha`` settings; raise ConfigError saying what to
    change if not. One Sentinel runs per host, so a quorum above the number of Sentinels could never be
    reached and no failover would ever happen."""
    if quorum < 1 or quorum > SENTINELS_PER_HOST:
        raise ConfigError(
            f"ha.sentinel_quorum is {quorum}, but amr runs {SENTINELS_PER_HOST} Sentinel per host, so "
            f"a quorum other than {SENTINELS_PER_HOST} could never be reached and no failover would "
            f"happen; set ha.sentinel_quorum = {SENTINELS_PER_HOST}"
        )
    if down_after_ms < 1:
        raise ConfigError(f"ha.down_after_ms is {down_after_ms}; it must be a positive number of ms")
    if failover_timeout_ms < 1:
        raise ConfigError(
            f"ha.failover_timeout_ms is {failover_timeout_ms}; it must be a positive number of ms"
        )


def _quote(text: str, what: str) -> str:
    """A valkey config argument that the engine's parser (sdssplitargs) reads back as ``text``."""
    if any(c in text for c in "\r\n\0"):
        raise ValueError(f"{what} contains a line break or NUL: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_sentinel_conf(sentinel_dir: str) -> str:
    """The first sentinel.conf of a host's Sentinel: no TCP port, a unix socket (0700) in
    ``sentinel_dir``, its working directory there too, and logs on stdout (the supervisor writes them
    to ``logs/sentinel.log``). It monitors nothing yet: the reconciler adds a monitor per database.

    Raises ValueError for a directory the config format cannot hold (a line break).
    """
    return "\n".join(
        [
            "# Written by amr once; Sentinel rewrites this file with its state, so edits may be lost.",
            "port 0",
            f"unixsocket {_quote(sentinel_socket_path(sentinel_dir), 'sentinel socket')}",
            "unixsocketperm 700",
            f"dir {_quote(sentinel_dir, 'sentinel directory')}",
            'logfile ""',
            "daemonize no",
            # Monitors name IP addresses only; scripts could run anything.
            "sentinel resolve-hostnames no",
            "sentinel deny-scripts-reconfig yes",
            "",
        ]
    )
