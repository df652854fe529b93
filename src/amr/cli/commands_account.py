"""``amr account``: the local subscription and principal (az account show|get-access-token)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from amr.cli.common import add_output_args
from amr.cli.context import Context
from amr.model.tenancy import SUBSCRIPTION_DISPLAY_NAME


def register(subparsers: Any) -> None:
    account = subparsers.add_parser("account", help="Show the local subscription and get access tokens.")
    add_output_args(account)
    sub = account.add_subparsers(dest="account_command", metavar="<command>")
    sub.required = True

    p = sub.add_parser("show", help="Show the local subscription and principal.")
    add_output_args(p)
    p.set_defaults(func=show, _parser=p)

    p = sub.add_parser("get-access-token", help="Get a bearer token for the amr management API.")
    p.add_argument("--resource", help="Ignored; accepted for az compatibility.")
    p.add_argument("--scope", nargs="*", help="Ignored; accepted for az compatibility.")
    add_output_args(p)
    p.set_defaults(func=get_access_token, _parser=p)


def show(ctx: Context, args: argparse.Namespace) -> Any:
    c = ctx.credentials
    return {
        "id": c.subscription_id,
        "tenantId": c.tenant_id,
        "name": SUBSCRIPTION_DISPLAY_NAME,
        "user": {"name": c.client_id, "type": "servicePrincipal"},
        "managementEndpoint": c.management_endpoint,
        "caFile": ctx.ca_file,
        "isDefault": True,
        "state": "Enabled",
    }


def get_access_token(ctx: Context, args: argparse.Namespace) -> Any:
    token, expires_on = ctx.client.token()
    c = ctx.credentials
    local = dt.datetime.fromtimestamp(int(expires_on))
    return {
        "accessToken": token,
        "expiresOn": local.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "expires_on": int(expires_on),
        "subscription": c.subscription_id,
        "tenant": c.tenant_id,
        "tokenType": "Bearer",
    }
