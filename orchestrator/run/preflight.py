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
  the worktree exists and is left to the run.

Every problem is one line; a check raises once, with one line per problem, so a user fixes a
config in one pass. The errors are the user's to fix (exit code 2).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio.to_thread

from orchestrator.config.run import RunConfig
from orchestrator.errors import AdapterError, AdapterUnavailable, UnusableRepository
from orchestrator.git.repo import Git
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.demo_repo import SampleState, sample_state
from orchestrator.workflow.best_of import judge_adapter
from orchestrator.worktrees.layout import COUNCIL_DIR

__all__ = ["check_adapters", "check_repository", "council_dir_problem"]

_CHECKED_INSIDE = ("locks", "state")  # subdirectories whose entries are checked too


async def check_repository(config: RunConfig) -> None:
    """``UnusableRepository`` when the run's repository cannot be used as it is."""
    repo = config.repo
    if config.sample_repo:
        state = await anyio.to_thread.run_sync(sample_state, repo, config.base_branch)
        if state in (SampleState.ABSENT, SampleState.HALF_MADE):
            return  # the run creates (or finishes) the sample repository there
    problem = await anyio.to_thread.run_sync(_checkout_problem, repo)
    if problem is not None:
        raise UnusableRepository(problem)
    # No hooks directory: asking git must not create .council/ before the run may write.
    git = Git(repo, None)
    if await git.rev_parse(f"refs/heads/{config.base_branch}") is None:
        raise UnusableRepository(
            f"base branch {config.base_branch!r} does not exist in {repo} (base_branch: in the "
            "run config; a repository without commits has no branch yet)"
        )


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
    """``AdapterUnavailable`` when an adapter some task would use cannot run here."""
    problems: list[str] = []
    users: dict[str, str] = {}
    for task in config.tasks:
        for phase in config.phases_for(task):
            chain = config.adapter_chain(task, phase)
            if not chain:
                # The config checks insist on a choice once any adapter is defined, so this
                # is a config that defines none: one line says so.
                raise AdapterUnavailable(
                    f"task {task.id!r}: no adapter configured for phase {phase.name!r}; define "
                    "the CLIs to run under `adapters:` (see `council adapters list`)"
                )
            for name in chain:
                users.setdefault(name, f"task {task.id!r}, phase {phase.name!r}")
        if task.council and task.adapters:
            judge = judge_adapter(config, task.adapters[0])
            users.setdefault(judge, f"council task {task.id!r}, the comparison")
    for name, user in users.items():
        problem = _adapter_problem(config, registry, name)
        if problem is not None:
            problems.append(f"{problem} (used by {user})")
    if problems:
        raise AdapterUnavailable("\n".join(dict.fromkeys(problems)))


def _adapter_problem(config: RunConfig, registry: AdapterRegistry, name: str) -> str | None:
    configured = config.adapters.get(name)
    try:
        adapter = registry.create(name, configured)
    except AdapterError as exc:
        return str(exc)
    binary = adapter.binary
    kind = f" (type {adapter.name!r})" if adapter.name != name else ""
    setting = f"adapters.{name}.executable"
    if os.path.isabs(binary):
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return None
        return f"adapter {name!r}{kind}: its binary {binary} is not an executable file ({setting})"
    if "/" in binary:
        return None  # relative to the worktree the CLI runs in: known only once it exists
    search = configured.env.get("PATH") if configured is not None else None
    if shutil.which(binary, path=search) is not None:
        return None
    where = "the adapter's env PATH" if search is not None else "PATH"
    return (
        f"adapter {name!r}{kind}: its binary {binary!r} is not on {where}; install the CLI or "
        f"set {setting}"
    )
