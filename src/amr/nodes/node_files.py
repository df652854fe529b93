"""A local node's files: its directory ``AMR_HOME/nodes/<database>/<node>/`` with ``valkey.conf``,
what the launcher reads (its secrets and launch settings) and its supervisor program file, written
atomically (0600) only when they change, and found or deleted with the node.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from amr.errors import NodeError
from amr.files import write_atomic
from amr.logic.security.node_credentials import DatabaseCredentials
from amr.model.node import NodeSpec
from amr.nodes.launch import LAUNCH_FILE, NODE_SECRETS_FILE

# The RDB file valkey.conf names (dbfilename); a node loads it at start when AOF is off.
SNAPSHOT_NAME = "dump.rdb"

CONF_NAME = "valkey.conf"
LOG_NAME = "valkey.log"


def write_node_files(
    spec: NodeSpec,
    credentials: DatabaseCredentials,
    private_network: str,
    program_file: Path,
    program_text: str,
) -> tuple[bool, bool]:
    """Write the node's valkey.conf, launcher files and supervisor program file where they changed;
    return whether valkey.conf and the program file changed. ``credentials`` are the node's
    database's; ``private_network`` is the run directory of amr's private network ("" for none)."""
    node_dir = Path(spec.directory)
    node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(node_dir, 0o700)
    conf_changed = write_if_changed(node_dir / CONF_NAME, spec.config)
    # What the launcher needs in clear, for this database only: the replication password (the
    # engine gets it through its standard input, never in valkey.conf) and the probe's.
    write_if_changed(
        node_dir / NODE_SECRETS_FILE,
        json.dumps({"replication": credentials.replication, "ha": credentials.ha}) + "\n",
    )
    launch = {
        "host": spec.internal_host,
        "port": spec.port,
        "peers": list(spec.peers),
        "cluster": spec.cluster_mode,
        "rejoin_wait_ms": spec.rejoin_wait_ms,
        # The node joins amr's private network first (amr.nodes.netns); "" runs it on the host's.
        "private_network": private_network,
    }
    write_if_changed(node_dir / LAUNCH_FILE, json.dumps(launch, sort_keys=True) + "\n")
    program_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    program_changed = write_if_changed(program_file, program_text)
    return conf_changed, program_changed


def check_under_nodes_dir(nodes_dir: Path, node_dir: Path) -> None:
    """Raise NodeError unless ``node_dir`` lies under ``nodes_dir`` (and is not it): the guard
    before deleting a node's directory."""
    nodes = nodes_dir.resolve()
    target = node_dir.resolve()
    if target == nodes or nodes not in target.parents:
        raise NodeError(f"refusing to delete {node_dir}: it is not a node directory under {nodes}")


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace ``path`` (mode 0600) with ``text`` unless it already holds it."""
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


def node_directories(nodes_dir: Path) -> dict[str, str]:
    """Every ``nodes/<database>/<node>`` directory under ``nodes_dir``, by node name."""
    out = {}
    try:
        databases = [d for d in nodes_dir.iterdir() if d.is_dir()]
    except FileNotFoundError:
        return {}
    for database in databases:
        try:
            out.update({n.name: str(n) for n in database.iterdir() if n.is_dir()})
        except FileNotFoundError:
            continue  # removed meanwhile
    return out


def remove_tree(path: Path) -> None:
    """Delete a directory and everything in it; an absent one is fine."""
    if path.exists():
        shutil.rmtree(path)


def configured_socket(conf: Path) -> str | None:
    """The ``unixsocket`` a valkey.conf names, if any (to delete it with the node)."""
    try:
        text = conf.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "unixsocket":
            return parts[1].strip().strip('"')
    return None
