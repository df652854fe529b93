"""Firewall rules: .../redisEnterprise/{cluster}/firewallRules/{rule} (an amr extension in the
shape classic Azure Cache for Redis uses). Changes are synchronous; the gateway applies them to new
connections within a second and closes open connections from sources no longer allowed."""

from __future__ import annotations

import re
from typing import Any

from amr.api.context import Request, Response
from amr.api.handlers_clusters import find_cluster
from amr.api.wire import as_object, as_str, field, parse_json_body
from amr.errors import ArmError, InvalidParameter
from amr.logic.security.firewall import validate_rule_range
from amr.model.resources import FIREWALL_RULE_TYPE, FirewallRule, lookup_key

_RULE_NAME = re.compile(r"^[A-Za-z0-9_]{1,80}$")


def render_rule(rule: FirewallRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "type": FIREWALL_RULE_TYPE,
        "properties": {"startIP": rule.start_ip, "endIP": rule.end_ip},
    }


def _rule_name(req: Request) -> str:
    name = req.params["ruleName"]
    if not _RULE_NAME.match(name):
        raise InvalidParameter(
            f"The firewall rule name '{name}' is invalid: use 1-80 letters, digits and underscores.",
            target="ruleName",
        )
    return name


async def put_rule(req: Request) -> Response:
    cluster = find_cluster(req)
    name = _rule_name(req)
    props = as_object(field(parse_json_body(req.body), "properties"), "properties")
    start = as_str(field(props, "startIP"), "properties.startIP")
    end = as_str(field(props, "endIP"), "properties.endIP")
    if not start or not end:
        raise InvalidParameter(
            "'properties.startIP' and 'properties.endIP' are required (for example 203.0.113.0 and "
            "203.0.113.255; use the same address twice for one host).",
            target="properties.startIP" if not start else "properties.endIP",
        )
    start, end = validate_rule_range(start, end)
    store = req.services.store
    rule = FirewallRule(cluster.subscription_id, cluster.resource_group, cluster.name, name, start, end)
    current = store.get(FirewallRule, rule.key)
    if current is None:
        store.insert(rule)
        status = 201
    else:
        rule = FirewallRule(
            rule.subscription_id, rule.resource_group, rule.cluster_name, current.name, start, end
        )
        if rule != current:
            store.replace(current, rule)
        status = 200
    req.services.reconciler.notify()
    return Response(status, render_rule(rule))


def _find_rule(req: Request) -> FirewallRule:
    cluster = find_cluster(req)
    name = req.params["ruleName"]
    rule = req.services.store.get(FirewallRule, lookup_key(cluster.key, "firewallrules", name))
    if rule is None:
        raise ArmError(
            "ResourceNotFound",
            f"The firewall rule '{name}' of cache '{cluster.name}' was not found.",
            404,
        )
    return rule


async def get_rule(req: Request) -> Response:
    return Response(200, render_rule(_find_rule(req)))


async def list_rules(req: Request) -> Response:
    cluster = find_cluster(req)
    rules = req.services.store.list(FirewallRule, lookup_key(cluster.key, "firewallrules") + "/")
    return Response(200, {"value": [render_rule(r) for r in rules]})


async def delete_rule(req: Request) -> Response:
    cluster = find_cluster(req)
    rule = req.services.store.get(
        FirewallRule, lookup_key(cluster.key, "firewallrules", req.params["ruleName"])
    )
    if rule is None:
        return Response(204)
    req.services.store.delete(rule)
    req.services.reconciler.notify()
    return Response(200)
