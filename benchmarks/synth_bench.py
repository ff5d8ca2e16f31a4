#!/usr/bin/env python3
"""Synth time of the whole app for 1, 10, 50 and 200 generated customers.

Two measurements per size, each in a fresh process (what a developer or CI waits for):

* ``python app.py``  - the CDK app alone (CDK_OUTDIR set, as the CLI would), cdk-nag included;
* ``npx cdk synth``  - the pinned CLI around it (context from cdk.json plus ``-c`` overrides).

Sizes above 100 customers use EventBridge routing (S3 allows 100 notification configurations per
bucket). Also prints the largest stack (resources, bytes) of each size.

    .venv/bin/python benchmarks/synth_bench.py                 # 1, 10, 50, 200
    .venv/bin/python benchmarks/synth_bench.py --sizes 1,10 --skip-cli
    .venv/bin/python benchmarks/synth_bench.py --smallest  # = --sizes 1 --skip-cli: what tests/test_benchmarks.py runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stacks.config import ROUTING_KEY, S3_MAX_NOTIFICATION_CONFIGURATIONS, SAMPLE_CUSTOMERS_KEY  # noqa: E402


def _routing(customers: int) -> str:
    return "s3" if customers <= S3_MAX_NOTIFICATION_CONFIGURATIONS else "eventbridge"


def _env(outdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "PYTHONPATH": str(REPO),
    }


def _run(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed


def synth_app(customers: int, outdir: Path) -> float:
    env = _env(outdir)
    env["CDK_CONTEXT_JSON"] = json.dumps({SAMPLE_CUSTOMERS_KEY: customers, ROUTING_KEY: _routing(customers)})
    return _run([sys.executable, "app.py"], env)


def synth_cli(customers: int, outdir: Path) -> float:
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
    return _run(command, _env(outdir))


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
    parser.add_argument("--sizes", default="1,10,50,200", help="comma-separated customer counts")
    parser.add_argument("--skip-cli", action="store_true", help="only time python app.py")
    parser.add_argument(
        "--smallest",
        action="store_true",
        help="1 customer, python app.py only (the test suite's run; tests/infra runs the pinned CLI)",
    )
    args = parser.parse_args()
    if args.smallest:
        args.sizes, args.skip_cli = "1", True
    sizes = [int(s) for s in args.sizes.split(",") if s]

    print(f"{'customers':>9} {'routing':>11} {'app.py (s)':>10} {'cdk synth (s)':>13} {'stacks':>6}  largest stack")
    for customers in sizes:
        with tempfile.TemporaryDirectory(prefix="ttp-bench-") as tmp:
            app_out, cli_out = Path(tmp, "app"), Path(tmp, "cli")
            app_seconds = synth_app(customers, app_out)
            cli_seconds = None if args.skip_cli else synth_cli(customers, cli_out)
            name, resources, size, stacks = largest_stack(app_out)
        cli_text = "-" if cli_seconds is None else f"{cli_seconds:.1f}"
        print(
            f"{customers:>9} {_routing(customers):>11} {app_seconds:>10.1f} {cli_text:>13} {stacks:>6}  "
            f"{name}: {resources} resources, {size / 1024:.0f} KiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
