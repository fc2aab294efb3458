"""``council init``: a commented starter config for the repository you stand in.

It finds the AI coding CLIs installed here (and whether each has a login or a key: paths and
variable names, never a value), writes ``council.yaml`` (``--output``) using them, or the
offline scripted personas when none is found, and prints the next steps. The base branch is
the branch checked out (``--base`` names another). It refuses, with one line and exit code 2,
outside a git checkout and over an existing file (unless ``--force``). ``--json`` prints the
same as one JSON object. The logic is ``orchestrator.run.setup.init_config``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import console, event_loop
from orchestrator.plugins import host as plugins
from orchestrator.run.setup.cli_detect import CliState
from orchestrator.run.setup.cli_fixes import login_fix
from orchestrator.run.setup.init_config import InitPlan, plan_init, write_config

__all__ = ["init"]


def init(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the config.")
    ] = Path("council.yaml"),
    base: Annotated[
        str | None,
        typer.Option("--base", help="The branch work lands on (default: the current one)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write a starter run config for this repository, with the CLIs installed here."""
    registry = plugins.default_plugins().registry

    async def make() -> InitPlan:
        plan = await plan_init(Path.cwd(), output, registry, base=base, force=force)
        await write_config(plan, force=force)
        return plan

    plan = event_loop.run(make)
    steps = _next_steps(output, plan)
    if as_json:
        console.print_lines(json.dumps(_as_json(plan, steps), indent=2))
        return
    _print(plan, output, steps)


def _next_steps(output: Path, plan: InitPlan) -> list[tuple[str, str]]:
    shown = shlex.quote(str(output))
    doctor = "council doctor" if output == Path("council.yaml") else f"council doctor {shown}"
    if plan.starter.demo:
        run = f"run it: the personas add COUNCIL.md and land it on {plan.base_branch}"
    else:
        run = "run it (edit its task first: it is a starter)"
    return [
        (doctor, "check git, the repository, the CLIs and their logins"),
        (f"council run {shown} --dry-run", "see the plan and each phase's command"),
        (f"council run {shown}", run),
    ]


def _print(plan: InitPlan, output: Path, steps: list[tuple[str, str]]) -> None:
    console.print_plain("AI coding CLIs on this machine:")
    width = max((len(cli.name) for cli in plan.clis), default=0)
    for cli in plan.clis:
        console.print_plain(f"  {cli.name:<{width}}  {_state(cli)}")
    starter = plan.starter
    if starter.demo:
        roles = (
            f"the offline scripted personas stand in ({starter.builder} builds, "
            f"{starter.reviewer} reviews)"
        )
    elif starter.builder == starter.reviewer:
        roles = f"{starter.builder} plans, builds and reviews"
    else:
        roles = f"{starter.builder} plans and builds, {starter.reviewer} reviews"
    console.print_success(
        f"wrote {output} for {plan.repo} (base branch {plan.base_branch}): {roles}"
    )
    if starter.why:
        console.print_plain(f"why: {starter.why}")
    console.print_plain("next:")
    width = max(len(command) for command, _ in steps)
    for command, why in steps:
        console.print_plain(f"  {command:<{width}}  # {why}")


def _state(cli: CliState) -> str:
    if not cli.found:
        return "not installed"
    version = cli.version or f"{cli.path} (its version command failed)"
    if not cli.edits_files:
        return f"{version}; does not edit files, not used"
    if not cli.login.needed:
        return version
    if cli.login.found:
        return f"{version}; logged in ({cli.login.where})"
    return f"{version}; no login found ({login_fix(cli.adapter_type, cli.login.keys)})"


def _as_json(plan: InitPlan, steps: list[tuple[str, str]]) -> dict[str, Any]:
    starter = plan.starter
    return {
        "file": str(plan.path),
        "repo": str(plan.repo),
        "base_branch": plan.base_branch,
        "demo": starter.demo,
        "adapters": starter.adapters,
        "builder": starter.builder,
        "reviewer": starter.reviewer,
        "why": starter.why,
        "clis": [
            {
                "name": cli.name,
                "type": cli.adapter_type,
                "binary": cli.binary,
                "found": cli.found,
                "path": cli.path,
                "version": cli.version,
                "edits_files": cli.edits_files,
                "login_needed": cli.login.needed,
                "logged_in": cli.login.found,
                "login": cli.login.where,  # paths and variable names, never a value
            }
            for cli in plan.clis
        ],
        "next": [command for command, _ in steps],
    }
