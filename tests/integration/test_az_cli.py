"""The real Azure CLI (azure-cli from PyPI with the redisenterprise extension) against a real amr,
unchanged: the README's az quick start (``amr az-setup``: cloud register with endpoint discovery,
login as the service principal), then every command of Azure's quick start, then cleanup. az runs
with every proxy variable pointing at a recorder, so anything it would send off this machine is
caught: the recorder must see nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.az_quickstart import AZ_QUICKSTART
from tests.integration.amr_service import AmrService, wait_until
from tests.integration.az_cli import Az, AzInstall, az_for, ensure_az

GROUP, CACHE = "rg-amr-lab", "amr-lab"
IN_CACHE = ("--cluster-name", CACHE, "-g", GROUP)


@pytest.fixture(scope="module")
def az_install() -> Iterator[AzInstall]:
    started = time.monotonic()
    install = ensure_az()
    # Reported with -rP / on failure: what the install cost this run (0 when the cache had it).
    print(f"az install: {install.seconds:.1f} s (ensure_az {time.monotonic() - started:.1f} s)")
    yield install


def _json_documents(text: str) -> list[Any]:
    """The JSON documents az printed one after another."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(text, at)) < len(text):
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    return docs


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _api_keys(service: AmrService) -> dict[str, Any]:
    return dict(service.amr_json("redisenterprise", "database", "list-keys", *IN_CACHE))


def _check_nothing_left_the_machine(az: Az) -> None:
    assert az.proxy.seen == [], f"az tried to reach beyond this machine: {az.proxy.seen}"


