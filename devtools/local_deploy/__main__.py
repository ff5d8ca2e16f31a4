"""``python -m devtools.local_deploy``: deploy a cloud assembly on the emulator and print what was deployed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devtools.iam_engine import PolicyEngine
from devtools.iam_engine.bootstrap import BootstrapGate
from devtools.local_deploy import DeployError, DeployReport, deploy_assembly


def print_report(report: DeployReport) -> None:
    for stack in report.stacks:
        print(f"{stack.stack_name}  account {stack.account}  {stack.region}")
        print(f"  created (CloudFormation): {sum(stack.created.values())}  {_counts(stack.created)}")
        print(f"  applied (API): {sum(stack.applied.values())}  {_counts(stack.applied)}")
        print(f"  recorded, not emulated: {sum(stack.recorded.values())}  {_counts(stack.recorded)}")
        if stack.failure:
            print("  FAILED: " + stack.failure.replace("\n", "\n          "))
    for note in report.notes:
        print(f"note: {note}")
    print(f"{len(report.stacks)} stacks in {report.seconds:.1f}s" + (" (failed)" if report.failed else ""))


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.local_deploy", description=__doc__)
    parser.add_argument("--assembly", type=Path, default=Path("cdk.out"), help="the cloud assembly (cdk.out)")
    parser.add_argument("--endpoint", help="a running emulator; without it one is started in this process")
    parser.add_argument("--world", type=Path, help="write the deployed world (policies, task definitions) as JSON")
    parser.add_argument(
        "--no-bootstrap-gate",
        action="store_true",
        help="do not decide each stack as its account's CloudFormation execution role before creating it",
    )
    parser.add_argument(
        "--serve", action="store_true", help="keep the emulator this command started running until Ctrl-C"
    )
    args = parser.parse_args(argv)
    server = None
    if args.endpoint:
        endpoint = args.endpoint
    else:
        from devtools.emulator import LocalAws

        server = LocalAws().start()
        endpoint = server.endpoint
        print(f"emulator: {endpoint}", flush=True)
    engine = None if args.no_bootstrap_gate else PolicyEngine()
    try:
        try:
            gate = None
            if engine is not None:
                engine.start()
                gate = BootstrapGate(engine)
            report = deploy_assembly(args.assembly, endpoint, in_process=server is not None, gate=gate)
        except DeployError as exc:
            partial = getattr(exc, "report", None)
            if partial is not None:
                print_report(partial)
            else:
                print(f"FAILED: {exc}")
            return 1
        print_report(report)
        if args.world:
            args.world.write_text(json.dumps(report.world.to_json(), indent=2, sort_keys=True))
            print(f"deployed world written to {args.world}")
        if args.serve and server is not None:
            import signal
            import threading

            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            print("serving; Ctrl-C stops the emulator", flush=True)
            stop.wait()
        return 0
    finally:
        if engine is not None:
            engine.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
