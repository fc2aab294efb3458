"""The commented starter config ``council init`` writes: the CLIs found on this machine, one
task to try them on, and a comment on every section saying what it is for.

Roles: the first CLI with a login (in ``cli_detect``'s order of preference) plans and builds,
a second one with a login reviews (another model's eyes on the work), else the first reviews
its own. A CLI found without a login is written commented out, with the way to log in, so
``council doctor`` checks only what the run will use. A CLI that does not edit files (a plain
model runner) is left out. With no usable CLI, or none with a login (a first run would fail
on every attempt), the offline ``scripted`` personas stand in, their task says exactly what
they write, and the CLIs found are written commented out with the way to log each in.
``Starter.why`` says which CLIs were chosen and why, for ``init`` to print.

Every value that comes from outside (a path, a branch, a version) is written as a JSON
string, which YAML reads back unchanged; comments carry no line breaks of their own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.run.setup.cli_detect import CliState
from orchestrator.run.setup.cli_fixes import install_fix, login_fix

__all__ = ["DEMO_ADAPTERS", "Starter", "starter_config"]

DEMO_ADAPTERS = ("alice", "bob")

# Options worth writing down for each built-in CLI: what the adapter does anyway, said where
# the user will look for it.
_OPTIONS: dict[str, list[tuple[str, str, str]]] = {
    "claude_code": [("permission_mode", "acceptEdits", "file edits without asking")],
    "codex": [("sandbox", "workspace-write", "it may run tests; it writes only in its worktree")],
    "gemini": [("approval_mode", "yolo", "edits and tools without asking, in its worktree")],
    "qwen": [("approval_mode", "yolo", "edits and tools without asking, in its worktree")],
}
# A CLI logged in with its own account rather than a key must be told so (the adapters
# default to the key): the key variables that make the default right, and the option if not.
_ACCOUNT_LOGINS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "gemini": (("GEMINI_API_KEY", "GOOGLE_API_KEY"), "auth_type", "oauth-personal"),
}  # qwen has none left: its OAuth free tier was discontinued (2026-04-15), a key is the login


@dataclass(frozen=True)
class Starter:
    """A starter config: its text, and who does what in it."""

    text: str
    demo: bool  # the scripted personas, no CLI was usable
    adapters: list[str]  # every adapter it declares
    builder: str  # plans and builds (the default adapter)
    reviewer: str
    why: str = ""  # which CLIs were chosen and why, in a sentence


def starter_config(name: str, repo: str, base_branch: str, clis: Sequence[CliState]) -> Starter:
    """The starter config ``name`` (the file's name, for its comments) for the repository at
    ``repo`` (as the config names it: relative to the config's directory, or absolute) landing
    on ``base_branch``."""
    usable = [cli for cli in clis if cli.found and cli.edits_files]
    ready = [cli for cli in usable if cli.login.ok]
    if not ready:
        return _demo(name, repo, base_branch, clis, waiting=usable)
    declared = ready
    builder = declared[0]
    reviewer = declared[1] if len(declared) > 1 else builder
    lines = [
        *_header(name, clis),
        *_place(repo, base_branch, sessions=2),
        "# The CLIs. `type` picks the adapter that drives one. Each runs with the login you",
        "# already have (its credential files, its key variables): secrets never go in here.",
        "adapters:",
    ]
    for cli in usable:
        lines += _adapter(cli, commented=cli not in declared)
    lines += [
        "",
        "# Tasks that name no adapters of their own use this one.",
        f"default_adapter: {builder.name}",
        "",
        *_workflow(review=None if reviewer is builder else reviewer.name),
        *_verify(),
        *_real_task(),
    ]
    unready = [cli.name for cli in usable if cli not in declared]
    why = f"{', '.join(cli.name for cli in declared)}: installed and logged in"
    if unready:
        why += f"; {', '.join(unready)} left commented out: no login found"
    return Starter(
        text="\n".join(lines) + "\n",
        demo=False,
        adapters=[cli.name for cli in declared],
        builder=builder.name,
        reviewer=reviewer.name,
        why=why,
    )


def _header(name: str, clis: Sequence[CliState]) -> list[str]:
    lines = [
        "# CLI Council run config, written by `council init`.",
        "#",
        _comment(f"#   council doctor {name}    # git, the repository, the CLIs and their logins"),
        _comment(f"#   council run {name} --dry-run    # the plan and each phase's command"),
        _comment(f"#   council run {name}"),
        "#",
        "# CLIs found on this machine when it was written:",
    ]
    for cli in clis:
        lines.append(_comment(f"#   {cli.name}: {_found(cli)}"))
    if not clis:
        lines.append("#   (no adapter plugin is installed)")
    return [
        *lines,
        "#",
        "# Relative paths are relative to this file's directory. Every setting, with its",
        "# default: `council config schema`.",
        "",
    ]


def _found(cli: CliState) -> str:
    if not cli.found:
        return f"not installed ({install_fix(cli.adapter_type, cli.binary)})"
    version = cli.version or f"{cli.binary} (its version command failed)"
    if not cli.edits_files:
        return f"{version}; it does not edit files, so it has no role here"
    if not cli.login.needed:
        return version
    if cli.login.found:
        return f"{version}; logged in"
    return f"{version}; no login found ({login_fix(cli.adapter_type, cli.login.keys)})"


def _place(repo: str, base_branch: str, *, sessions: int) -> list[str]:
    return [
        "# The repository tasks work on, and the branch finished work lands on (through a",
        "# merge queue; your checkout of it is only fast-forwarded while it is clean).",
        f"repo: {_string(repo)}",
        f"base_branch: {_string(base_branch)}",
        "",
        "# CLI sessions at once, over every adapter; each works in a git worktree of its own",
        "# under .council/worktrees, on a branch council/<task>/<attempt>.",
        "capacity:",
        f"  sessions: {sessions}",
        "",
    ]


def _adapter(cli: CliState, *, commented: bool) -> list[str]:
    note = []
    if not cli.login.ok:
        fix = login_fix(cli.adapter_type, cli.login.keys)
        then = "; then uncomment these lines" if commented else ""
        note.append(_comment(f"  # {cli.name}: no login found. To {fix}{then}"))
    lines = [
        f"  {cli.name}:",
        f"    type: {cli.adapter_type}",
        "    # model: <a model it accepts>   # the CLI's own default otherwise",
    ]
    options = list(_OPTIONS.get(cli.adapter_type, []))
    account = _ACCOUNT_LOGINS.get(cli.adapter_type)
    if account is not None and cli.login.files and not set(account[0]) & set(cli.login.keys_set):
        options.append((account[1], account[2], "logged in with its own account, not a key"))
    if options:
        lines.append("    options:")
        lines += [f"      {key}: {value}   # {why}" for key, value, why in options]
    if commented:
        lines = [f"  # {line[2:]}" for line in lines]
    return note + lines


def _workflow(
    review: str | None, *, build: str = "30m", idle: str = "5m", who: str = "CLI"
) -> list[str]:
    review_lines = ["    - name: review", "      timeout: 10m"]
    if review is not None:
        review_lines.insert(1, f"      adapter: {review}   # another {who} reviews the work")
    return [
        "# Every task goes through these phases in order, each handing a document to the next;",
        "# review may send a task back to build at most max_review_rounds times.",
        "workflow:",
        "  phases:",
        "    - name: plan",
        "      timeout: 10m",
        "    - name: build",
        f"      timeout: {build}",
        f"      idle_timeout: {idle}   # stopped after this long without any output",
        *review_lines,
        "  max_review_rounds: 1",
        "",
    ]


def _verify() -> list[str]:
    return [
        "# Commands that must pass in a task's worktree before its work lands (no shell; one",
        "# command per item), for example:",
        "# verify:",
        "#   - python -m pytest -q",
        "",
    ]


def _real_task() -> list[str]:
    return [
        "# What to do. Replace this task with yours: a task waits for everything in its",
        "# depends_on to land, and two tasks naming the same file in `files` never run at once.",
        "tasks:",
        "  - id: write-overview",
        "    prompt: >-",
        "      Write docs/OVERVIEW.md, one page for a new contributor: what this repository",
        "      does, how it is laid out, and how to build it and run its tests. Change no",
        "      other file.",
        "    files: [docs/OVERVIEW.md]",
    ]


def _demo(
    name: str,
    repo: str,
    base_branch: str,
    clis: Sequence[CliState],
    waiting: Sequence[CliState] = (),
) -> Starter:
    alice, bob = DEMO_ADAPTERS
    if waiting:
        found = ", ".join(cli.name for cli in waiting)
        intro = [
            _comment(f"# The AI coding CLIs found ({found}) have no login yet, so two offline"),
            "# stand-ins take their place: the `scripted` personas need no network and no key,",
            "# and really edit files, exactly as each task's metadata tells them. Log a CLI in",
            "# (how: below), then run `council init --force` to use it.",
        ]
        why = f"no CLI found has a login ({found}): the offline personas stand in"
    else:
        intro = [
            "# No AI coding CLI was found, so two offline stand-ins take their place: the",
            "# `scripted` personas need no network and no key, and really edit files, exactly as",
            "# each task's metadata tells them. Install a CLI and run `council init --force` to",
            "# replace them.",
        ]
        why = "no AI coding CLI is installed: the offline personas stand in"
    lines = [
        *_header(name, clis),
        *intro,
        "",
        *_place(repo, base_branch, sessions=2),
        "adapters:",
        f"  {alice}:",
        "    type: scripted",
        "    options:",
        "      persona: careful",
        f"  {bob}:",
        "    type: scripted",
        "    options:",
        "      persona: reviewer",
    ]
    for cli in waiting:
        lines += _adapter(cli, commented=True)
    lines += [
        "",
        "# Tasks that name no adapters of their own use this one.",
        f"default_adapter: {alice}",
        "",
        *_workflow(review=bob, build="5m", idle="90s", who="persona"),
        *_verify(),
        "# What to do. The personas do what metadata.phase_instructions says, one line per",
        "# action (WRITE and APPEND edit files, SAY is their answer); a real CLI gets the same",
        "# prompt without these lines and decides for itself. This task adds COUNCIL.md and",
        "# lands it on the base branch like any task.",
        "tasks:",
        "  - id: hello-council",
        "    prompt: Add COUNCIL.md, a short note on how this repository is worked on.",
        "    files: [COUNCIL.md]",
        "    metadata:",
        "      phase_instructions:",
        '        plan: "SAY FILES: COUNCIL.md"',
        "        build: |",
        "          WRITE COUNCIL.md <<EOF",
        "          # Worked on with CLI Council",
        "",
        _comment(f"          Tasks are described in {name} and run with `council run {name}`."),
        "          EOF",
        '        review: "SAY VERDICT: approve"',
    ]
    return Starter(
        text="\n".join(lines) + "\n",
        demo=True,
        adapters=[alice, bob],
        builder=alice,
        reviewer=bob,
        why=why,
    )


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _comment(line: str) -> str:
    return " ".join(line.splitlines())
