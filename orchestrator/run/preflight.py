"""What a run checks before it writes anything: the repository and every adapter it will use.

``council run`` and ``council resume`` (through ``Council``'s context) call these before they
create a directory, a branch, a lock or a record, so a run that cannot work is refused with a
clear line and leaves the user's repository exactly as it was:

- ``check_repository(config)``: ``repo`` is the top level of a git checkout with the base
  branch (unless ``run.demo_repo`` will create it), and neither ``.council`` nor anything
  directly inside it (nor inside ``.council/locks`` or ``.council/state``) is a symbolic
  link. The orchestrator writes its state, locks, worktrees and the CLIs' homes there; a link
  would send those writes wherever it points, so it is refused rather than followed.
  ``council_dir_problem`` is the same check for the commands that only open the store.
- ``check_adapters(config, registry)``: every adapter a task can reach (each phase's chain,
  fallbacks included, and a council task's judge) is known to the registry (a near miss gets a
  "did you mean"), accepts its options, and has its binary: a bare name must be on ``PATH``
  (the adapter's own ``env: PATH`` when it sets one, as the CLI will run with it), an absolute
  path must be an executable file. A path relative to the worktree cannot be checked before
  the worktree exists and is left to the run. And each phase's prompt can be passed to each
  of its adapters (``prompt_fit``: one too long for the command line, to an adapter that has
  no other way in).

- ``warn_mcp_servers(config, registry)``: the run's ``mcp_servers`` and an adapter whose CLI
  cannot take them (aider), said once as a warning;
- ``check_sandbox(config)``: a ``sandbox: bubblewrap`` (run-wide or an adapter's) that this
  machine cannot give is refused (``ConfigError`` at that setting); ``auto`` that finds no
  working bubblewrap is said once as a warning (the run goes on, unconfined, and the
  orchestrator's own checks still hold).

Every problem is one line; a check raises once, with one line per problem, so a user fixes a
config in one pass. The errors are the user's to fix (exit code 2). ``council config
validate`` reports the same problems as ``Finding`` s, each at the place in the file it is
about (``adapter_findings``, ``repository_finding``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.config.fieldpath import Loc
from orchestrator.config.run import RunConfig
from orchestrator.config.sandbox import merged_sandbox
from orchestrator.errors import AdapterError, AdapterUnavailable, UnusableRepository
from orchestrator.git.repo import Git
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.adapter_uses import adapter_uses
from orchestrator.run.demo_repo import SampleState, sample_state
from orchestrator.run.prompt_fit import prompt_problems
from orchestrator.sandbox.choice import settings_for
from orchestrator.worktrees.layout import COUNCIL_DIR

log = logging.getLogger(__name__)

__all__ = [
    "Finding",
    "adapter_findings",
    "check_adapters",
    "check_repository",
    "check_sandbox",
    "council_dir_problem",
    "repository_finding",
]

_CHECKED_INSIDE = ("locks", "state")  # subdirectories whose entries are checked too


async def check_sandbox(config: RunConfig, said: set[str] | None = None) -> None:
    """``ConfigError`` when a sandbox the config requires cannot be had here; a warning when
    the CLIs will run unconfined, once for each reason in ``said`` (the caller's: a run's
    preflight runs twice, the command's early one and the run's own, and says it once)."""
    said = set() if said is None else said
    wanted = [("sandbox", config.sandbox)]
    wanted += [
        (f"adapters.{name}.sandbox", merged_sandbox(config.sandbox, adapter.sandbox))
        for name, adapter in config.adapters.items()
        if adapter.sandbox is not None
    ]
    for where, sandbox in wanted:
        settings = await settings_for(sandbox, where)
        if settings.kind == "none" and sandbox.mode == "auto" and settings.reason not in said:
            said.add(settings.reason)
            log.warning(
                "%s: the CLIs run unconfined, reaching whatever you can (the orchestrator still "
                "checks git's setup before each git command and what changed after each CLI); "
                "verify and setup commands get a private HOME (HOME and the XDG directories), "
                "not a sandbox: they can still name your files by path",
                settings.reason,
            )


async def check_repository(config: RunConfig) -> None:
    """``UnusableRepository`` when the run's repository cannot be used as it is."""
    found = await repository_finding(config)
    if found is not None:
        raise UnusableRepository(found.message)


async def repository_finding(config: RunConfig) -> Finding | None:
    """Why the run's repository cannot be used as it is, at the setting that names it."""
    repo = config.repo
    if config.sample_repo:
        state = await anyio.to_thread.run_sync(sample_state, repo, config.base_branch)
        if state in (SampleState.ABSENT, SampleState.HALF_MADE):
            return None  # the run creates (or finishes) the sample repository there
    # The checkout looked at, then git asked for the base: one worker-thread call.
    problem, has_base = await anyio.to_thread.run_sync(_checkout_and_base, repo, config.base_branch)
    if problem is not None:
        return Finding(("repo",), problem, here=True)
    if not has_base:
        return Finding(
            ("base_branch",),
            f"base branch {config.base_branch!r} does not exist in {repo} (base_branch: in the "
            "run config; a repository without commits has no branch yet)",
            here=True,
        )
    return None