def test_readme_az_quick_start_then_every_quick_start_command(
    az_install: AzInstall, amr_service: AmrService
) -> None:
    with az_for(az_install, amr_service.env) as az:
        # --- the README's block: setup, a group and a cache by display name, the keys ---
        result = az.bash(AZ_QUICKSTART)
        assert result.returncode == 0, result.stderr + result.stdout
        group, cache_db, keys = _json_documents(result.stdout)
        assert (group["name"], group["location"]) == (GROUP, "eastus")  # az asked /locations for "East US"
        assert (cache_db["name"], cache_db["resourceState"], cache_db["provisioningState"]) == (
            "default", "Running", "Succeeded",
        )  # fmt: skip
        assert keys == _api_keys(amr_service)
        az.env["REQUESTS_CA_BUNDLE"] = amr_service.ca_file  # what the script exported in its shell

        # --- what the setup left in az: the discovered cloud, the login, telemetry off ---
        cloud = az.json("cloud", "show", "-n", "amr")
        assert cloud["isActive"] is True
        assert cloud["endpoints"]["resourceManager"] == amr_service.base_url
        # Discovered from amr's metadata document, not given on the command line:
        assert cloud["endpoints"]["activeDirectory"] == amr_service.base_url
        assert cloud["endpoints"]["activeDirectoryResourceId"] == "https://management.core.windows.net/"
        account = az.json("account", "show")
        assert (account["id"], account["tenantId"], account["environmentName"]) == (
            amr_service.subscription, amr_service.credentials["tenantId"], "amr",
        )  # fmt: skip
        assert account["user"] == {"name": amr_service.credentials["clientId"], "type": "servicePrincipal"}
        settings = {s["name"]: s["value"] for s in az.json("config", "get", "core", "--only-show-errors")}
        assert settings["collect_telemetry"] == "false"
        assert settings["instance_discovery"] == "false"
        assert not (az.config_dir / "telemetry").exists()

        # --- resource groups ---
        assert az.json("group", "show", "-n", GROUP)["properties"]["provisioningState"] == "Succeeded"
        assert az("group", "exists", "-n", GROUP).stdout.strip() == "true"
        assert "East US" in [loc["displayName"] for loc in az.json("account", "list-locations")]

        # --- the cache ---
        shown = az.json("redisenterprise", "show", *IN_CACHE)
        assert (shown["provisioningState"], shown["hostName"], shown["sku"]["name"]) == (
            "Succeeded", "localhost", "Balanced_B0",
        )  # fmt: skip
        wait_until(
            lambda: az.json("redisenterprise", "show", *IN_CACHE)["resourceState"] == "Running", 60,
            what="the cache to be Running",
        )  # fmt: skip
        assert [c["name"] for c in az.json("redisenterprise", "list", "-g", GROUP)] == [CACHE]
        assert [c["name"] for c in az.json("redisenterprise", "list")] == [CACHE]
        assert az.json("redisenterprise", "update", *IN_CACHE, "--tags", "env=lab")["tags"] == {"env": "lab"}
        assert amr_service.amr_json("redisenterprise", "show", *IN_CACHE)["tags"] == {"env": "lab"}
        skus = [s["name"] for s in az.json("redisenterprise", "list-skus-for-scaling", *IN_CACHE)["skus"]]
        assert "Balanced_B1" in skus and "Balanced_B0" not in skus
        az("redisenterprise", "wait", *IN_CACHE, "--created")

        # --- the database ---
        db = az.json("redisenterprise", "database", "show", *IN_CACHE)
        assert (db["name"], db["clusteringPolicy"], db["resourceState"]) == (
            "default",
            "OSSCluster",
            "Running",
        )
        assert [d["name"] for d in az.json("redisenterprise", "database", "list", *IN_CACHE)] == ["default"]
        assert az.json("redisenterprise", "database", "list-keys", *IN_CACHE) == keys
        new = az.json("redisenterprise", "database", "regenerate-key", *IN_CACHE, "--key-type", "Primary")
        assert new["primaryKey"] != keys["primaryKey"] and new["secondaryKey"] == keys["secondaryKey"]
        assert new == _api_keys(amr_service)
        updated = az.json(
            "redisenterprise", "database", "update", *IN_CACHE, "--eviction-policy", "AllKeysLRU"
        )
        assert updated["evictionPolicy"] == "AllKeysLRU"
        assert (
            amr_service.amr_json("redisenterprise", "database", "show", *IN_CACHE)["properties"][
                "evictionPolicy"
            ]
            == "AllKeysLRU"
        )

        client = redis.Redis(
            host="localhost", port=db["port"], password=new["primaryKey"], ssl=True,
            ssl_ca_certs=amr_service.ca_file, decode_responses=True,
        )  # fmt: skip
        with client:
            wait_until(client.ping, 30, what="the database to answer with the new key")
            client.set("greeting", "hello from az")
            az("redisenterprise", "database", "flush", *IN_CACHE)
            assert client.get("greeting") is None and client.dbsize() == 0

        # test-connection finds the port by itself only for Azure's 10000; amr's test ports differ.
        tested = az.json(
            "redisenterprise", "test-connection", "--host", f"localhost:{db['port']}",
            "--access-key", new["primaryKey"],
        )  # fmt: skip
        assert (tested["connectionStatus"], tested["port"]) == ("Success", db["port"]), tested

        # --- cleanup ---
        az("redisenterprise", "delete", *IN_CACHE, "--yes")
        assert az.json("redisenterprise", "list") == []
        az("group", "delete", "-n", GROUP, "--yes")
        assert az("group", "exists", "-n", GROUP).stdout.strip() == "false"
        wait_until(lambda: not amr_service.node_pids(), 30, what="the cache's nodes to exit")
        _check_nothing_left_the_machine(az)


def test_az_setup_apply_points_a_fresh_az_at_amr(az_install: AzInstall, amr_service: AmrService) -> None:
    with az_for(az_install, amr_service.env) as az:
        result = az.bash("amr az-setup --apply")
        assert result.returncode == 0, result.stderr + result.stdout
        export = f"export REQUESTS_CA_BUNDLE={amr_service.ca_file}"
        assert export in result.stdout.splitlines()
        assert amr_service.credentials["clientSecret"] not in result.stdout + result.stderr
        az.env["REQUESTS_CA_BUNDLE"] = amr_service.ca_file  # what the printed line does in a shell
        assert az.json("account", "show")["id"] == amr_service.subscription
        assert az.json("group", "list") == []
        # Run again: the cloud is updated, not registered twice.
        assert az.bash("amr az-setup --apply").returncode == 0
        _check_nothing_left_the_machine(az)
