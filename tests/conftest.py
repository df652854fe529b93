"""Which test modules run alone, after the parallel run of everything else (``make test``).

Most tests are independent: each makes its own AMR_HOME, ports and processes, so ``pytest -n`` runs
them side by side (a worker takes whole modules, so a module's shared service starts once). The
modules below are not: they change the host, or they assert on time and so fail when other tests
take the CPU. They are marked ``serial`` here, in one place, with the reason.
"""

from __future__ import annotations

import pytest

# Module path (relative to the repository) -> why it cannot share the machine with other tests.
SERIAL_MODULES = {
    "tests/integration/test_network_access.py": (
        "creates network namespaces and veth links whose names and 10.x subnets derive from the pid"
    ),
    "tests/integration/test_failover.py": "bounds the write gap of a failover (ha_load.Writer)",
    "tests/integration/test_standalone_failover.py": "bounds the time to the first write after a failover",
    "tests/integration/test_cluster_failover.py": "bounds the write gap of a cluster failover",
    "tests/integration/test_switchover.py": "bounds the write gap of a switchover",
    "tests/integration/test_rolling_restart.py": "bounds the write gaps of a rolling restart",
    "tests/integration/test_gateway_security.py": "asserts sub-second authentication deadlines and cooldowns",
    "tests/integration/test_gateway_hostile.py": "asserts deadlines and the gateway's CPU use under attack",
    "tests/integration/test_api_limits.py": "asserts the API's header/body timeouts and throttle cooldown",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::", 1)[0] in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)
