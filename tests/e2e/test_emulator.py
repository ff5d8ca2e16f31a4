"""``python -m devtools.emulator`` on its own (issue 11, README): it prints the endpoint and the variables to
export; the platform the CLI works against from another shell is the deployed sample (``make emulator``,
``python -m devtools.local_run``), whose operator exports are used here. ``--sandbox`` (the older
hand-built layout) is retired and says what to run instead."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import deployed as dp

ROOT = Path(__file__).resolve().parents[2]
sample_assembly = dp.sample_assembly  # synthesized once per session


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTP_", "AWS_"))}
    return {**env, "PYTHONPATH": str(ROOT)}


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_emulator_on_its_own_prints_its_endpoint_first_then_what_to_export() -> None:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "devtools.emulator"], cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert emulator.stdout is not None
        endpoint = emulator.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")  # the first line alone: benchmarks read it
        exported: dict[str, str] = {}
        for line in emulator.stdout:
            if line.startswith("export "):
                name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
                exported[name] = value
            if line.startswith("# Ctrl-C"):
                break
        assert exported["AWS_ENDPOINT_URL"] == endpoint and exported["AWS_ACCESS_KEY_ID"]
    finally:
        assert stop(emulator) == 0


def test_the_retired_sandbox_option_says_to_run_the_deployed_world() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "devtools.emulator", "--sandbox"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "--sandbox" in refused.stderr and "make emulator" in refused.stderr, refused.stderr


def test_the_cli_works_from_another_shell_with_the_deployed_worlds_operator_exports(sample_assembly: Path) -> None:
    # make emulator, on the session's assembly, without running the services nor the bootstrap gate (it
    # decides the stacks before they are created: ~3.5 CPU s; make demo's full run in test_demo keeps it)
    options = ["--assembly", str(sample_assembly), "--skip-synth", "--no-services", "--no-bootstrap-gate"]
    world = subprocess.Popen(
        [sys.executable, "-m", "devtools.local_run", *options],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert world.stdout is not None
        exported: dict[str, str] = {}
        operator = False
        for line in world.stdout:
            if line.startswith("# an operator"):
                operator = True
            elif line.startswith("# service") or line.startswith("# Ctrl-C"):
                break
            elif operator and line.startswith("export "):
                name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
                exported[name] = value
        assert exported["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") and exported["AWS_ACCESS_KEY_ID"]
        assert exported["TTP_BUCKET_NAME"] and set(json.loads(exported["TTP_CUSTOMER_CODES"])) >= {"hts", "htsnonprod"}
        assert exported["TTP_QUEUE_REGION"] and exported["TTP_QUEUE_ACCOUNT"]

        env = {**clean_env(), **exported}
        submitted = subprocess.run(  # the README's example: the document on stdin
            [sys.executable, "-m", "runtime", "submit", "-", "--json"],
            input=json.dumps({"change_id": "CHG-7", "title": "Seven", "customers": ["hts"]}),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert submitted.returncode == 0, submitted.stderr
        assert json.loads(submitted.stdout)["customers"] == ["hts"]
        health = subprocess.run(
            [sys.executable, "-m", "runtime", "health", "--skip-ecs", "--no-cloudwatch", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode in (0, 1), health.stderr
        assert "hts" in json.dumps(json.loads(health.stdout))
    finally:
        assert stop(world) == 0


def test_settle_waits_for_a_request_that_reached_the_server_before_it() -> None:
    """The SIGKILL chaos test reads what a killed worker's last requests did only after ``settle()``:
    a request already on the wire is still served after its client died, and must be waited for."""
    import socket
    import threading
    import time

    from devtools.emulator import LocalAws

    aws = LocalAws().start()
    try:
        host, port = aws.endpoint.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)))
        slow.sendall(b"GET /moto-api/data.json HTTP/1.1\r\nHost: localhost\r\n")  # headers not finished yet
        time.sleep(0.3)  # accepted, and its thread is reading
        outcome: list[BaseException | None] = []

        def settle() -> None:
            try:
                aws.settle(timeout=10)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=settle)
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive(), "settle() returned while a request opened before it was still being served"

        slow.sendall(b"\r\n")  # the request is complete: the server answers it
        assert slow.recv(64).startswith(b"HTTP/1.1 200")
        waiter.join(10)
        assert outcome == [None]
        slow.close()

        dying = socket.create_connection((host, int(port)))
        dying.sendall(b"GET /moto-api/data.json HTTP/1.1\r\n")
        time.sleep(0.3)
        dying.close()  # its client is gone before finishing it: nothing is left to wait for
        aws.settle(timeout=10)
    finally:
        aws.stop()
