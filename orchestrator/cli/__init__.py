"""The ``council`` command line: typer commands over the orchestrator, one module per group;
the commands of one subject in a room of their own (``status``, ``setup``, ``store``)."""

from orchestrator.cli import startup_gc

startup_gc.hold_for_the_script()  # the collector paused while the command's modules import