def _checkout_and_base(repo: Path, base_branch: str) -> tuple[str | None, bool]:
    """What is wrong with the checkout at ``repo`` (None: nothing), and, when nothing is,
    whether its branch ``base_branch`` names a commit (blocking)."""
    problem = _checkout_problem(repo)
    if problem is not None:
        return problem, False
    # No hooks directory: asking git must not create .council/ before the run may write.
    found = Git(repo, None).run_sync(
        "rev-parse", "--verify", "--quiet", f"refs/heads/{base_branch}^{{commit}}", check=False
    )
    return None, found.ok


def _checkout_problem(repo: Path) -> str | None:
    if not repo.is_dir():
        return f"repository {repo} does not exist (repo: in the run config)"
    if not os.path.lexists(repo / ".git"):
        return (
            f"{repo} is not the top level of a git checkout (it has no .git); set repo: to the "
            "repository's root directory"
        )
    return council_dir_problem(repo)


def council_dir_problem(repo: Path) -> str | None:
    """Why ``repo``'s ``.council`` must not be used (a symbolic link in it), or None."""
    council = repo / COUNCIL_DIR
    if council.is_symlink():
        return _link_problem(council)
    places = [council, *(council / name for name in _CHECKED_INSIDE)]
    for place in places:
        try:
            entries = sorted(os.scandir(place), key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            return f"cannot read {place}: {exc.strerror or exc}"
        for entry in entries:
            if entry.is_symlink():
                return _link_problem(Path(entry.path))
    return None


def _link_problem(link: Path) -> str:
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    return (
        f"{link} is a symbolic link (to {target}); the orchestrator keeps its state, locks and "
        "worktrees there and will not follow a link: replace it with a real directory"
    )


def check_adapters(config: RunConfig, registry: AdapterRegistry) -> None:
    """``AdapterUnavailable`` when an adapter some task would use cannot run here, or cannot
    be given a task's prompt."""
    problems = [finding.message for finding in adapter_findings(config, registry)]
    problems += [message for _, message in prompt_problems(config, registry)]
    if problems:
        raise AdapterUnavailable("\n".join(dict.fromkeys(problems)))


def warn_mcp_servers(config: RunConfig, registry: AdapterRegistry) -> list[str]:
    """With ``mcp_servers:`` set, one warning for each adapter a task uses whose CLI cannot be
    given them (aider has no MCP): the run goes on without them there. The warnings said.

    The council's own server (``council_mcp``) is not the user's asking: such an adapter's
    sessions do without it, said once at ``info`` (their prompts still name the files the other
    sessions hold and change)."""
    if not config.mcp_servers and not config.council_mcp:
        return []
    said: list[str] = []
    for name in adapter_uses(config).users:
        try:
            adapter = registry.create(name, config.adapters.get(name))
        except AdapterError:
            continue  # check_adapters says why
        if not adapter.takes_mcp_servers and config.council_mcp:
            log.info(
                "adapter %r (type %r) takes no MCP servers: its sessions do without the "
                "council's tools (council mcp); their prompts name what the others hold",
                name,
                adapter.name,
            )
        if not adapter.takes_mcp_servers and config.mcp_servers:
            said.append(
                f"adapter {name!r} (type {adapter.name!r}) takes no MCP servers: the run's "
                f"mcp_servers ({', '.join(config.mcp_servers)}) are not given to it"
            )
    for warning in said:
        log.warning("%s", warning)
    return said


@dataclass(frozen=True)
class Finding:
    """One thing a run would refuse, at the place in the run config it is about."""

    loc: Loc
    message: str
    here: bool = False  # about this machine (a CLI not installed), not about the file


def adapter_findings(
    config: RunConfig, registry: AdapterRegistry, *, skip: Collection[str] = ()
) -> list[Finding]:
    """Each phase with no adapter, and each adapter some task would use that cannot be
    created or whose binary is not here (``skip``: adapters whose entry is known bad)."""
    uses = adapter_uses(config)
    findings = [
        Finding(
            ("tasks", use.index),
            f"task {use.task.id!r}: no adapter configured for phase {use.phase.name!r}; define "
            "the CLIs to run under `adapters:` (see `council adapters list`)",
        )
        for use in uses.unassigned
        if not config.adapters  # with adapters defined, the config's own checks say it
    ]
    for name, user in uses.users.items():
        if name in skip:
            continue
        found = _adapter_finding(config, registry, name)
        if found is not None:
            findings.append(Finding(found.loc, f"{found.message} (used by {user})", found.here))
    return findings


def _adapter_finding(config: RunConfig, registry: AdapterRegistry, name: str) -> Finding | None:
    configured = config.adapters.get(name)
    try:
        adapter = registry.create(name, configured)
    except AdapterError as exc:
        return Finding(("adapters", name), str(exc))
    binary = adapter.binary
    kind = f" (type {adapter.name!r})" if adapter.name != name else ""
    setting = f"adapters.{name}.executable"
    where: Loc = ("adapters", name)
    if configured is not None and configured.executable:
        where = (*where, "executable")
    if os.path.isabs(binary):
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return None
        message = f"adapter {name!r}{kind}: its binary {binary} is not an executable file"
        return Finding(where, f"{message} ({setting})", here=True)
    if "/" in binary:
        return None  # relative to the worktree the CLI runs in: known only once it exists
    search = configured.env.get("PATH") if configured is not None else None
    if shutil.which(binary, path=search) is not None:
        return None
    path = "the adapter's env PATH" if search is not None else "PATH"
    message = (
        f"adapter {name!r}{kind}: its binary {binary!r} is not on {path}; install the CLI or "
        f"set {setting}"
    )
    return Finding(where, message, here=True)
