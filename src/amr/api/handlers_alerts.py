"""Metric alert rules and action groups: ``.../providers/Microsoft.Insights/metricAlerts/{name}`` and
``.../actionGroups/{name}`` under a resource group, in the shapes azure-mgmt-monitor sends. Changes are
synchronous; the reconciler publishes the rules to ``AMR_HOME/monitor/alert-rules.json``, which
`amr monitord` evaluates. A rule's scope must be an existing cache and each of its action groups
must exist; a bad value is a 400 that says what to fix and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from amr.api.context import Request, Response, require_subscription
from amr.api.handlers_groups import find_group
from amr.api.wire import as_object, field, parse_json_body
from amr.api.wire_alerts import (
    parse_action_group,
    parse_metric_alert,
    render_action_group,
    render_fired_alert,
    render_metric_alert,
)
from amr.errors import ArmError, ConfigError, InvalidParameter
from amr.logic.alerts.files import STATE_FILE_NAME, parse_alert_state
from amr.logic.alerts.rules import parse_action_group_id, parse_cache_scope
from amr.model.alerts import ActionGroup, FiredAlert, MetricAlert
from amr.model.resources import Cluster, lookup_key

T = TypeVar("T", MetricAlert, ActionGroup)
_NAME = re.compile(r"^[^<>*%&:\\?/#|]{1,260}$")


def _name(req: Request, param: str) -> str:
    name = req.params[param]
    if not _NAME.match(name) or name.endswith((" ", ".")):
        raise InvalidParameter(
            f"The name '{name}' is invalid: use 1-260 characters without <>*%&:\\?/#| and not ending in a "
            "space or a period.",
            target=param,
        )
    return name


def _merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body laid over the resource's rendering (tags replaced, properties merged by name)."""
    body = dict(current)
    if field(patch, "tags") is not None:
        body["tags"] = field(patch, "tags")
    props = as_object(field(patch, "properties"), "properties")
    body["properties"] = {**current["properties"], **{k: v for k, v in props.items() if v is not None}}
    return body


def _check_rule_targets(req: Request, rule: MetricAlert) -> None:
    store = req.services.store
    sub, group, name = parse_cache_scope(rule.scopes[0])
    if (
        sub.lower() != req.services.subscription_id.lower()
        or store.get(Cluster, lookup_key(sub, group, name)) is None
    ):
        raise ArmError(
            "ResourceNotFound",
            f"The scope '{rule.scopes[0]}' is not a cache of this subscription: create the cache first or fix "
            "'properties.scopes'.",
            400,
            "properties.scopes",
        )
    for i, action in enumerate(rule.action_group_ids):
        target = f"properties.actions[{i}].actionGroupId"
        a_sub, a_group, a_name = parse_action_group_id(action, target)
        if store.get(ActionGroup, lookup_key(a_sub, a_group, "actiongroups", a_name)) is None:
            raise ArmError("ResourceNotFound", f"The action group '{action}' does not exist; create it first.",
                           400, target)  # fmt: skip


@dataclass(frozen=True)
class _Kind(Generic[T]):
    """One of the two resource types: how it is keyed, named in errors, read from and written to JSON."""

    model: type[T]
    segment: str  # its key's segment (lookup_key)
    param: str  # its name's path parameter
    label: str
    parse: Callable[[Request, dict[str, Any], str, str], T]
    render: Callable[[T], dict[str, Any]]
    created: int  # the status of a PUT that creates: Azure's metricAlerts answer 200, actionGroups 201

    def get(self, req: Request) -> T | None:
        sub = require_subscription(req)
        key = lookup_key(sub, req.params["resourceGroupName"], self.segment, req.params[self.param])
        return req.services.store.get(self.model, key)

    def find(self, req: Request) -> T:
        found = self.get(req)
        if found is None:
            group, name = req.params["resourceGroupName"], req.params[self.param]
            find_group(req, group)
            raise ArmError(
                "ResourceNotFound",
                f"The {self.label} '{name}' was not found in resource group '{group}'.",
                404,
            )
        return found

    def save(self, req: Request, body: dict[str, Any], current: T | None) -> T:
        group = find_group(req, req.params["resourceGroupName"])  # and the subscription
        name = current.name if current is not None else _name(req, self.param)
        made = self.parse(req, body, group.name, name)
        if current is None:
            req.services.store.insert(made)
        else:
            req.services.store.replace(current, made)
        req.services.reconciler.notify()
        return made

    def list(self, req: Request) -> list[T]:
        sub = require_subscription(req)
        group = req.params.get("resourceGroupName")
        if group is not None:
            find_group(req, group)
        return [
            r
            for r in req.services.store.list(self.model, lookup_key(sub) + "/")
            if group is None or r.resource_group.lower() == group.lower()
        ]


