#!/usr/bin/env python3
"""Synth time of the whole app for 1, 10, 50, 200 and 1,000 generated customers.

Two measurements per size, each in a fresh process (what a developer or CI waits for):

* ``python app.py``  - the CDK app alone (CDK_OUTDIR set, as the CLI would), cdk-nag, the quota check
  (cdk_support/quotas.py) and aws-cdk-lib's built-in CloudFormation validation (every template through
  ``@aws/cloudformation-validate``) included;
* ``npx cdk synth``  - the pinned CLI around it (context from cdk.json plus ``-c`` overrides).

Sizes above 97 customers use the routing docs/infrastructure.md recommends there, ``eventbridge-sharded``
(S3 allows 100 notification configurations per bucket, the coordinator takes 3). Also prints the largest
stack (resources, bytes) of each size, then per size the CPU seconds (the app's process and its jsii node
process: on a shared machine wall time measures the neighbours too) and the peak memory of both processes
together, and the seconds per customer from the smallest size of 50 or more to the largest.

    .venv/bin/python benchmarks/synth_bench.py                 # 1, 10, 50, 200, 1000
    .venv/bin/python benchmarks/synth_bench.py --sizes 1,10 --skip-cli
    .venv/bin/python benchmarks/synth_bench.py --sizes 50,200 --skip-cli --no-validation  # its share
    .venv/bin/python benchmarks/synth_bench.py --smallest  # = --sizes 1 --skip-cli: what tests/test_benchmarks.py runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stacks.config import ROUTING_KEY, SAMPLE_CUSTOMERS_KEY  # noqa: E402
from stacks.config_rules import (  # noqa: E402
    COORDINATOR_NOTIFICATION_CONFIGURATIONS,
    S3_MAX_NOTIFICATION_CONFIGURATIONS,
)

MAX_S3_CUSTOMERS = S3_MAX_NOTIFICATION_CONFIGURATIONS - COORDINATOR_NOTIFICATION_CONFIGURATIONS


def _routing(customers: int) -> str:
    return "s3" if customers <= MAX_S3_CUSTOMERS else "eventbridge-sharded"


@dataclass(frozen=True)
class Run:
    wall_seconds: float
    cpu_seconds: float
    """User + system CPU of the process and every descendant it waited for (the jsii node process)."""
    peak_bytes: int
    """The largest sum of the resident memory of the process and its descendants, sampled every 50 ms."""
    quota_breaches: tuple[str, ...] = ()
    """The quota check's errors when it failed the synth (the templates were written, then refused)."""


