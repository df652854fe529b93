"""Settings are the only reader of amr's environment; entry points never write to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amr.app.args import parse_worker_index, service_parser
from amr.app.entry import run_service_command
from amr.logic.supervisor_conf import GATEWAY_WORKER_ENV
from amr.settings import environment_with, load_settings, process_variable


def test_log_level_comes_from_amr_log_level_or_amr_toml(tmp_path: Path) -> None:
    assert load_settings(tmp_path, {}).log.level == "INFO"
    assert load_settings(tmp_path, {"AMR_LOG_LEVEL": "debug"}).log.level == "debug"
    (tmp_path / "amr.toml").write_text('[log]\nlevel = "WARNING"\n')
    assert load_settings(tmp_path, {}).log.level == "WARNING"


def test_environment_with_overrides_leaves_the_process_environment_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AMR_API_PORT", raising=False)
    env = environment_with({"AMR_API_PORT": "9443"})
    assert env["AMR_API_PORT"] == "9443" and "AMR_API_PORT" not in os.environ
    assert load_settings(Path("/nonexistent-amr-home"), env).api.port == 9443


def test_gateway_worker_index(monkeypatch: pytest.MonkeyPatch) -> None:
    assert process_variable(GATEWAY_WORKER_ENV, {}) == ""
    assert parse_worker_index(process_variable(GATEWAY_WORKER_ENV, {GATEWAY_WORKER_ENV: "2"})) == 2
    assert parse_worker_index("x") == 0 and parse_worker_index("-3") == 0
    monkeypatch.setenv(GATEWAY_WORKER_ENV, "1")
    assert process_variable(GATEWAY_WORKER_ENV) == "1"
    with pytest.raises(ValueError):
        process_variable("HOME")


def test_service_commands_parse_as_before() -> None:
    args = service_parser().parse_args(["serve", "--home", "/h", "--api-port", "9000", "--detach"])
    assert (args.command, args.home, args.api_port, args.detach) == ("serve", "/h", 9000, True)
    assert service_parser().parse_args(["pki", "rotate"]).action == "rotate"


def test_a_service_command_does_not_write_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AMR_HOME", raising=False)
    before = dict(os.environ)
    assert run_service_command(["stop", "--home", str(tmp_path / "h")]) == 0
    assert "not running" in capsys.readouterr().out
    assert dict(os.environ) == before