def _parse_rule(req: Request, body: dict[str, Any], group: str, name: str) -> MetricAlert:
    rule = parse_metric_alert(body, req.services.subscription_id, group, name, req.services.timestamp())
    _check_rule_targets(req, rule)
    return rule


def _parse_group(req: Request, body: dict[str, Any], group: str, name: str) -> ActionGroup:
    return parse_action_group(body, req.services.subscription_id, group, name)


RULES = _Kind(MetricAlert, "metricalerts", "ruleName", "metric alert", _parse_rule, render_metric_alert, 200)
ACTION_GROUPS = _Kind(
    ActionGroup, "actiongroups", "actionGroupName", "action group", _parse_group, render_action_group, 201
)


async def _put(kind: _Kind[Any], req: Request) -> Response:
    current = kind.get(req)
    saved = kind.save(req, parse_json_body(req.body), current)
    return Response(200 if current else kind.created, kind.render(saved))


async def _patch(kind: _Kind[Any], req: Request) -> Response:
    current = kind.find(req)
    body = _merge(kind.render(current), parse_json_body(req.body))
    return Response(200, kind.render(kind.save(req, body, current)))


async def _delete(kind: _Kind[Any], req: Request, in_use: Callable[[Any], None] | None = None) -> Response:
    found = kind.get(req)
    if found is None:
        return Response(204)
    if in_use is not None:
        in_use(found)
    req.services.store.delete(found)
    req.services.reconciler.notify()
    return Response(200)


async def put_metric_alert(req: Request) -> Response:
    return await _put(RULES, req)


async def patch_metric_alert(req: Request) -> Response:
    return await _patch(RULES, req)


async def get_metric_alert(req: Request) -> Response:
    return Response(200, render_metric_alert(RULES.find(req)))


async def delete_metric_alert(req: Request) -> Response:
    return await _delete(RULES, req)


async def list_metric_alerts(req: Request) -> Response:
    return Response(200, {"value": [render_metric_alert(r) for r in RULES.list(req)]})


async def put_action_group(req: Request) -> Response:
    return await _put(ACTION_GROUPS, req)


async def patch_action_group(req: Request) -> Response:
    return await _patch(ACTION_GROUPS, req)


async def get_action_group(req: Request) -> Response:
    return Response(200, render_action_group(ACTION_GROUPS.find(req)))


async def delete_action_group(req: Request) -> Response:
    def in_use(group: ActionGroup) -> None:
        users = [r.name for r in req.services.store.list(MetricAlert, lookup_key(group.subscription_id) + "/")
                 if any(a.lower() == group.id.lower() for a in r.action_group_ids)]  # fmt: skip
        if users:
            raise ArmError("Conflict", f"The action group is used by the metric alert(s) {', '.join(users)}: "
                           "remove it from their actions first.", 409)  # fmt: skip

    return await _delete(ACTION_GROUPS, req, in_use)


async def list_action_groups(req: Request) -> Response:
    return Response(200, {"value": [render_action_group(g) for g in ACTION_GROUPS.list(req)]})


def _read_alerts(req: Request) -> list[FiredAlert]:
    path = req.services.settings.monitor_dir / STATE_FILE_NAME
    try:
        return parse_alert_state(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ConfigError) as e:
        raise ArmError("InternalServerError", f"amr cannot read its alerts file {path}: {e}", 500) from e


async def list_fired_alerts(req: Request) -> Response:
    """The alerts `amr monitord` fired (still fired, then the newest resolved), from its alerts file;
    ``monitorCondition`` (Fired or Resolved) and ``targetResource`` filter as in Azure."""
    sub = require_subscription(req)
    condition = req.query.get("monitorCondition", "").lower()
    target = req.query.get("targetResource", "").lower()
    chosen = [
        a for a in _read_alerts(req)
        if (not condition or a.condition.lower() == condition) and (not target or a.target.lower() == target)
    ]  # fmt: skip
    chosen.sort(key=lambda a: a.fired_at, reverse=True)
    return Response(200, {"value": [render_fired_alert(a, sub) for a in chosen]})


async def get_fired_alert(req: Request) -> Response:
    sub = require_subscription(req)
    alert_id = req.params["alertId"]
    for alert in _read_alerts(req):
        if alert.alert_id.lower() == alert_id.lower():
            return Response(200, render_fired_alert(alert, sub))
    raise ArmError(
        "ResourceNotFound", f"The alert '{alert_id}' was not found (amr keeps the 200 newest resolved).", 404
    )
