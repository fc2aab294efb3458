"""How a stack of pull requests is read from its tasks' records (``landing.pulls: stacked``;
``stack.PullStack`` acts on it): a task's place (``metadata.pull.stack``), whether the one
below is open for review, why a pull request may not be merged yet (``below_first``, which the
follower asks), and what its body and the board say of its stack."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orchestrator.forge.public_text import PublicText, own
from orchestrator.models import TaskState, TaskStatus
from orchestrator.task_meta import PullState, StackState, TaskMeta

__all__ = [
    "below_first",
    "board_note",
    "open_for_review",
    "pull_of",
    "shown_path",
    "stack_of",
    "stack_section",
    "stacked_above",
]

_PATH_CHARS = 200  # of a conflicted path, as said


def stack_of(state: TaskState | None) -> StackState | None:
    """The task's place in a stack as its record keeps it (None: it stands on nothing)."""
    return TaskMeta.read(state.metadata).pull.stack if state is not None else None


def pull_of(state: TaskState | None) -> PullState | None:
    return TaskMeta.read(state.metadata).pull.pull if state is not None else None


def open_for_review(state: TaskState | None) -> bool:
    """In review with its pull request open, pushed at a known head."""
    pull = pull_of(state)
    return (
        state is not None
        and state.status == TaskStatus.IN_REVIEW
        and pull is not None
        and isinstance(pull.number, int)
        and pull.state == "open"
        and bool(pull.head_sha)
    )


def below_first(state: TaskState, base_branch: str) -> str | None:
    """Why the task's pull request may not be merged now (it asks to land on a branch below
    it, not on the base); None when nothing below holds it."""
    stack = stack_of(state)
    if stack is None or not stack.base or stack.base == base_branch:
        return None
    below = ", ".join(stack.below or []) or stack.base
    return f"the pull request(s) below it ({below}) to land first"


def _numbered(task_id: str, states: Mapping[str, TaskState]) -> tuple[str, int | None]:
    pull = pull_of(states.get(task_id))
    return task_id, pull.number if pull is not None else None


def shown_path(path: str) -> str:
    """A conflicted path as said in a prompt, an event or an error: one line, bounded (a
    file name is the CLIs' own choice)."""
    shown = path if path.isprintable() else repr(path)
    return shown if len(shown) <= _PATH_CHARS else shown[: _PATH_CHARS - 3] + "..."


def stacked_above(states: Iterable[TaskState]) -> dict[str, list[str]]:
    """Per task id, the tasks stacked on it (their record's ``stack.below`` names it)."""
    above: dict[str, list[str]] = {}
    for state in states:
        stack = stack_of(state)
        for dep in stack.below or [] if stack is not None else []:
            above.setdefault(dep, []).append(state.task_id)
    return above


def stack_section(
    task_id: str, states: Mapping[str, TaskState], above: Mapping[str, list[str]]
) -> PublicText:
    """The section of a pull request's body that names its stack: what it stands on, below,
    and what stands on it, above (each with its pull request, a link)."""
    stack = stack_of(states.get(task_id))
    under = [_numbered(dep, states) for dep in (stack.below or [] if stack else [])]
    over = [_numbered(other, states) for other in sorted(above.get(task_id, []))]
    refs = [n for _, n in [*under, *over] if n is not None]
    lines = ["**Stack** (each pull request lands after the ones below it):"]
    lines += [f"- below: {_named(t, n)}" for t, n in under]
    lines.append(f"- this one: `{task_id}`")
    lines += [f"- above: {_named(t, n)}" for t, n in over]
    return own("\n".join(lines), refs=refs)


def board_note(
    task_id: str, states: Mapping[str, TaskState], above: Mapping[str, list[str]]
) -> str:
    """``stack: on #12 one, under #14 three``: the task's neighbours in its stack."""

    def named(ids: Iterable[str]) -> str:
        found = [_numbered(t, states) for t in ids]
        return ", ".join(f"#{n} {t}" if n is not None else t for t, n in found)

    stack = stack_of(states.get(task_id))
    under = stack.below or [] if stack is not None else []
    where = [f"on {named(under)}"] if under else []
    where += [f"under {named(sorted(above.get(task_id, [])))}"] if above.get(task_id) else []
    return f"stack: {', '.join(where)}" if where else "stack: its base"


def _named(task_id: str, number: int | None) -> str:
    return f"#{number} (`{task_id}`)" if number is not None else f"`{task_id}` (not open yet)"
