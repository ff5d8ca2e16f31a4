#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth`` / ``npx cdk deploy`` (configuration: the ``ttp`` key of cdk.json)."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdk_support.jsii_runtime import skip_argument_type_checks, use_direct_runtime

use_direct_runtime()  # before aws_cdk is imported: the jsii kernel starts with it
skip_argument_type_checks()  # mypy --strict checks these calls; CDK_DEBUG (cdk --debug-app) keeps them

from stacks.app_builder import build_app, default_context  # noqa: E402
from stacks.config import ConfigError  # noqa: E402


def main() -> None:
    try:
        pipeline = build_app(default_context(), outdir=os.environ.get("CDK_OUTDIR"))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    pipeline.app.synth()


if __name__ == "__main__":
    main()
