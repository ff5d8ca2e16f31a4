"""How far the local deployer gets with a large assembly (issue 19: the 1,000-customer assembly, locally).

A benchmark script, not a test: it synthesizes ``--customers`` sample customers (routing
``eventbridge-sharded``, the one docs/infrastructure.md recommends past 97; the IAM roles quota declared
raised, as such a deployment must), starts the emulator in this process and deploys the assembly stack by
stack with :func:`devtools.local_deploy.deploy_assembly`, for at most ``--budget`` seconds. It prints each
hundredth stack, then the stacks deployed of all, the seconds per stack of each kind, the time a whole
deploy would take at that rate, and the first failure if one stopped it.

    .venv/bin/python -m devtools.local_deploy.scale                        # 1,000 customers, 15 minutes
    .venv/bin/python -m devtools.local_deploy.scale --customers 20 --budget 120
    .venv/bin/python -m devtools.local_deploy.scale --assembly /tmp/cdk.out  # an assembly already synthesized
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from devtools.local_deploy import DeployError, deploy_assembly
from devtools.local_deploy.assembly import read_assembly
from devtools.local_deploy.deployer import StackReport

REPO = Path(__file__).resolve().parents[2]
RAISED_ROLES = {"iam.roles-per-account": 3000}
"""The sample puts 500 customers in each of two customer accounts (2 roles each) and 1,000 task roles in the
governance account: over the default 1,000, so the synth declares the raise a real deployment would get."""


class BudgetSpent(Exception):
    """The time budget ran out: the deploy stops after the stack in progress."""


def synthesize(customers: int, outdir: Path) -> float:
    """``python app.py`` for the sample of ``customers``; the seconds it took."""
    context = {
        "ttp:sample-customers": customers,
        "ttp:routing": "eventbridge-sharded" if customers > 97 else "s3",
        "ttp:raised-quotas": RAISED_ROLES,
    }
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "PYTHONPATH": str(REPO),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    started = time.monotonic()
    done = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"python app.py failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def kind(stack_name: str) -> str:
    """``TtpCustomer-c0001`` -> ``TtpCustomer``: stacks of one kind cost about the same."""
    return stack_name.split("-", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds of deploying before it stops")
    parser.add_argument("--assembly", type=Path, help="deploy this assembly instead of synthesizing one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ttp-scale-") as tmp:
        outdir = args.assembly or Path(tmp, "cdk.out")
        if args.assembly is None:
            seconds = synthesize(args.customers, outdir)
            print(f"synthesized {args.customers} customers in {seconds:.1f} s", flush=True)
        total = len(read_assembly(outdir))
        print(f"{total} stacks to deploy", flush=True)

        from devtools.emulator import LocalAws

        server = LocalAws().start()
        seconds_by_kind: dict[str, list[float]] = defaultdict(list)
        in_order: list[float] = []
        started = last = time.monotonic()
        deployed = 0

        def on_stack(report: StackReport) -> None:
            nonlocal deployed, last
            now = time.monotonic()
            seconds_by_kind[kind(report.stack_name)].append(now - last)
            in_order.append(now - last)
            last, deployed = now, deployed + 1
            if deployed % 100 == 0 or deployed <= 3:
                print(f"  {deployed:>5} stacks  {now - started:>7.1f} s  ({report.stack_name})", flush=True)
            if now - started > args.budget:
                raise BudgetSpent

        failure = ""
        try:
            deploy_assembly(outdir, server.endpoint, in_process=True, on_stack=on_stack)
        except BudgetSpent:
            failure = f"stopped: the budget of {args.budget:.0f} s was spent"
        except DeployError as exc:
            failure = f"FAILED: {str(exc).splitlines()[0]}"
        finally:
            server.stop()
        elapsed = time.monotonic() - started
        print(f"deployed {deployed} of {total} stacks in {elapsed:.1f} s" + (f"; {failure}" if failure else ""))
        for name, values in sorted(seconds_by_kind.items()):
            print(f"  {name}: {len(values)} stacks, {sum(values) / len(values):.2f} s per stack")
        if deployed:
            # Later stacks may cost more (the emulator holds more); the rate of the last hundred is the honest one.
            recent = in_order[-100:]
            rate = sum(recent) / len(recent)
            print(f"whole assembly at the last {len(recent)} stacks' rate: {elapsed + rate * (total - deployed):.0f} s")
    return 0 if not failure or failure.startswith("stopped") else 1


if __name__ == "__main__":
    raise SystemExit(main())
