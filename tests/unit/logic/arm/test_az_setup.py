"""The az setup amr prints: the commands for one amr, as a shell script that holds no secret."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from amr.logic.arm.az_setup import plan_az_setup, render_az_ca_export, render_az_setup_script

ENDPOINT = "https://localhost:8443"
SECRET = "s3cr3t-value"


def test_the_plan_registers_the_endpoint_and_logs_in_with_the_secret_on_stdin() -> None:
    setup = plan_az_setup(ENDPOINT + "/", "/home/u/.amr/pki/ca.pem", "client-1", "tenant-1")
    assert setup.register[:2] == ("cloud", "register")
    assert setup.update[:2] == ("cloud", "update")
    for argv in (setup.register, setup.update):
        assert argv[argv.index("-n") + 1] == "amr"
        assert argv[argv.index("--endpoint-resource-manager") + 1] == ENDPOINT  # no trailing slash
    assert setup.registered == ("cloud", "show", "-n", "amr", "-o", "none")
    assert setup.activate[:4] == ("cloud", "set", "-n", "amr")
    assert "core.instance_discovery=false" in setup.config and "core.collect_telemetry=false" in setup.config
    login = setup.login
    assert login[:2] == ("login", "--service-principal")
    assert login[login.index("-u") + 1] == "client-1" and login[login.index("--tenant") + 1] == "tenant-1"
    # az reads the value from stdin; with "=", since a secret starting with "-" after -p is an option.
    assert "--password=@-" in login and "-p" not in login


def test_the_cloud_name_can_be_chosen() -> None:
    setup = plan_az_setup(ENDPOINT, "", "c", "t", cloud_name="lab")
    assert setup.register[setup.register.index("-n") + 1] == "lab"
    assert setup.activate[setup.activate.index("-n") + 1] == "lab"


def test_the_script_runs_each_step_in_order_and_never_holds_the_secret() -> None:
    setup = plan_az_setup(ENDPOINT, "/tmp/a b/ca.pem", "client-1", "tenant-1")
    script = render_az_setup_script(setup, "/tmp/a b/credentials.json")
    assert SECRET not in script
    commands = [line for line in script.splitlines() if not line.startswith("#")]
    assert commands[0] == "export REQUESTS_CA_BUNDLE='/tmp/a b/ca.pem'"
    assert commands[1] == shlex.join(("az", *setup.config))
    assert commands[2] == (
        f"if {shlex.join(('az', *setup.registered))} 2>/dev/null; then {shlex.join(('az', *setup.update))}; "
        f"else {shlex.join(('az', *setup.register))}; fi"
    )
    assert commands[3] == shlex.join(("az", *setup.activate))
    assert commands[4].endswith(" | " + shlex.join(("az", *setup.login)))
    assert "'/tmp/a b/credentials.json'" in commands[4]


def test_the_scripts_secret_reader_prints_the_client_secret(tmp_path: Path) -> None:
    # The reader half of the login line, run for real on a credentials file.
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"clientSecret": SECRET, "clientId": "c"}))
    script = render_az_setup_script(plan_az_setup(ENDPOINT, "", "c", "t"), str(creds))
    reader = script.splitlines()[-1].split(" | az ")[0]
    out = subprocess.run(["sh", "-c", reader], capture_output=True, text=True, check=True).stdout
    assert out == SECRET + "\n"


def test_without_a_ca_file_nothing_is_exported() -> None:
    setup = plan_az_setup(ENDPOINT, "", "c", "t")
    assert render_az_ca_export(setup) == ""
    assert "REQUESTS_CA_BUNDLE" not in render_az_setup_script(setup, "/x/credentials.json")
