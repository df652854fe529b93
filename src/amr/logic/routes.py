"""The routes file: the control plane renders it, the gateway parses it."""

from __future__ import annotations

import json
from typing import Any

from amr.errors import GatewayError
from amr.model.routes import Route, RouteTable

ROUTES_FORMAT_VERSION = 1


def render_route_table(table: RouteTable) -> str:
    """Render a route table as the JSON text of gateway/routes.json."""
    body = {
        "version": ROUTES_FORMAT_VERSION,
        "certFile": table.cert_file,
        "keyFile": table.key_file,
        "routes": [
            {
                "port": r.port,
                "tls": r.tls,
                "minTlsVersion": r.min_tls_version,
                "target": r.target,
                "databaseId": r.database_id,
            }
            for r in sorted(table.routes, key=lambda r: r.port)
        ],
    }
    return json.dumps(body, indent=2) + "\n"


def parse_route_table(text: str) -> RouteTable:
    """Parse routes.json text; raise GatewayError saying what is wrong."""
    try:
        data: Any = json.loads(text)
        if data.get("version") != ROUTES_FORMAT_VERSION:
            raise GatewayError(f"routes file version {data.get('version')!r} is not {ROUTES_FORMAT_VERSION}")
        routes = tuple(
            Route(
                port=int(r["port"]),
                tls=bool(r["tls"]),
                target=str(r["target"]),
                database_id=str(r.get("databaseId", "")),
                min_tls_version=str(r.get("minTlsVersion", "1.2")),
            )
            for r in data["routes"]
        )
        ports = [r.port for r in routes]
        if len(set(ports)) != len(ports):
            raise GatewayError("routes file lists a port twice")
        return RouteTable(routes=routes, cert_file=str(data["certFile"]), key_file=str(data["keyFile"]))
    except GatewayError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise GatewayError(f"routes file is malformed: {e}") from e
