"""``amr az-setup``: point the Azure CLI (az) at this amr.

Without flags it prints the setup as a shell script (``eval "$(amr az-setup)"`` runs it in the
current shell); ``--apply`` runs the az commands itself and prints the one line it cannot apply for
the user's shell, the CA export. The client secret reaches az on stdin only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from typing import Any

from amr.cli.context import Context
from amr.cli.errors import CliError
from amr.cli.output import RawText
from amr.logic.arm.az_setup import AzSetup, plan_az_setup, render_az_ca_export, render_az_setup_script
from amr.model.tenancy import CLOUD_NAME

AZ_TIMEOUT = 120  # seconds for one az command: az's first start compiles its command index


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "az-setup",
        help="Print (or --apply) the az commands that point the Azure CLI at this amr.",
        description="Print the shell commands that make the Azure CLI (az) work against this amr: trust "
        "its CA, register it as the cloud 'amr' (az discovers the endpoints), log in as its admin "
        'principal. Run them with: eval "$(amr az-setup)".',
    )
    p.add_argument("--apply", action="store_true", help="Run the az commands now (az must be on PATH).")
    p.add_argument("--cloud-name", default=CLOUD_NAME, help=f"The az cloud's name (default {CLOUD_NAME}).")
    p.add_argument("--az", default="az", help="The az program to run with --apply (default: az on PATH).")
    p.set_defaults(func=az_setup, _parser=p)


def _plan(ctx: Context, cloud_name: str) -> AzSetup:
    c = ctx.credentials
    return plan_az_setup(c.management_endpoint, ctx.ca_file or "", c.client_id, c.tenant_id, cloud_name)


def az_setup(ctx: Context, args: argparse.Namespace) -> Any:
    setup = _plan(ctx, args.cloud_name)
    if not args.apply:
        return RawText(render_az_setup_script(setup, str(ctx.settings.credentials_file)))
    az = shutil.which(args.az)
    if az is None:
        raise CliError(
            f"cannot find '{args.az}': install the Azure CLI (pip install azure-cli) or name it with --az."
        )
    env = dict(os.environ)
    if setup.ca_file:
        env["REQUESTS_CA_BUNDLE"] = setup.ca_file

    def run(argv: tuple[str, ...], secret: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return ctx.run_process(
                [az, *argv], input=secret or "", env=env, capture_output=True, text=True, timeout=AZ_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CliError(f"az {argv[0]} {argv[1]} did not complete: {e}") from e

    def check(argv: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode != 0:
            # az's own message names what went wrong; it never holds the secret, which went on stdin.
            raise CliError(f"az {argv[0]} {argv[1]} failed: {result.stderr.strip() or result.stdout.strip()}")

    check(setup.config, run(setup.config))
    cloud = setup.update if run(setup.registered).returncode == 0 else setup.register
    check(cloud, run(cloud))
    check(setup.activate, run(setup.activate))
    check(setup.login, run(setup.login, ctx.credentials.client_secret))
    export = render_az_ca_export(setup)
    done = f"az now uses the cloud '{args.cloud_name}' and is logged in to amr ({ctx.credentials.management_endpoint}).\n"
    if export:
        done += f"Run this in each shell you use az from, so that az trusts amr's CA:\n{export}\n"
    return RawText(done)
