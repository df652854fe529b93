"""The compatibility suite: Redis clients' own tests and common commands, through amr and directly.

    make compat                      (or .venv/bin/python compat/run.py [options])

In one run: installs the clients into .cache/compat (compat/clients.py), starts the baselines (the
engine amr runs, directly: compat/engines.py) and a private amr with a NoCluster, a 4-shard
OSSCluster and a 4-shard EnterpriseCluster database (compat/targets.py), then runs against each
target redis-py's own test suite and the valkey-glide and ioredis scripts of common commands
(compat/runs.py). It prints a table of pass/fail/error/skip counts per client and target, and per amr
target its *endpoint-only failures*: tests that fail through amr and pass on the baseline. Each is
either a known, documented difference (compat/known_differences.toml: commands a managed service
keeps for itself, as Azure does) or not. An unknown one is run once more on its target; if it passes
then, it is reported as flaky. The run fails (exit 1) when an endpoint-only failure is neither known
nor flaky. Records, logs and report.md stay in the output directory (.cache/compat/results/<time>).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compat import report  # noqa: E402
from compat.clients import CACHE, Clients, ensure_clients  # noqa: E402
from compat.engines import Baseline, start_valkey, start_valkey_cluster  # noqa: E402
from compat.runs import run_glide, run_ioredis, run_redispy  # noqa: E402
from compat.targets import AMR_DATABASES, BASELINES, Target, baseline_target, create_amr_target, start_amr  # noqa: E402

KNOWN = Path(__file__).resolve().parent / "known_differences.toml"
CLIENTS = ("redis-py", "glide", "ioredis")
Outcomes = dict[str, report.Outcome]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated, of " + ", ".join(CLIENTS))
    p.add_argument("--targets", default=",".join(AMR_DATABASES), help="amr targets, comma-separated")
    p.add_argument("--select", nargs="*", help="redis-py tests to run (paths or ids), instead of all")
    p.add_argument("--jobs", type=int, default=2, help="client runs side by side (default 2)")
    p.add_argument("--out", type=Path, help="output directory (default .cache/compat/results/<time>)")
    p.add_argument(
        "--report", type=Path, metavar="DIR",
        help="run nothing: report again on the records in DIR (after a change of the known list)",
    )  # fmt: skip
    return p.parse_args(argv)


def report_again(out: Path, known: list[report.KnownDifference]) -> int:
    """The counts and endpoint-only failures of the records a run left in ``out`` (its re-runs of
    unknown failures are not replayed: a failure that passed when run again counts here)."""

    def load(client: str, target: str) -> Outcomes:
        path = out / f"{client}-{target}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return report.parse_outcomes(json.loads(line) for line in lines if line.strip())

    rows, comparisons = [], []
    for c in CLIENTS:
        for t in (*BASELINES, *AMR_DATABASES):
            if (outcomes := load(c, t)) and t in AMR_DATABASES:
                base = AMR_DATABASES[t][2]
                comparisons.append(report.compare(c, t, base, outcomes, load(c, base), known))
            if outcomes:
                rows.append((c, t, report.count(outcomes)))
    print(report.render_counts(rows))
    print(report.render_findings(comparisons))
    unexplained = sum(len(c.unexplained) for c in comparisons)
    print(f"\n{unexplained} endpoint-only failures not on the known list")
    return 1 if unexplained else 0


def _client_runs(
    clients: Clients, out: Path, select: list[str] | None
) -> dict[str, Callable[[Target], Outcomes]]:
    return {
        "redis-py": lambda t: run_redispy(clients, t, out, select),
        "glide": lambda t: run_glide(clients, t, out),
        "ioredis": lambda t: run_ioredis(clients, t, out),
    }


def run_all(
    clients: Clients, targets: list[Target], which: list[str], out: Path, select: list[str] | None, jobs: int
) -> dict[tuple[str, str], Outcomes]:
    """Every client in ``which`` against every target, ``jobs`` at a time; outcomes by (client, target).
    The scripts run first and redis-py's suite after them: its tests change a baseline's server
    (passwords, ACL users, settings), which the scripts must not find."""
    runs = _client_runs(clients, out, select)
    results: dict[tuple[str, str], Outcomes] = {}
    for phase in ([c for c in which if c != "redis-py"], [c for c in which if c == "redis-py"]):
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {(c, t.name): pool.submit(_timed, runs[c], c, t) for c in phase for t in targets}
            for key, future in futures.items():
                results[key] = future.result()
    return results


def _timed(run: Callable[[Target], Outcomes], client: str, target: Target) -> Outcomes:
    start = time.monotonic()
    outcomes = run(target)
    counts = report.count(outcomes)
    print(f"  {client} on {target.name}: {time.monotonic() - start:.0f} s, {counts}", flush=True)
    return outcomes


def confirm(
    clients: Clients, target: Target, comparison: report.Comparison, out: Path, client: str
) -> list[str]:
    """Run the unexplained endpoint-only failures of one client and target once more; return those
    that pass this time (flaky), and drop them from the comparison."""
    ids = [f.test for f in comparison.unexplained]
    if not ids:
        return []
    if client == "redis-py":
        again = run_redispy(clients, target, out, select=ids, name="redis-py-again")
    else:
        again = _client_runs(clients, out, None)[client](target)
    flaky = [t for t in ids if again.get(t, report.Outcome("failed")).status == "passed"]
    comparison.findings = [f for f in comparison.findings if f.test not in flaky]
    return flaky


def _info_notes(out: Path, targets: list[Target]) -> list[str]:
    notes = []
    for t in targets:
        info = out / f"redis-py-{t.name}.info.json"
        if info.exists() and not t.cluster and '"cluster_enabled": 1' in info.read_text():
            notes.append(
                f"- {t.name}: INFO says cluster_enabled:1 on a standalone endpoint; redis-py's suite "
                "was told it is standalone (it would otherwise run in cluster mode)"
            )
    return notes


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    which = [c for c in args.clients.split(",") if c]
    names = [t for t in args.targets.split(",") if t]
    unknown = [c for c in which if c not in CLIENTS] + [t for t in names if t not in AMR_DATABASES]
    if unknown:
        print(f"unknown client or target: {', '.join(unknown)}", file=sys.stderr)
        return 2
    known = report.parse_known(KNOWN.read_text())
    if args.report:
        return report_again(args.report, known)
    out = (args.out or CACHE / "results" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    print("installing clients (first run only) ...", flush=True)
    clients = ensure_clients()
    print(f"redis-py {clients.redispy_version}; suite at {clients.redispy_suite}", flush=True)
    if clients.node is None and "ioredis" in which:
        print("no node on this machine: ioredis is left out", flush=True)
        which.remove("ioredis")

    baselines: list[Baseline] = []
    service = None
    try:
        print("starting the baselines and amr ...", flush=True)
        needed = {AMR_DATABASES[n][2] for n in names}
        if "valkey" in needed:
            baselines.append(start_valkey())
        if "valkey-cluster" in needed:
            baselines.append(start_valkey_cluster())
        service = start_amr()
        amr_targets = [create_amr_target(service, n) for n in names]
        targets = [baseline_target(b) for b in baselines] + amr_targets
        print(f"ready after {time.monotonic() - started:.0f} s; running {', '.join(which)}", flush=True)
        results = run_all(clients, targets, which, out, args.select, args.jobs)

        rows = [(c, t.name, report.count(results[c, t.name])) for c in which for t in targets]
        comparisons, flaky = [], []
        for c in which:
            for t in amr_targets:
                assert t.baseline is not None
                comparison = report.compare(
                    c, t.name, t.baseline, results[c, t.name], results[c, t.baseline], known
                )
                flaky += [f"{c} on {t.name}: {test}" for test in confirm(clients, t, comparison, out, c)]
                comparisons.append(comparison)
    finally:
        if service is not None:
            service.destroy()
        for b in baselines:
            b.stop()

    unexplained = sum(len(c.unexplained) for c in comparisons)
    text = "\n".join(
        [
            f"## Compatibility: redis-py {clients.redispy_version}, valkey-glide, ioredis "
            f"({time.monotonic() - started:.0f} s)\n",
            report.render_counts(rows),
            "\n## Endpoint-only failures (fail through amr, pass on the baseline)",
            report.render_findings(comparisons),
            *(
                ["\n## Flaky (failed once, passed when run again)", *(f"- {f}" for f in flaky)]
                if flaky
                else []
            ),
            *(["\n## Notes", *_info_notes(out, amr_targets)] if _info_notes(out, amr_targets) else []),
            f"\n{unexplained} endpoint-only failures not on the known list (compat/known_differences.toml)",
            f"records and logs: {out}",
        ]
    )
    (out / "report.md").write_text(text + "\n")
    print(text)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
