"""Every script in ``benchmarks/`` runs at its smallest size (``--smallest``) and prints its figures.

No timing is asserted: the point is that a benchmark cannot rot unnoticed (``fanout_bench.py`` once
crashed at N=10 on a settings change nobody ran it against). The scripts are found by glob (a name
starting with ``_`` is a helper, not a script), so a new benchmark is run here as soon as it exists;
it must accept ``--smallest`` and declare below the figures it prints, or this test fails saying so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tests.support.deployed as dp

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(path for path in (ROOT / "benchmarks").glob("*.py") if not path.name.startswith("_"))  # not helpers
pytestmark = pytest.mark.slow

sample_assembly = dp.sample_assembly  # the session's sample assembly (a fixture), synthesized once
TIMEOUT_SECONDS = 300  # each script; all of them together took 52 s on a 2-core machine at a load of 10

# script name -> patterns of the figures it prints at its smallest size; every group is a number.
FIGURES: dict[str, list[str]] = {
    "processing_bench": [
        r"total \(processor\)\s+(\d+\.\d+)",  # AWS calls per trigger
        # each pair (benchmarks/_compare.py); the emulator's CPU, read in clock ticks, may round to 0 for 3 triggers
        r"floor +(\d+\.\d+) triggers/s, (\d+\.\d) ms CPU \(emulator \d+\.\d\)",
        r"worker +(\d+\.\d+) triggers/s, (\d+\.\d) ms CPU \(emulator \d+\.\d\)",
        r"the worker reaches (\d+\.\d+) of the floor's triggers/s",
        r"emulator CPU per trigger / worker CPU per trigger: median \d+\.\d+",
        r"one worker per customer \(x3\):\s+(\d+\.\d+) triggers/s",
        r"(\d+) MiB of the 512 MiB task",
        r"p50 (\d+) ms\s+p99 (\d+) ms",
        r"(\d+) emails in (\d+\.\d+) s",
    ],
    "fanout_bench": [
        r"N=\s*(10): +(\d+) S3 requests \((\d+\.\d)/customer\)",
        r"^\| (10) \| (\d+) \| (\d+\.\d) \| \d+ \| (\d+) \| \d+\.\d\d \| (\d+\.\d) s \| \d+ "
        r"\| (\d+\.\d) \| (\d+\.\d) \| (\d+\.\d) \| \d+ \|$",
    ],
    "delivery_bench": [r"^ +(100) +([\d,]+) +(\d+) +1 +(\d+\.\d)$", r"^ +(100) +([\d,]+) +(\d+) +32 +(\d+\.\d)$"],
    "synth_bench": [r"^ +(1) +s3 +(\d+\.\d) +- +(\d+)  \w+: (\d+) resources, (\d+) KiB$"],  # no CLI run
    "iam_engine_bench": [
        r"request mix: (\d+) requests of the sample's roles, (\d+) allowed, (\d+) denied",
        r"start-up: (\d+\.\d+) s",
        r"one thread: (\d+) decisions/s",
        r"round trip: p50 (\d+\.\d+) ms  p99 (\d+\.\d+) ms",
        r"4 threads: (\d+) decisions/s",
    ],
}


def bench_env() -> dict[str, str]:
    """This environment without the pipeline's and AWS's variables: each script sets up its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTP_", "AWS_"))}
    return {**env, "PYTHONPATH": str(ROOT), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def problems_of(script: Path, returncode: int, stdout: str, stderr: str) -> list[str]:
    """What is wrong with one run: its exit status, and each declared figure it did not print as a number > 0."""
    if script.stem not in FIGURES:
        return [f"declare the figures benchmarks/{script.name} prints in FIGURES of tests/test_benchmarks.py"]
    if returncode != 0:
        return [f"exit {returncode}:\n{stdout[-2000:]}{stderr[-3000:]}"]
    problems = []
    for pattern in FIGURES[script.stem]:
        found = re.search(pattern, stdout, re.MULTILINE)
        if found is None:
            problems.append(f"did not print /{pattern}/")
        elif not all(float(group.replace(",", "")) > 0 for group in found.groups()):
            problems.append(f"a figure is not positive: {found.group(0)!r}")
    return problems + ([f"its output:\n{stdout}"] if problems else [])


def test_every_declared_benchmark_exists() -> None:
    assert {path.stem for path in BENCHMARKS} >= set(FIGURES), "FIGURES names a script benchmarks/ no longer has"


def test_every_benchmark_runs_at_its_smallest_size_and_prints_its_figures(
    tmp_path: Path, sample_assembly: Path
) -> None:
    """All scripts at once: they mostly wait (on their emulator, on node), so together they take about
    as long as the slowest one instead of the sum. One test, so pytest-xdist cannot start them twice.
    The policy-engine benchmark reads the session's sample assembly (``--assembly``) instead of
    synthesizing its own: its figures are decisions, not synthesis, and the suite synthesizes the sample
    once for everyone."""
    arguments = {"iam_engine_bench": ["--assembly", str(sample_assembly)]}
    assert BENCHMARKS, "no benchmarks/*.py found"
    runs: dict[Path, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    try:
        for script in BENCHMARKS:
            stdout, stderr = tmp_path / f"{script.stem}.out", tmp_path / f"{script.stem}.err"
            with stdout.open("wb") as out, stderr.open("wb") as err:
                process = subprocess.Popen(
                    [sys.executable, str(script), "--smallest", *arguments.get(script.stem, [])],
                    cwd=ROOT,
                    env=bench_env(),
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own process group: a timeout stops its workers too
                )
            runs[script] = (process, stdout, stderr)
        failures = {}
        for script, (process, stdout, stderr) in runs.items():
            returncode = process.wait(timeout=TIMEOUT_SECONDS)
            problems = problems_of(script, returncode, stdout.read_text(), stderr.read_text())
            if problems:
                failures[script.name] = "\n".join(problems)
    finally:
        for process, _, _ in runs.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert not failures, "\n\n".join(f"benchmarks/{name}: {text}" for name, text in failures.items())
