"""Run the jsii kernel without its relay process (synth time, issue 19).

The Python client of jsii starts ``node bin/jsii-runtime.js``, which spawns a second node process for the
kernel and copies every request and response between the two: at 100 customers about 30,000 messages, and
about a seventh of the synth's CPU (the relay's own and the kernel's socket writes to it). With
:func:`use_direct_runtime`, called before ``aws_cdk`` is imported (``app.py``), ``JSII_RUNTIME`` names
``jsii_direct.js`` instead, which loads the same kernel program in the first node process and gives it
stdin / stdout as its channel (console output still reaches stderr as the relay sends it).

It is chosen only when the installed kernel program reads and writes its channel as this file expects
(:data:`CHANNEL_MARKER`), and never over a ``JSII_RUNTIME`` the user set: with another jsii version the
default runtime runs, only slower. One difference remains: with ``JSII_DEBUG`` set, the kernel's protocol
trace reaches stderr unwrapped, and the Python client prints those lines as raw bytes.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from types import ModuleType

DIRECT_RUNTIME = Path(__file__).with_name("jsii_direct.js")
PROGRAM_ENV = "TTP_JSII_PROGRAM"
"""Where ``jsii_direct.js`` finds the kernel program (the one embedded in the ``jsii`` Python package)."""
CHANNEL_MARKER = "readFD:3,writeFD:3"
"""How the kernel program of @jsii/runtime 1.x opens its channel (fd 3 both ways), which the direct entry
point redirects to stdin / stdout."""


def embedded_program() -> Path | None:
    """The kernel program shipped inside the ``jsii`` Python package, if it is there."""
    spec = importlib.util.find_spec("jsii")
    if spec is None or spec.origin is None:
        return None
    program = Path(spec.origin).parent / "_embedded" / "jsii" / "lib__program.js"
    return program if program.is_file() else None


def use_direct_runtime(environ: MutableMapping[str, str] = os.environ, program: Path | None = None) -> bool:
    """Point ``JSII_RUNTIME`` at the direct entry point; True if it did. Call before ``aws_cdk`` is imported
    (the kernel starts with the first jsii import). ``program`` defaults to :func:`embedded_program`."""
    if "JSII_RUNTIME" in environ:
        return False
    program = program or embedded_program()
    if program is None or CHANNEL_MARKER not in program.read_text(encoding="utf-8", errors="replace"):
        return False
    environ["JSII_RUNTIME"] = str(DIRECT_RUNTIME)
    environ[PROGRAM_ENV] = str(program)
    return True


DEBUG_ENV = "CDK_DEBUG"
"""aws-cdk-lib's debug switch (``cdk synth --debug-app`` sets it): with it, every argument is checked."""


def _no_check(argname: str, value: object, expected_type: object) -> object:
    return value


def skip_argument_type_checks(environ: Mapping[str, str] = os.environ, module: ModuleType | None = None) -> bool:
    """Skip jsii's run-time type checks of every argument passed to aws_cdk; True if they are skipped.

    Every generated method and struct of aws-cdk-lib checks each argument with typeguard before its request
    (about a fifth of the app's Python CPU at 100 customers, ~0.01 s per customer): the same facts
    ``mypy --strict`` proves of ``stacks/`` and ``cdk_constructs/``, and ``cdk.json``'s values are
    validated by the config's models before any construct sees them. The kernel still rejects a value it
    cannot convert. This is what ``python -O`` skips, without compiling aws-cdk-lib again.

    Only for a jsii whose ``check_type`` reads the resolved check from its module (``_resolved_check``, as
    ``jsii._type_checking`` of jsii 1.12x does); never with CDK_DEBUG set. ``module`` defaults to jsii's."""
    if environ.get(DEBUG_ENV, "").lower() in ("1", "on", "true"):
        return False
    if module is None:
        module = importlib.import_module("jsii._type_checking")
    check = getattr(module, "check_type", None)
    code = getattr(check, "__code__", None)
    if not hasattr(module, "_resolved_check") or code is None or "_resolved_check" not in code.co_names:
        return False
    module._resolved_check = _no_check  # type: ignore[attr-defined]
    return True
