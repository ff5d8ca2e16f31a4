"""Customer processors and the change coordinator as real processes against moto's server and the fake Graph,
on the deployed sample assembly (tests/support/deployed.py).

What the demo does (docs/design.md §5): only the coordinator's task definition has the Graph settings (tenant,
client, organizer, the contact-reader roles; the client secret from Secrets Manager; only the msal authority
and Graph's URL point at the fake, with its CA); the customers' processors get none. Two customers
processing one change that asks for a meeting → the coordinator creates exactly one meeting, with the
union of both customers' ``aws-calendar`` subscribers, records it once in the archive and folds both
results. (tests/runtime/coordinator covers the meeting
logic in-process, and the coordinator process without Graph; this is the one over HTTP, end to end.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools.emulator import LocalAws
from devtools.fake_graph import FakeGraph
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from tests.support import deployed as dp

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "TTP_VISIBILITY_TIMEOUT_SECONDS": "60",
    "TTP_DRAIN_SECONDS": "5",
    "TTP_RECEIVE_WAIT_SECONDS": "1",
    "TTP_RETRY_BASE_SECONDS": "1",
}
sample_assembly = dp.sample_assembly  # synthesized once per session
deploy_server = dp.deploy_server  # the emulator over HTTP, one per module, in this process


def start(command: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], Any]:
    out = log.open("w")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TTP_", "REQUESTS_CA_BUNDLE"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime", command],
        env={**base, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return proc, out


@pytest.mark.slow
def test_processors_and_the_coordinator_schedule_one_meeting_from_the_fake_servers_env(
    deploy_server: LocalAws, sample_assembly: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with FakeGraph() as fake:
        customers = dp.customer_specs(dp.sandbox_contacts())
        box = dp.deploy_sample(deploy_server, sample_assembly, customers, graph_secret=fake.client_secret)
        dp.use_operator(box, monkeypatch)
        coordinator_env = box.service_env(None, fake, **SETTINGS, TTP_FOLD_LINGER_SECONDS="0.5")
        processes = [start("coordinator", coordinator_env, tmp_path / "coordinator.log")]
        for code in ("hts", "htsnonprod"):  # the processors hold no Graph secret
            env = box.service_env(code, **SETTINGS)
            assert not [name for name in env if "GRAPH" in name], env
            processes.append(start("worker", env, tmp_path / code))
        s3 = boto3.client("s3", region_name=box.region)
        submit_change(
            ArchiveStore(s3, box.bucket),
            TriggerStore(s3, box.bucket),
            {
                "change_id": "CHG-W1",
                "title": "Worker meeting",
                "customers": ["hts", "htsnonprod"],
                "meeting": {"start_time": "2026-12-01T10:00:00Z", "end_time": "2026-12-01T11:00:00Z"},
            },
            user_id="test",
        )
        doc: dict[str, Any] = {}

        def processed(doc: dict[str, Any]) -> set[str]:
            return {m["customer_code"] for m in doc["modifications"] if m["modification_type"] == "processed"}

        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                doc = ArchiveStore(s3, box.bucket).read_json("CHG-W1")
                if processed(doc) == {"hts", "htsnonprod"} and doc.get("meeting_metadata"):
                    break
                time.sleep(0.3)
        finally:
            exit_codes = []
            for proc, out in processes:
                proc.send_signal(signal.SIGTERM)
                exit_codes.append(proc.wait(30))
                out.close()
        logs = {p.name: p.read_text()[-2000:] for p in tmp_path.iterdir()}
        assert exit_codes == [0, 0, 0], logs
        assert processed(doc) == {"hts", "htsnonprod"}, logs
        [event] = fake.events()
        assert fake.create_requests == 1
        assert {a["emailAddress"]["address"].lower() for a in event["attendees"]} == {
            "lead@hts.example.com",
            "dev@htsnonprod.example.com",
        }
        assert doc["meeting_metadata"]["meeting_id"] == event["id"]
        assert [m["modification_type"] for m in doc["modifications"]].count("meeting_scheduled") == 1
        [scheduled] = [m for m in doc["modifications"] if m["modification_type"] == "meeting_scheduled"]
        assert scheduled["user_id"] == "coordinator" and scheduled["revision"] == 1
        assert fake.token_requests == 1  # one msal application, hence one token, in the one coordinator process
        for code in ("hts", "htsnonprod"):  # the processors never talked to Graph
            assert "graph" not in (tmp_path / code).read_text().lower()