def _tree_usage(root: int, cpu_ticks: dict[int, int]) -> int:
    """Resident bytes of ``root`` and its descendants (from /proc; 0 where /proc is missing); records each
    one's CPU ticks so far in ``cpu_ticks`` (a process that exits unreaped, as the jsii node process does
    when the app fails, is missing from ``RUSAGE_CHILDREN``)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * resource.getpagesize()
            ticks[pid] = int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        if pid in ticks:
            cpu_ticks[pid] = max(cpu_ticks.get(pid, 0), ticks[pid])
        todo.extend(children.get(pid, []))
    return total


def _env(outdir: Path, *, validation: bool = True) -> dict[str, str]:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "PYTHONPATH": str(REPO),
    }
    if not validation:
        env["CDK_VALIDATION"] = "false"  # aws-cdk-lib's switch for its built-in CloudFormation validation
    return env


def _run(command: list[str], env: dict[str, str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    cpu_ticks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, _tree_usage(process.pid, cpu_ticks))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    breaches = tuple(
        dict.fromkeys(
            line[line.index("ERROR quota '") :].strip() for line in stderr.splitlines() if "ERROR quota '" in line
        )
    )
    if process.returncode != 0 and not breaches:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(reaped, sum(cpu_ticks.values()) / os.sysconf("SC_CLK_TCK"))
    return Run(wall_seconds=elapsed, cpu_seconds=cpu, peak_bytes=peak, quota_breaches=breaches)


def synth_app(customers: int, outdir: Path, *, validation: bool = True) -> Run:
    env = _env(outdir, validation=validation)
    env["CDK_CONTEXT_JSON"] = json.dumps({SAMPLE_CUSTOMERS_KEY: customers, ROUTING_KEY: _routing(customers)})
    return _run([sys.executable, "app.py"], env)


def synth_cli(customers: int, outdir: Path, *, validation: bool = True) -> Run:
    command = [
        "npx",
        "--no-install",
        "cdk",
        "synth",
        "--quiet",
        "--no-notices",
        "--output",
        str(outdir),
        "-c",
        f"{SAMPLE_CUSTOMERS_KEY}={customers}",
        "-c",
        f"{ROUTING_KEY}={_routing(customers)}",
    ]
    return _run(command, _env(outdir, validation=validation))


def largest_stack(outdir: Path) -> tuple[str, int, int, int]:
    """(name, resources, bytes, number of stacks) of the stack with the most resources."""
    rows = []
    for path in outdir.glob("*.template.json"):
        template = json.loads(path.read_text())
        rows.append((len(template["Resources"]), path.stat().st_size, path.name.removesuffix(".template.json")))
    resources, size, name = max(rows)
    return name, resources, size, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,50,200,1000", help="comma-separated customer counts")
    parser.add_argument("--skip-cli", action="store_true", help="only time python app.py")
    parser.add_argument(
        "--smallest",
        action="store_true",
        help="1 customer, python app.py only (the test suite's run; tests/infra runs the pinned CLI)",
    )
    parser.add_argument(
        "--no-validation",
        action="store_true",
        help="without aws-cdk-lib's built-in CloudFormation validation (CDK_VALIDATION=false): its share of the time",
    )
    args = parser.parse_args()
    if args.smallest:
        args.sizes, args.skip_cli = "1", True
    sizes = [int(s) for s in args.sizes.split(",") if s]

    print(f"{'customers':>9} {'routing':>11} {'app.py (s)':>10} {'cdk synth (s)':>13} {'stacks':>6}  largest stack")
    runs: dict[int, Run] = {}
    for customers in sizes:
        with tempfile.TemporaryDirectory(prefix="ttp-bench-") as tmp:
            app_out, cli_out = Path(tmp, "app"), Path(tmp, "cli")
            validation = not args.no_validation
            runs[customers] = app_run = synth_app(customers, app_out, validation=validation)
            cli_run = None if args.skip_cli else synth_cli(customers, cli_out, validation=validation)
            name, resources, size, stacks = largest_stack(app_out)
        cli_text = "-" if cli_run is None else f"{cli_run.wall_seconds:.1f}"
        print(
            f"{customers:>9} {_routing(customers):>11} {app_run.wall_seconds:>10.1f} {cli_text:>13} {stacks:>6}  "
            f"{name}: {resources} resources, {size / 1024:.0f} KiB",
            flush=True,
        )
    print(f"\n{'customers':>9} {'app.py CPU (s)':>14} {'CPU s/customer':>14} {'peak memory (MiB)':>17}")
    for customers, run in runs.items():
        print(
            f"{customers:>9} {run.cpu_seconds:>14.1f} {run.cpu_seconds / customers:>14.3f} "
            f"{run.peak_bytes / 2**20:>17.0f}"
        )
    for customers, run in runs.items():
        for breach in run.quota_breaches:
            print(f"{customers} customers: the quota check failed the synth: {breach}")
    large = [n for n in runs if n >= 50]
    if len(large) >= 2:
        low, high = min(large), max(large)
        wall = (runs[high].wall_seconds - runs[low].wall_seconds) / (high - low)
        cpu = (runs[high].cpu_seconds - runs[low].cpu_seconds) / (high - low)
        print(
            f"seconds per customer from {low} to {high} customers: {wall:.3f} wall, {cpu:.3f} CPU "
            f"(goal 0.06); peak memory at {high}: {runs[high].peak_bytes / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
