"""The ``council`` command line: typer commands over the orchestrator, one module per group."""
