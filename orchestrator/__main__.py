"""``python -m orchestrator``: the ``council`` command, for environments without its script."""

from orchestrator.cli.app import main

main()
