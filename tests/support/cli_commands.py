"""The typer app's commands, found by walking it, so a test over "every command" covers a new one."""

from __future__ import annotations

from typing import Any

import typer

from runtime.cli import app


def leaf_commands() -> list[tuple[list[str], Any]]:
    """Every runnable (sub)command of the ops CLI: its path of names and its click command."""
    found: list[tuple[list[str], Any]] = []

    def walk(command: Any, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            found.append((path, command))

    walk(typer.main.get_command(app), [])
    return found
