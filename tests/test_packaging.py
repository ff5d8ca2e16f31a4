"""The package another CDK app installs: its declared dependencies agree with the locks, and its wheel,
installed into a fresh venv, synthesizes an app from the installed constructs outside this repository.

The wheel test builds offline (``pip wheel --no-build-isolation --no-index`` with the dev lock's
setuptools) from a copy of the sources, so the repository gets no ``build/`` or ``*.egg-info``. The
fresh venv sees the test venv's packages through a ``.pth`` file (no download); only the wheel brings
``runtime``, ``cdk_constructs``, ``cdk_support`` and ``stacks``. ``-m "not packaging"`` skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.test_locks import lock_entries, normalize

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = ("runtime", "cdk_constructs", "cdk_support", "stacks")
BUILD_CONTEXT = ("Dockerfile", ".dockerignore", "requirements.txt")

MINIMAL_APP = '''
"""A foreign CDK app: one platform construct and one customer construct, the image built from the
installed package's runtime/ directory (the default of CustomerProcessorProps.image)."""
import json
import sys

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ecs as ecs

import cdk_constructs
from cdk_constructs.customer_processor import CustomerProcessor, CustomerProcessorProps
from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from cdk_constructs.platform_network import PlatformNetwork

app = App(outdir=sys.argv[1])
stack = Stack(app, "Consumer", env=Environment(account="123456789012", region="eu-west-1"))
network = PlatformNetwork(stack, "Network")
cluster = ecs.Cluster(stack, "Cluster", vpc=network.vpc)
queue = CustomerQueue(stack, "Queue", CustomerQueueProps("acme", source_account="123456789012", bucket_name="b"))
CustomerProcessor(
    stack,
    "Processor",
    CustomerProcessorProps(
        customer_code="acme",
        cluster=cluster,
        queue=queue.queue,
        bucket_name="b",
        customer_account="333333333333",
        from_address="ops@acme.example",
        sender_external_id="acme-external",
    ),
)
app.synth()
print(json.dumps({"constructs_file": cdk_constructs.__file__, "sys_path": sys.path}))
'''


def _dependencies() -> list[Requirement]:
    project = PYPROJECT["project"]
    extras = [dep for deps in project["optional-dependencies"].values() for dep in deps]
    return [Requirement(dep) for dep in [*project["dependencies"], *extras] if not dep.startswith(project["name"])]


def test_declared_dependencies_admit_the_locked_versions() -> None:
    """pyproject's ranges hold the versions the dev lock (and so the test suite) pins."""
    locked = lock_entries(ROOT / "requirements-dev.txt")
    outside = {
        str(req): locked[normalize(req.name)][0] if normalize(req.name) in locked else "not locked"
        for req in _dependencies()
        if normalize(req.name) not in locked or not req.specifier.contains(locked[normalize(req.name)][0])
    }
    assert outside == {}


def test_image_lock_input_is_the_runtime_extra() -> None:
    """What the image installs (runtime/requirements.in) is the package's base plus its ``runtime`` extra."""
    project = PYPROJECT["project"]
    declared = {
        normalize(Requirement(d).name) for d in [*project["dependencies"], *project["optional-dependencies"]["runtime"]]
    }
    image_inputs = {
        normalize(line.split("==")[0])
        for line in (ROOT / "runtime" / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert image_inputs == declared


def _copy_sources(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, destination / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, destination / name)
    return destination


@pytest.mark.packaging
@pytest.mark.slow
def test_wheel_installs_and_synthesizes_a_minimal_app_outside_the_repo(tmp_path: Path) -> None:
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    sources = _copy_sources(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(sources),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
        ],
        check=True,
        env=offline,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("transient_trigger_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"runtime/{name}" for name in BUILD_CONTEXT} <= names
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == set(PACKAGES)

    consumer = tmp_path / "consumer"
    venv.create(consumer, with_pip=False)
    consumer_python = consumer / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [consumer_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The test venv's packages (aws-cdk-lib, pydantic, ...) without a download; never the repository.
    (site_packages / "test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(consumer_python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        env=offline,
        cwd=tmp_path,
    )

    app = tmp_path / "app" / "app.py"
    app.parent.mkdir()
    app.write_text(MINIMAL_APP)
    clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [consumer_python, "-I", str(app), str(tmp_path / "cdk.out")],
        check=True,
        capture_output=True,
        text=True,
        # Without aws-cdk-lib's built-in CloudFormation validation: ~6 CPU s in a fresh process, and the
        # templates are the same (the shared sample's synthesis runs it, tests/infra/test_compliance.py).
        env={**clean_env, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_VALIDATION": "false"},
        cwd=app.parent,
        timeout=300,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["constructs_file"]).is_relative_to(site_packages)
    assert not any(Path(entry).resolve() == ROOT for entry in report["sys_path"] if entry)

    template = json.loads((tmp_path / "cdk.out" / "Consumer.template.json").read_text())
    task_definitions = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    assert len(task_definitions) == 1
    (container,) = task_definitions[0]["Properties"]["ContainerDefinitions"]
    assert container["Command"] == ["python", "-m", "runtime", "worker"]
    assets = json.loads((tmp_path / "cdk.out" / "Consumer.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    context = tmp_path / "cdk.out" / image["source"]["directory"]
    assert (context / "Dockerfile").read_text() == (ROOT / "runtime" / "Dockerfile").read_text()
    assert (context / "requirements.txt").read_text() == (ROOT / "runtime" / "requirements.txt").read_text()
    assert (context / "__main__.py").is_file()
