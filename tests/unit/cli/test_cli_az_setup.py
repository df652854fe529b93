"""``amr az-setup``: the script it prints for the amr in credentials.json, and ``--apply``, which
runs those az commands (here through the Context's run_process seam) with the secret on stdin only."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest

from amr.cli.context import Context
from amr.cli.main import main
from amr.settings import load_settings

from .conftest import ENDPOINT, PRINCIPAL


class FakeAz:
    """Records each az invocation; ``registered`` says whether `az cloud show` finds the cloud."""

    def __init__(self, registered: bool = False, fail: str = "") -> None:
        self.calls: list[tuple[list[str], str, dict[str, str]]] = []
        self.registered, self.fail = registered, fail

    def __call__(self, argv: list[str], *, input: str, env: dict[str, str], **kwargs: Any) -> Any:
        self.calls.append((argv[1:], input, env))
        words = argv[1:3]
        code = 0
        if words == ["cloud", "show"]:
            code = 0 if self.registered else 3
        elif words[0] == self.fail:
            code = 1
        return subprocess.CompletedProcess(argv, code, "", f"ERROR: {words[0]} went wrong" if code else "")


def _run(home: Path, *argv: str, az: FakeAz | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdout=out, stderr=err, settings_factory=lambda: load_settings(home=home, env={}))
    if az is not None:
        ctx.run_process = az
    code = main(list(argv), context=ctx)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def az_program(tmp_path: Path) -> str:
    """An executable named on --az (the fake runs instead of it)."""
    path = tmp_path / "az"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_prints_the_setup_script_for_this_amr_without_the_secret(home: Path) -> None:
    code, out, err = _run(home, "az-setup")
    assert code == 0, err
    assert f"export REQUESTS_CA_BUNDLE={home}/pki/ca.pem\n" in out
    assert f"--endpoint-resource-manager {ENDPOINT} " in out
    assert (
        f"az login --service-principal -u {PRINCIPAL.client_id} --tenant {PRINCIPAL.tenant_id} --password=@-"
        in out
    )
    assert str(home / "credentials.json") in out
    assert PRINCIPAL.client_secret not in out


def test_apply_runs_az_with_the_ca_and_the_secret_on_stdin(home: Path, az_program: str) -> None:
    az = FakeAz()
    code, out, err = _run(home, "az-setup", "--apply", "--az", az_program, az=az)
    assert code == 0, err
    steps = [argv[:2] for argv, _, _ in az.calls]
    assert steps == [
        ["config", "set"],
        ["cloud", "show"],
        ["cloud", "register"],
        ["cloud", "set"],
        ["login", "--service-principal"],
    ]
    for argv, stdin, env in az.calls:
        assert env["REQUESTS_CA_BUNDLE"] == str(home / "pki" / "ca.pem")
        assert PRINCIPAL.client_secret not in argv
        assert stdin == (PRINCIPAL.client_secret if argv[0] == "login" else "")
    assert f"export REQUESTS_CA_BUNDLE={home}/pki/ca.pem" in out


def test_apply_updates_a_cloud_already_registered(home: Path, az_program: str) -> None:
    az = FakeAz(registered=True)
    assert _run(home, "az-setup", "--apply", "--az", az_program, az=az)[0] == 0
    assert ["cloud", "update"] in [argv[:2] for argv, _, _ in az.calls]


def test_apply_stops_at_the_first_failing_step_with_azs_message(home: Path, az_program: str) -> None:
    az = FakeAz(fail="login")
    code, _, err = _run(home, "az-setup", "--apply", "--az", az_program, az=az)
    assert code == 1
    assert err == "ERROR: az login --service-principal failed: ERROR: login went wrong\n"


def test_apply_without_az_says_how_to_get_it(home: Path, tmp_path: Path) -> None:
    code, _, err = _run(home, "az-setup", "--apply", "--az", str(tmp_path / "missing"), az=FakeAz())
    assert code == 1
    assert "install the Azure CLI (pip install azure-cli)" in err
