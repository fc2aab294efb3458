"""``python -m orchestrator``: the ``council`` command, for environments without its script."""

from orchestrator.cli import startup_gc

startup_gc.hold()  # the collector paused while the command's modules import, as the script's

from orchestrator.cli.app import main  # noqa: E402  (after the pause)

main()
