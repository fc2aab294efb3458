"""The ``council`` command line: typer commands over the orchestrator, one module per group;
the commands of one subject in a room of their own (``status``, ``setup``, ``store``)."""
