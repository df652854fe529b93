"""``amr group`` against the real API app: create, show, list, delete and its confirmation, the
token the CLI fetches once per process, the Location-polled delete."""

from __future__ import annotations

from amr.testing.api import InProcessApi

from .conftest import POLLS, Runner, Tty, is_poll, is_token_request


def test_group_create_show_list(run: Runner, app: InProcessApi) -> None:
    r = run("group", "create", "-n", "rg1", "-l", "westus", "--tags", "env=dev", "team")
    assert r.code == 0, r.err
    assert r.json()["tags"] == {"env": "dev", "team": ""}
    assert r.out.startswith('{\n  "id"')  # az-style: pretty, indent 2, sorted keys
    assert run("group", "create", "-n", "rg2", "-l", "eastus").code == 0
    assert run("group", "show", "-n", "rg1").json()["location"] == "westus"
    assert [g["name"] for g in run("group", "list").json()] == ["rg1", "rg2"]
    # One token per process (cached in memory only), on every ARM call, and the API accepts it.
    assert len([q for q in run.requests if is_token_request(q)]) == 4
    arm_calls = [q for q in run.requests if not is_token_request(q)]
    assert len(arm_calls) == 4
    assert all(q.url.params["api-version"] == "2024-03-01" for q in arm_calls)
    for q in arm_calls:
        assert app.tokens.verify(q.headers["Authorization"])["appid"] == app.principal.client_id


def test_group_delete_polls_location(run: Runner) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("group", "delete", "-n", "rg1", "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    polls = [q for q in run.requests if is_poll(q)]
    assert len(polls) == POLLS + 1
    assert all("/operationresults/" in q.url.path.lower() for q in polls)
    assert run.sleeps == [0.25] * POLLS  # Retry-After is ignored; the interval is injectable
    r = run("group", "show", "-n", "rg1")
    assert r.code == 1
    assert r.err == "ERROR: (ResourceGroupNotFound) Resource group 'rg1' could not be found.\n"


def test_group_delete_no_wait(run: Runner) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("group", "delete", "-n", "rg1", "--yes", "--no-wait")
    assert (r.code, r.out) == (0, ""), r.err
    assert not [q for q in run.requests if is_poll(q)]


def test_delete_without_yes_refuses_without_tty(run: Runner) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("group", "delete", "-n", "rg1")
    assert r.code == 1
    assert "no tty available" in r.err and "--yes" in r.err
    assert run("group", "show", "-n", "rg1").code == 0


def test_delete_asks_on_a_tty(run: Runner) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    err = Tty()
    r = run("group", "delete", "-n", "rg1", stdin=Tty("n\n"), stderr=err)
    assert r.code == 1 and "Are you sure you want to perform this operation? (y/n):" in r.err
    assert run("group", "show", "-n", "rg1").code == 0
    r = run("group", "delete", "-n", "rg1", stdin=Tty("y\n"), stderr=Tty())
    assert r.code == 0, r.err
    assert run("group", "show", "-n", "rg1").code == 1
