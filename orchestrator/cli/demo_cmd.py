"""``council demo``: the offline demo, from any installed CLI Council (no checkout needed).

Three scripted personas stand in for real AI CLIs: no network, no API key. The command writes
the config shipped in the package to ``DIR/demo.yaml`` (``--dir``, default ``.council-demo``)
and runs it exactly as ``council run DIR/demo.yaml`` would, with the same live view, summary,
``--json`` and exit codes; the sample repository is created in ``DIR/repo`` on the first run.

``--forge``: the issue-to-pull-request loop instead, on the fake GitHub of the test kit
(``testing.fake_github.demo``, made afresh in ``DIR/forge``): two labelled issues become tasks,
each task's work a pull request, a reviewer asks for one change on a line, the fix is built in
the same CLI conversation and pushed to the same pull request, the reviewer approves and
council merges it, closing the issue. Served (``council serve``) until every issue is closed;
exit 0 when each task landed, 1 otherwise (or after ``_FORGE_PATIENCE`` seconds).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

from orchestrator.cli import console, event_loop, run_cmd
from orchestrator.cli.status.summary import print_summary
from orchestrator.run.demo_config import write_demo_config

if TYPE_CHECKING:
    from orchestrator.council import Council
    from orchestrator.run.reports.report import RunReport
    from orchestrator.testing.fake_github.demo import ForgeDemo

__all__ = ["demo"]


def demo(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", help="Where the demo's config and sample repository go.", show_default=True
        ),
    ] = Path(".council-demo"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    forge: Annotated[
        bool,
        typer.Option(
            "--forge",
            help="The issue-to-pull-request loop on a fake GitHub instead: issues, pull "
            "requests, a review, the fix, the merge.",
        ),
    ] = False,
) -> None:
    """Run the offline demo: three scripted CLIs, seven tasks, no network or API key.

    Exit codes: 0 all done, 1 some task did not land, 2 usage or config error, 130 interrupted.
    """
    if forge:
        _forge_demo(directory / "forge", as_json)
        return
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


_FORGE_PATIENCE = 180.0  # seconds the forge demo waits for its issues to close


def _forge_demo(directory: Path, as_json: bool) -> None:
    from orchestrator.council import Council
    from orchestrator.testing.fake_github.demo import TOKEN_VARIABLE, forge_demo

    with forge_demo(directory) as world:
        os.environ[TOKEN_VARIABLE] = world.token  # the config names it: ${...}
        console.print_plain(
            f"offline forge demo: {world.config} (the fake GitHub on {world.gh.api_url}, "
            f"issues {', '.join(f'#{n}' for n in world.issues)})",
            to_stderr=as_json,
        )
        council = Council.from_config(world.config)
        event_loop.run(council.preflight)
        report, signalled = run_cmd.drive(council, lambda: _until_closed(council, world), as_json)
        landed = report.totals.done == report.totals.tasks == len(world.issues)
        if as_json:
            console.print_lines(report.model_dump_json(indent=2))
        else:
            print_summary(report)
            for line in _what_github_shows(world):
                console.print_plain(line)
    if signalled:
        raise typer.Exit(130)
    raise typer.Exit(0 if landed else 1)


async def _until_closed(council: Council, world: ForgeDemo) -> RunReport:
    """Serve the demo's issues until each is closed and its task done, then stop."""

    changed = [anyio.Event()]

    def heard(_: object) -> None:
        changed[0].set()

    async def watch() -> None:
        with anyio.move_on_after(_FORGE_PATIENCE):
            while not (world.all_closed() and _all_done(council)):
                with anyio.move_on_after(1.0):  # a closed issue is no event of the run
                    await changed[0].wait()
                changed[0] = anyio.Event()
        if world.all_closed() and _all_done(council):
            # Everything landed: the run ends as a run does once settled (``completed``),
            # not as a serve a person stopped (``interrupted``).
            council.scheduler.keep_open = False
            return
        council.stop()

    council.subscribe(heard)

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        report = await council.serve()
        group.cancel_scope.cancel()
    return report


def _all_done(council: Council) -> bool:
    lines = council.scheduler.board()
    return bool(lines) and all(line.status == "done" for line in lines)


def _what_github_shows(world: ForgeDemo) -> list[str]:
    """One line per issue: its pull request, the reviews it took, and where it stands."""
    site = world.gh.site
    lines = []
    with site.lock:
        for number in world.issues:
            issue = site.issues[number]
            pull = next(
                (
                    n
                    for n, r in site.issues.items()
                    if r.pull and r.pull.head.endswith(f"-{number}")
                ),
                None,
            )
            if pull is None:
                lines.append(f"issue #{number} ({issue.title}): {issue.state}, no pull request")
                continue
            record = site.issues[pull].pull
            assert record is not None
            reviews = [r.state.lower().replace("_", " ") for r in site.reviews.get(pull, [])]
            lines.append(
                f"issue #{number} ({issue.title}): {issue.state}; pull request #{pull} "
                f"{'merged' if record.merged else 'open'} after reviews: "
                f"{', '.join(reviews) or 'none'}"
            )
    lines.append(
        f"what landed: git -C {shlex.quote(str(world.repo))} log --oneline --graph origin/main"
    )
    return lines
