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
from collections.abc import MutableMapping
from pathlib import Path

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
