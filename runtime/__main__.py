"""``python -m runtime COMMAND``: the image's service commands (``worker``, ``coordinator``, ``sweep``)
start from ``runtime.services`` without typer and rich, which the image does not install; every other
command line goes to the ops CLI (``runtime.cli``), and so does a bare ``sweep`` typed at a terminal
(a table rather than the task's JSON)."""

import sys

from runtime import services

if services.is_service_command(sys.argv[1:], terminal=sys.stdout.isatty()):
    sys.exit(services.run(sys.argv[1:]))

# Only past the service commands: the CLI imports typer and rich.
from runtime.cli import main

main()
