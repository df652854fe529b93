"""The command the supervisor runs for a node: join amr's private network, ask the node's peers who is
primary, then exec valkey-server (amr.logic.ha.node_launch decides how and when).

``python -m amr.nodes.launch <valkey-server> <node directory>``. The node directory holds valkey.conf
and ``launch.json`` written by the node backend: the private network to join (amr.nodes.netns) and,
for a node with peers (an HA database), the peers to ask. A node's
first start asks nobody (it holds no data yet; its peers start at the same moment). The process
execs the engine, so the supervisor's pid is the engine's. It imports only the standard library,
amr.logic, amr.nodes.netns and the small amr.nodes.engine_sync client, so a start costs a few tens of
milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from amr.logic.ha.node_launch import BUSY, PeerView, choose_launch, describe_peers
from amr.logic.ha.replication import parse_replication_view
from amr.logic.security.node_credentials import HA_USER, REPLICATION_USER
from amr.nodes.engine_sync import ask_peer
from amr.nodes.netns import NamespaceError, enter

LAUNCH_FILE = "launch.json"
NODE_SECRETS_FILE = "node.secrets"
# Written before every exec, naming the engine binary: a node without it never ran, has no data to
# protect and starts at once.
STARTED_MARKER = ".started"
_PROBE_TIMEOUT = 0.5
_POLL_INTERVAL = 0.1
# How long a node waits for the private network's holder (started by the same supervisord).
_NETWORK_WAIT = 10.0


def probe_peer(host: str, port: int, user: str, password: str) -> PeerView:
    """A peer's replication view; BUSY if it is running but did not answer in time; None if it is
    not running or answers nothing usable (loading, refusing us)."""
    try:
        info = ask_peer(host, port, user, password, ("INFO", "replication"), _PROBE_TIMEOUT)
    except TimeoutError:
        return BUSY
    except (OSError, ValueError):
        return None
    return parse_replication_view(info.decode(errors="replace")) if isinstance(info, bytes) and info else None


def _secrets(directory: Path) -> dict[str, str]:
    """The node's own passwords, which the node backend writes into its directory (mode 0600): the
    replication user's, which the engine gets on its standard input, and the probe's (``amr-ha``).
    Empty for a node an older amr set up: it runs with what its valkey.conf says."""
    try:
        data = json.loads((directory / NODE_SECRETS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _exec_engine(server: str, args: list[str], replication_password: str) -> None:
    """Replace this process with the engine. The replication credentials go in through a pipe on
    its standard input (``valkey-server <conf> -`` reads config from both), so they are in no file
    and no process list."""
    if replication_password:
        read_end, write_end = os.pipe()
        os.write(write_end, f"primaryuser {REPLICATION_USER}\nprimaryauth {replication_password}\n".encode())
        os.close(write_end)
        os.dup2(read_end, 0)
        os.close(read_end)
        args = [*args, "-"]
    os.execv(server, args)


def main(argv: list[str]) -> None:
    server, directory = argv[0], Path(argv[1])
    conf = directory / "valkey.conf"
    args = [server, str(conf)]
    launch_file = directory / LAUNCH_FILE
    marker = directory / STARTED_MARKER
    launch = json.loads(launch_file.read_text()) if launch_file.exists() else {}
    if launch.get("private_network"):
        try:
            enter(Path(launch["private_network"]), _NETWORK_WAIT)
        except NamespaceError as e:
            print(f"amr launch: {e}; not starting", flush=True)
            sys.exit(1)
    secrets = _secrets(directory)
    if launch and marker.exists():
        host, own_port = str(launch["host"]), int(launch["port"])
        peers = [int(p) for p in launch.get("peers", [])]
        password = secrets.get("ha", "")
        started = time.monotonic()
        said = ""
        while peers:
            views = {p: probe_peer(host, p, HA_USER, password) for p in peers}
            waited_ms = (time.monotonic() - started) * 1000
            decision = choose_launch(
                own_port, views, bool(launch.get("cluster")), waited_ms, int(launch.get("rejoin_wait_ms", 0))
            )
            if decision.reason != said:
                print(f"amr launch: {decision.reason} (peers: {describe_peers(views)})", flush=True)
                said = decision.reason
            if not decision.wait:
                if decision.replica_of is not None:
                    args += ["--replicaof", host, str(decision.replica_of)]
                break
            time.sleep(_POLL_INTERVAL)
    # Which engine this start runs, so the control plane can tell when engine.server_binary changed.
    marker.write_text(server + "\n")
    os.chmod(marker, 0o600)
    _exec_engine(server, args, secrets.get("replication", ""))


if __name__ == "__main__":
    main(sys.argv[1:])
