"""An issue as a task: ``issue-<number>``, its prompt the title, a blank line and the body.

The body may carry the task's settings in one fenced block, which is taken out of the prompt:

- a block opened with ```` ```council ````: its text is a YAML mapping of the settings;
- or a block opened with ```` ```yaml ```` (or ``yml``) in which a line begins with
  ``council:``: a YAML mapping whose only key is ``council``, its value the settings.

Any other fenced block is part of the prompt. More than one settings block is a problem. The
settings an issue may give are ``files``, ``depends_on`` (other ``issue-<n>`` tasks or the run
config's task ids), ``priority``, ``adapters``, ``phases`` and ``timeout``, validated as a
config task's are; nothing that runs a command (``verify``) or changes the run
(``council``, ``metadata``, ``id``, ``prompt``) comes from an issue, whose author may be anyone
who can label it. A problem (bad YAML, an unknown setting, a bad value) makes an
``IssueProblem`` naming the block's line and the setting; the caller skips the issue and tells
it (``issue_source``).

The task's ``metadata`` says where it came from: ``issue`` (the number) and ``issue_url``, so
the landing side can write ``Closes #<number>`` and the issue can be told what happens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator.config.fieldpath import format_loc
from orchestrator.config.task import TaskConfig
from orchestrator.config.yaml_source import parse_yaml_mapping
from orchestrator.errors import ConfigError
from orchestrator.forge.base import Issue
from orchestrator.task_meta import TaskMeta

__all__ = [
    "SETTINGS",
    "IssueProblem",
    "issue_number",
    "issue_task",
    "task_id_for",
]

SETTINGS = ("files", "depends_on", "priority", "adapters", "phases", "timeout")
"""The task settings an issue's ``council`` block may give."""

_PREFIX = "issue-"
_OPEN = re.compile(r"^[ ]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)[^`]*$")
_COUNCIL_KEY = re.compile(r"^council[ \t]*:")


@dataclass(frozen=True)
class IssueProblem(Exception):
    """Why issue ``number`` is not a task: ``reason`` names the block's line and the
    setting."""

    number: int
    reason: str

    def __str__(self) -> str:
        return f"issue #{self.number}: {self.reason}"


def task_id_for(number: int) -> str:
    return f"{_PREFIX}{number}"


def issue_number(task: TaskConfig) -> int | None:
    """The issue ``task`` was made from (its metadata's ``issue``); None for another task."""
    return TaskMeta.read(task.metadata).pull.issue


def _issue_meta(issue: Issue) -> dict[str, Any]:
    """An issue task's metadata: the issue's number and web address (``PullMeta``)."""
    meta = TaskMeta.read({})
    meta.pull.issue, meta.pull.issue_url = issue.number, issue.url
    return meta.dump()


def issue_task(issue: Issue) -> TaskConfig:
    """The task ``issue`` asks for; ``IssueProblem`` when its settings block is bad."""
    body, settings = _split_body(issue)
    prompt = issue.title.strip()
    if body:
        prompt = f"{prompt}\n\n{body}" if prompt else body
    data: dict[str, Any] = {
        **settings,
        "id": task_id_for(issue.number),
        "prompt": prompt,
        "metadata": _issue_meta(issue),
    }
    try:
        return TaskConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = format_loc(tuple(first["loc"])) or "the task"
        if where == "prompt":
            raise IssueProblem(
                issue.number, "the issue has no title or body to work from"
            ) from None
        raise IssueProblem(issue.number, f"`council` block: {where}: {first['msg']}") from None


def _split_body(issue: Issue) -> tuple[str, dict[str, Any]]:
    """The body without its settings block, and the settings."""
    lines = issue.body.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    found: list[tuple[int, str, bool]] = []  # (first line of the block, its text, yaml form)
    index = 0
    while index < len(lines):
        opened = _OPEN.match(lines[index])
        if opened is None:
            kept.append(lines[index])
            index += 1
            continue
        fence, info = opened["fence"], opened["info"].lower()
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        inner = lines[index + 1 : end]
        ours = info == "council" or (
            info in ("yaml", "yml") and any(_COUNCIL_KEY.match(line) for line in inner)
        )
        if ours:
            found.append((index + 2, "\n".join(inner), info != "council"))
            index = end + 1
            # the block's place: one blank line between what stood around it, not two
            if index < len(lines) and not lines[index].strip() and kept and not kept[-1].strip():
                index += 1
            continue
        kept.extend(lines[index : end + 1])
        index = end + 1
    if len(found) > 1:
        raise IssueProblem(
            issue.number,
            f"{len(found)} `council` blocks (lines {', '.join(str(f[0]) for f in found)} of "
            "the body); give the settings in one",
        )
    settings = _settings(issue.number, *found[0]) if found else {}
    return "\n".join(kept).strip(), settings


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block ``fence`` opened (CommonMark: the same character, at
    least as many, at most three spaces before, nothing after)."""
    stripped = line.strip()
    indent = len(line) - len(line.lstrip(" "))
    return indent <= 3 and len(stripped) >= len(fence) and set(stripped) == {fence[0]}


def _settings(number: int, first_line: int, text: str, yaml_form: bool) -> dict[str, Any]:
    where = f"the `council` block (line {first_line} of the body)"
    if not text.strip():
        return {}
    try:
        data = parse_yaml_mapping(text, "council block").data
    except ConfigError as exc:
        issue = exc.issues[0]
        line = f" line {first_line + issue.line - 1}:" if issue.line is not None else ""
        raise IssueProblem(number, f"{where}:{line} {issue.message}") from None
    if yaml_form:
        others = sorted(str(key) for key in data if key != "council")
        if others:
            raise IssueProblem(
                number, f"{where}: only `council:` may be at its top level, not {others}"
            )
        inner = data.get("council")
        if inner is None:
            return {}
        if not isinstance(inner, Mapping):
            raise IssueProblem(number, f"{where}: `council:` must be a mapping of settings")
        data = dict(inner)
    unknown = sorted(str(key) for key in data if key not in SETTINGS)
    if unknown:
        raise IssueProblem(
            number,
            f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} (an issue may set {', '.join(SETTINGS)})",
        )
    return {str(key): value for key, value in data.items()}
