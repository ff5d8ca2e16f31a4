"""``python -m devtools.emulator`` on its own (issue 11, README): it prints the endpoint and the
variables to export, and with ``--sandbox`` the sample bucket, queues and SES, so the CLI works
against it from another shell."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTP_", "AWS_"))}
    return {**env, "PYTHONPATH": str(ROOT)}


def test_the_emulator_on_its_own_prints_what_to_export_and_the_cli_works_against_it() -> None:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "devtools.emulator", "--sandbox"],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
        assert set(json.loads(exported["TTP_CUSTOMER_QUEUES"])) >= {"hts", "htsnonprod"}

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
        emulator.send_signal(signal.SIGTERM)
        try:
            emulator.wait(timeout=20)
        finally:
            if emulator.poll() is None:
                emulator.kill()
    assert emulator.returncode == 0


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
