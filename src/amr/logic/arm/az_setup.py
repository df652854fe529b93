"""What the Azure CLI (az) needs to work against an amr: the steps ``amr az-setup`` prints or runs.

az finds everything else by itself once it has amr's management endpoint: ``az cloud register``
reads amr's cloud metadata document (``/metadata/endpoints``), which names amr's token service as the
login endpoint. Three things it cannot find: that it must trust amr's CA (``REQUESTS_CA_BUNDLE``; az
has no setting for it), that MSAL must not ask login.microsoftonline.com to validate the authority
(``core.instance_discovery=false``), and the service principal's secret, which az reads from stdin
(``--password=@-``) so that it never appears in a command line. Not ``-p @-``: az replaces ``@-``
with the secret before parsing, and a secret starting with ``-`` then reads as an option.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from amr.model.tenancy import CLOUD_NAME


@dataclass(frozen=True)
class AzSetup:
    """The az commands (argument lists, without the leading ``az``) that point az at one amr."""

    ca_file: str  # "" when amr's certificate chains to a CA the system already trusts
    config: tuple[str, ...]
    register: tuple[str, ...]
    update: tuple[str, ...]  # instead of register when the cloud is already registered
    registered: tuple[str, ...]  # succeeds when the cloud is already registered
    activate: tuple[str, ...]
    login: tuple[str, ...]  # the client secret comes on stdin


def plan_az_setup(
    endpoint: str, ca_file: str, client_id: str, tenant_id: str, cloud_name: str = CLOUD_NAME
) -> AzSetup:
    """The az commands for the amr at ``endpoint`` (its management API, e.g. https://localhost:8443)
    and its admin principal. Telemetry goes off too: it is the one thing az would send elsewhere."""
    endpoint = endpoint.rstrip("/")
    quiet = ("--only-show-errors",)
    cloud = ("-n", cloud_name, "--endpoint-resource-manager", endpoint, *quiet)
    return AzSetup(
        ca_file=ca_file,
        config=("config", "set", "core.instance_discovery=false", "core.collect_telemetry=false", *quiet),
        register=("cloud", "register", *cloud),
        update=("cloud", "update", *cloud),
        registered=("cloud", "show", "-n", cloud_name, "-o", "none"),
        activate=("cloud", "set", "-n", cloud_name, *quiet),
        login=(
            "login", "--service-principal", "-u", client_id, "--tenant", tenant_id, "--password=@-", "-o", "none",
            *quiet,
        ),
    )  # fmt: skip


def _az(args: tuple[str, ...]) -> str:
    return shlex.join(("az", *args))


def render_az_ca_export(setup: AzSetup) -> str:
    """The shell line that makes az (and every requests-based tool in that shell) trust amr's CA;
    "" when no line is needed."""
    return f"export REQUESTS_CA_BUNDLE={shlex.quote(setup.ca_file)}" if setup.ca_file else ""


def render_az_setup_script(setup: AzSetup, credentials_file: str) -> str:
    """The setup as a POSIX shell script (``eval "$(amr az-setup)"`` runs it): safe to run again,
    and free of the client secret, which it reads from ``credentials_file`` when az logs in."""
    read_secret = shlex.join(
        (
            "python3",
            "-c",
            'import json,sys; print(json.load(open(sys.argv[1]))["clientSecret"])',
            credentials_file,
        )
    )
    lines = ['# az against amr: run in the shell you use az from (or: eval "$(amr az-setup)").']
    export = render_az_ca_export(setup)
    if export:
        lines += [
            "# az trusts amr's CA (only it, in this shell: install az extensions before this line)",
            export,
        ]
    lines += [
        "# MSAL asks no one else about amr's token service; no telemetry leaves this machine",
        _az(setup.config),
        "# the cloud: az reads amr's endpoints from its metadata document",
        f"if {_az(setup.registered)} 2>/dev/null; then {_az(setup.update)}; else {_az(setup.register)}; fi",
        _az(setup.activate),
        "# the local admin principal; its secret goes to az on stdin, never on a command line",
        f"{read_secret} | {_az(setup.login)}",
    ]
    return "\n".join(lines) + "\n"
