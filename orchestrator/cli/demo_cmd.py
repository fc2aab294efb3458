"""``council demo``: the offline demo, from any installed CLI Council (no checkout needed).

Three scripted personas stand in for real AI CLIs: no network, no API key. The command writes
the config shipped in the package to ``DIR/demo.yaml`` (``--dir``, default ``.council-demo``)
and runs it exactly as ``council run DIR/demo.yaml`` would, with the same live view, summary,
``--json`` and exit codes; the sample repository is created in ``DIR/repo`` on the first run.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli import console, run_cmd
from orchestrator.run.demo_config import write_demo_config

__all__ = ["demo"]


def demo(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", help="Where the demo's config and sample repository go.", show_default=True
        ),
    ] = Path(".council-demo"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the offline demo: three scripted CLIs, seven tasks, no network or API key.

    Exit codes: 0 all done, 1 some task did not land, 2 usage or config error, 130 interrupted.
    """
    config = write_demo_config(directory)
    repo = directory / "repo"
    # On stderr with --json, where stdout is the report alone.
    console.print_plain(f"offline demo: {config} (sample repository {repo})", to_stderr=as_json)
    try:
        run_cmd.run(config, as_json=as_json)
    except typer.Exit as end:
        if not as_json and end.exit_code in (0, 1):
            console.print_plain(
                f"what landed: git -C {shlex.quote(str(repo))} log --oneline --graph main"
            )
        raise
