#!/usr/bin/env python3
"""Decisions per second of the policy engine (devtools.iam_engine) over its pipe, on the sample's policies.

The sample app (cdk.json) is synthesized first (``python app.py``, not timed), or ``--assembly`` names a
``cdk.out`` already there. Then one engine process decides a mix of the requests the isolation tests make:
each processor's GET/PUT/DELETE on its own and the other customer's prefixes of the bucket (cross-account,
with the bucket policy of ~20 statements), the coordinator's conditional archive writes, and each processor
assuming each sender role (trust policy with ExternalId). Printed: the engine's start-up time, decisions/s
and the round trip (p50, p99) from one thread, and decisions/s from 4 threads sharing the engine.

    .venv/bin/python benchmarks/iam_engine_bench.py              # 5000 decisions per measurement
    .venv/bin/python benchmarks/iam_engine_bench.py --smallest   # 200: what tests/test_benchmarks.py runs
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.iam_engine import PolicyEngine, Principal  # noqa: E402
from devtools.iam_engine.templates import Assembly, ResourcePolicy  # noqa: E402
from runtime.contract import names  # noqa: E402
from stacks.config import config_from_context, load_cdk_json  # noqa: E402

Request = tuple[Principal, str, str, ResourcePolicy, dict[str, str]]


def synthesize(outdir: Path) -> None:
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"python app.py failed:\n{result.stderr[-3000:]}")


def requests(assembly: Assembly) -> list[Request]:
    config = config_from_context(load_cdk_json(REPO / "cdk.json"))
    bucket = assembly.bucket_policy(config.metadata_bucket_name)
    codes = [customer.code for customer in config.customers]
    external_ids = {customer.code: customer.external_id for customer in config.customers}
    tls = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    found: list[Request] = []
    for code, other in itertools.product(codes, codes):
        me = assembly.role_named(names.processor_role_name(code)).principal()
        for action, prefix, header in (
            ("s3:GetObject", "customers", {}),
            ("s3:DeleteObject", "customers", {"s3:if-match": '"e1"'}),
            ("s3:PutObject", "processing", {"s3:if-none-match": "*"}),
            ("s3:PutObject", "archive", {"s3:if-match": '"e1"'}),
        ):
            found.append((me, action, f"{bucket.arn}/{prefix}/{other}/CHG-1.json", bucket, {**tls, **header}))
        sender = assembly.role_named(names.sender_role_name(other))
        trust = ResourcePolicy(sender.arn, sender.account, sender.trust_policy)
        found.append((me, "sts:AssumeRole", sender.arn, trust, {"sts:ExternalId": external_ids[other]}))
    coordinator = assembly.role_named(names.COORDINATOR_ROLE_NAME).principal()
    for header in ({}, {"s3:if-match": '"e1"'}, {"s3:if-none-match": "*"}):
        found.append((coordinator, "s3:PutObject", f"{bucket.arn}/archive/CHG-1.json", bucket, {**tls, **header}))
    return found


def decide(engine: PolicyEngine, request: Request) -> bool:
    principal, action, resource, policy, context = request
    return engine.decide(
        principal, action, resource, resource_account=policy.account, resource_policy=policy.document, context=context
    ).allowed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=5000, help="decisions per measurement")
    parser.add_argument("--assembly", type=Path, help="a synthesized cdk.out (default: synthesize the sample)")
    parser.add_argument("--smallest", action="store_true", help="200 decisions (the test suite's run)")
    args = parser.parse_args()
    count = 200 if args.smallest else args.decisions
    with tempfile.TemporaryDirectory() as scratch:
        outdir = args.assembly or Path(scratch) / "cdk.out"
        if args.assembly is None:
            synthesize(outdir)
        mix = requests(Assembly.from_cloud_assembly(outdir))
    work = list(itertools.islice(itertools.cycle(mix), count))

    started = time.perf_counter()
    engine = PolicyEngine()
    engine.start()
    start_up = time.perf_counter() - started
    try:
        allowed = sum(decide(engine, request) for request in mix)  # warm-up, and the mix's share of allows
        round_trips = []
        started = time.perf_counter()
        for request in work:
            sent = time.perf_counter()
            decide(engine, request)
            round_trips.append(time.perf_counter() - sent)
        sequential = count / (time.perf_counter() - started)
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda request: decide(engine, request), work))
        threaded = count / (time.perf_counter() - started)
    finally:
        engine.close()

    quantiles = statistics.quantiles(round_trips, n=100)
    print(f"policy engine @cloud-copilot/iam-simulate {engine.version}, one node process, JSON lines over a pipe")
    print(f"request mix: {len(mix)} requests of the sample's roles, {allowed} allowed, {len(mix) - allowed} denied")
    print(f"start-up: {start_up:.2f} s")
    print(f"one thread: {sequential:.0f} decisions/s over {count} decisions")
    print(f"round trip: p50 {quantiles[49] * 1000:.2f} ms  p99 {quantiles[98] * 1000:.2f} ms")
    print(f"4 threads: {threaded:.0f} decisions/s over {count} decisions")


if __name__ == "__main__":
    main()
