"""The command line: ``python -m runtime …`` and the ``ttp`` console script.

Job: parse arguments, call ``runtime.ops`` / ``runtime.pipeline`` / ``runtime.archive``, render the
result (rich tables or one JSON document) and map it to an exit code. Imports every other
subpackage; nothing imports ``runtime.cli``.

Layout: ``app`` holds the typer application; the ``*_commands`` modules hold the commands (plain
functions, no registration); ``render``, ``options``, ``errors`` and ``exit_codes`` what they share.
The registration below is the one list of commands, in the order ``--help`` shows them.
"""

from __future__ import annotations

from runtime.cli import dlq_commands, inspect_commands, monitoring_commands, pipeline_commands, repair_commands
from runtime.cli.app import app, main

app.command()(pipeline_commands.worker)
app.command()(pipeline_commands.coordinator)
app.command()(pipeline_commands.process)
app.command()(pipeline_commands.submit)
app.command()(inspect_commands.health)
app.command()(inspect_commands.verify)
app.command()(inspect_commands.stuck)
app.command()(repair_commands.cleanup)
app.command()(repair_commands.restore)
app.command("dashboard-json")(monitoring_commands.dashboard_json)
app.command()(repair_commands.sweep)
app.command()(repair_commands.restart)
app.command()(monitoring_commands.logs)
dlq_commands.dlq_app.command("list")(dlq_commands.dlq_list)
dlq_commands.dlq_app.command("redrive")(dlq_commands.dlq_redrive)
app.add_typer(dlq_commands.dlq_app, name="dlq")

__all__ = ["app", "main"]
