"""amr's private network: a network namespace of its own where every node's TCP ports live.

Nodes need TCP among themselves (replication, the cluster bus, MIGRATE), and nothing else does: the
gateway, the control plane and `amr ha` reach them over unix sockets, which are files and so cross
network namespaces. So the nodes run in a network namespace that only amr's processes enter. Their
ports exist only there: no other local user (nor a tenant) can connect to a node, its cluster bus or
replication, and nobody can bind a node's port first and wait for a node or a replica to send it
credentials. A node's port number no longer collides with the gateway's listener on the host either.

The namespace is held by the ``netns`` supervisor program (``python -m amr.nodes.netns <home>``), a
process that does nothing but exist. It records its pid in ``run/netns.pid``; the node launcher joins
its namespace before it execs the engine (``enter``). When amr runs as root the holder creates a plain
network namespace; otherwise an unprivileged user namespace too (mapping amr's user to itself), where
amr holds the capabilities it needs for its own network and nothing on the host.

A holder that is restarted while nodes still run joins their namespace again instead of making a new
one, so nodes started later can reach the nodes started before.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PID_FILE = "netns.pid"
HOLDER_MODULE = "amr.nodes.netns"
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


class NamespaceError(OSError):
    """The private network cannot be made or joined."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    if _libc().unshare(flags) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(err, f"unshare: {os.strerror(err)}")


def _setns(path: str, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc().setns(fd, flags) != 0:
            err = ctypes.get_errno()
            raise NamespaceError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _ns_id(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def _write_id_maps(uid: int, gid: int) -> None:
    # An unprivileged user namespace must deny setgroups before it may write its gid map.
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


def create_private_network() -> None:
    """Move this process into a new network namespace with its loopback up (and, unless root, a new
    user namespace mapping the current user to itself). Raises NamespaceError if the machine does
    not allow it (user namespaces disabled, seccomp)."""
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        _unshare(CLONE_NEWNET)
    else:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        _write_id_maps(uid, gid)
    _loopback_up()


def join_namespace_of(pid: int | str) -> None:
    """Move this (single-threaded) process into the network namespace of ``pid``, and into its user
    namespace first when that differs from ours (amr not running as root)."""
    if _ns_id(pid, "user") != _ns_id("self", "user"):
        _setns(f"/proc/{pid}/ns/user", CLONE_NEWUSER)
    if _ns_id(pid, "net") != _ns_id("self", "net"):
        _setns(f"/proc/{pid}/ns/net", CLONE_NEWNET)


def private_network_supported() -> str:
    """ "" if this machine lets amr create its private network, else why not (tried in a child
    process, so this one stays where it is)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code only
        try:
            create_private_network()
        except OSError as e:
            os._exit(10 + min(e.errno or 0, 200))
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return ""
    errno = code - 10
    return f"creating a network namespace failed: {os.strerror(errno) if errno > 0 else f'exit {code}'}"


def holder_pid(run_dir: Path) -> int | None:
    """The pid of the live holder of ``run_dir``'s private network, or None (not started yet, or a
    pid file left by a holder that is gone: its pid must run this module in another namespace)."""
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if HOLDER_MODULE.encode() not in cmdline:
            return None
        if _ns_id(pid, "net") == _ns_id("self", "net"):
            return None  # alive, but it has not made its namespace yet
    except (OSError, ValueError):
        return None
    return pid


def enter(run_dir: Path, timeout: float) -> None:
    """Join the private network of ``run_dir``'s holder, waiting up to ``timeout`` seconds for it
    (at ``amr serve`` the nodes may start before it). Raises NamespaceError if there is none."""
    deadline = time.monotonic() + timeout
    while True:
        pid = holder_pid(run_dir)
        if pid is not None:
            join_namespace_of(pid)
            return
        if time.monotonic() > deadline:
            raise NamespaceError(
                0,
                f"no private network to join: the netns program did not start (no live {run_dir / PID_FILE})",
            )
        time.sleep(0.05)


def _running_node_in_private_network(nodes_dir: Path) -> int | None:
    """A live node (a process whose working directory is under ``nodes_dir``) in a network namespace
    other than this process's: the namespace a previous holder made."""
    own = _ns_id("self", "net")
    prefix = str(nodes_dir.resolve()) + os.sep
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd").startswith(prefix) and _ns_id(entry.name, "net") != own:
                return int(entry.name)
        except OSError:
            continue
    return None


def hold(home: Path) -> None:
    """Make (or join again) amr's private network, publish this process's pid, and wait forever."""
    run_dir = home / "run"
    survivor = _running_node_in_private_network(home / "nodes")
    if survivor is not None:
        join_namespace_of(survivor)
        print(f"amr netns: joined the private network of running node process {survivor}", flush=True)
    else:
        create_private_network()
        print("amr netns: created the private network of the nodes", flush=True)
    tmp = run_dir / f".{PID_FILE}.{os.getpid()}"
    tmp.write_text(f"{os.getpid()}\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, run_dir / PID_FILE)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def main(argv: list[str]) -> None:
    home = Path(argv[0])
    try:
        hold(home)
    except OSError as e:
        print(f"amr netns: cannot make the private network of the nodes: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        with contextlib.suppress(OSError):
            if (home / "run" / PID_FILE).read_text().strip() == str(os.getpid()):
                (home / "run" / PID_FILE).unlink()


if __name__ == "__main__":
    main(sys.argv[1:])
