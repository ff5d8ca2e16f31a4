"""The typer application every command module registers on (``runtime.cli`` does the registering, in
the order ``--help`` lists them), and the console-script entry point."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Transient Trigger Pipeline runtime and operations.")


def main() -> None:
    app()
