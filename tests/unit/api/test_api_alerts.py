"""Metric alert rules and action groups in process: created, read, listed, patched and deleted in the
shapes azure-mgmt-monitor sends; bad values are ARM 400s that change nothing; fired alerts are read
from the alerts file `amr monitord` writes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from amr.logic.alerts.files import STATE_FILE_NAME, render_alert_state
from amr.model.alerts import CriterionValue, FiredAlert
from tests.unit.api.api_harness import CLUSTER, SUB, Api, create_cluster

INS = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Insights"
AG = INS + "/actionGroups/ops"
RULE = INS + "/metricAlerts/memory-high"
MA_API, AG_API = "api-version=2018-03-01", "api-version=2023-01-01"
GROUP_BODY = {"location": "Global", "properties": {"groupShortName": "ops", "enabled": True, "webhookReceivers": [
    {"name": "hook", "serviceUri": "https://example.com/alert", "useCommonAlertSchema": True}]}}  # fmt: skip


def rule_body(**props: Any) -> dict[str, Any]:
    criterion = {"criterionType": "StaticThresholdCriterion", "name": "c1", "metricName": "usedmemorypercentage",
                 "metricNamespace": "Microsoft.Cache/redisEnterprise", "operator": "GreaterThan",
                 "threshold": 80, "timeAggregation": "Average"}  # fmt: skip
    body: dict[str, Any] = {"location": "global", "properties": {
        "severity": 2, "enabled": True, "scopes": [CLUSTER], "evaluationFrequency": "PT1M", "windowSize": "PT5M",
        "criteria": {"odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                     "allOf": [criterion]},
        "autoMitigate": True, "actions": [{"actionGroupId": AG}]}}  # fmt: skip
    for key, value in props.items():
        if key in criterion:
            body["properties"]["criteria"]["allOf"][0][key] = value
        else:
            body["properties"][key] = value
    return body


@pytest.fixture
def ready(api: Api) -> Api:
    create_cluster(api)
    r = api.call("PUT", AG, GROUP_BODY, AG_API)
    assert r.status_code == 201, r.text
    return api


def test_rule_round_trip(ready: Api) -> None:
    r = ready.call("PUT", RULE, rule_body(), MA_API)
    assert r.status_code == 200, r.text  # Azure's metricAlerts answer a create with 200
    got = ready.call("GET", RULE, None, MA_API).json()
    assert got["type"] == "Microsoft.Insights/metricAlerts"
    assert got["properties"]["criteria"]["allOf"][0]["metricName"] == "usedmemorypercentage"
    assert got["properties"]["actions"] == [{"actionGroupId": AG, "webHookProperties": {}}]
    assert ready.reconciler.notifications  # the reconciler publishes the rules file
    assert [x["name"] for x in ready.call("GET", INS + "/metricAlerts", None, MA_API).json()["value"]] == [
        "memory-high"
    ]
    listed = ready.call(
        "GET", f"/subscriptions/{SUB}/providers/Microsoft.Insights/metricAlerts", None, MA_API
    )
    assert len(listed.json()["value"]) == 1
    patched = ready.call("PATCH", RULE, {"properties": {"enabled": False}}, MA_API).json()
    assert patched["properties"]["enabled"] is False
    assert patched["properties"]["windowSize"] == "PT5M"
    assert ready.call("DELETE", RULE, None, MA_API).status_code == 200
    assert ready.call("GET", RULE, None, MA_API).status_code == 404
    assert ready.call("DELETE", RULE, None, MA_API).status_code == 204


def test_action_group_round_trip_and_in_use(ready: Api) -> None:
    got = ready.call("GET", AG, None, AG_API).json()
    assert got["properties"]["webhookReceivers"][0]["serviceUri"] == "https://example.com/alert"
    assert (
        ready.call("PATCH", AG, {"properties": {"enabled": False}}, AG_API).json()["properties"]["enabled"]
        is False
    )
    assert ready.call("PUT", RULE, rule_body(), MA_API).status_code == 200
    assert ready.call("DELETE", AG, None, AG_API).status_code == 409
    ready.call("DELETE", RULE, None, MA_API)
    assert ready.call("DELETE", AG, None, AG_API).status_code == 200


BAD_RULES = [
    ({"scopes": [CLUSTER + "x"]}, "properties.scopes", "not a cache"),
    ({"scopes": ["/subscriptions/x/resourceGroups/rg1"]}, "properties.scopes", "resource id"),
    ({"metricName": "nosuchmetric"}, "properties.criteria.allOf[0].metricName", "Valid names"),
    ({"threshold": "80"}, "properties.criteria.allOf[0].threshold", "number"),
    ({"operator": "Above"}, "properties.criteria.allOf[0].operator", "GreaterThan"),
    ({"timeAggregation": "Mean"}, "properties.criteria.allOf[0].timeAggregation", "Average"),
    ({"evaluationFrequency": "1 minute"}, "properties.evaluationFrequency", "ISO 8601"),
    ({"evaluationFrequency": "PT2M"}, "properties.evaluationFrequency", "PT5M"),
    ({"windowSize": "PT2M"}, "properties.windowSize", "PT15M"),
    ({"evaluationFrequency": "PT15M", "windowSize": "PT5M"}, "properties.windowSize", "shorter"),
    ({"severity": 5}, "properties.severity", "0 (critical)"),
    ({"severity": "2"}, "properties.severity", "integer"),
    (
        {"actions": [{"actionGroupId": INS + "/actionGroups/none"}]},
        "properties.actions[0].actionGroupId",
        "create",
    ),
]


@pytest.mark.parametrize(("change", "target", "says"), BAD_RULES)
def test_bad_rules_are_400_and_change_nothing(
    ready: Api, change: dict[str, Any], target: str, says: str
) -> None:
    r = ready.call("PUT", RULE, rule_body(**change), MA_API)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["target"] == target and says in error["message"], error
    assert ready.call("GET", RULE, None, MA_API).status_code == 404


@pytest.mark.parametrize(
    ("uri", "says"),
    [("ftp://example.com/x", "http or https"), ("not a url", "http or https"), ("https://", "http")],
)
def test_webhook_must_be_http_or_https(ready: Api, uri: str, says: str) -> None:
    body = copy.deepcopy(GROUP_BODY)
    body["properties"]["webhookReceivers"][0]["serviceUri"] = uri
    r = ready.call("PUT", INS + "/actionGroups/bad", body, AG_API)
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text
    assert ready.call("GET", INS + "/actionGroups/bad", None, AG_API).status_code == 404


def test_fired_alerts_are_listed_from_monitords_file(ready: Api, tmp_path: Any) -> None:
    path = f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts"
    assert ready.call("GET", path, None, "api-version=2019-05-05-preview").json() == {"value": []}
    alert = FiredAlert("a1", RULE, "memory-high", 2, CLUSTER, "Fired", "2025-07-01T12:00:00+00:00", "",
                       (CriterionValue("c1", "usedmemorypercentage", 91.5),))  # fmt: skip
    (tmp_path / "monitor").mkdir(exist_ok=True)
    (tmp_path / "monitor" / STATE_FILE_NAME).write_text(render_alert_state([alert]))
    body = ready.call("GET", path, None, "api-version=2019-05-05-preview").json()
    essentials = body["value"][0]["properties"]["essentials"]
    assert (essentials["monitorCondition"], essentials["severity"], essentials["targetResource"]) == (
        "Fired", "Sev2", CLUSTER)  # fmt: skip
    resolved = ready.call("GET", path + "?monitorCondition=Resolved", None, "api-version=2019-05-05-preview")
    assert resolved.json() == {"value": []}
    one = ready.call("GET", path + "/A1", None, "api-version=2019-05-05-preview")
    assert one.status_code == 200 and one.json()["id"] == f"{path}/a1"
    assert ready.call("GET", path + "/nope", None, "api-version=2019-05-05-preview").status_code == 404
