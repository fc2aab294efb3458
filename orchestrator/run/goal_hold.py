"""A goal's plan that waits to be accepted (``council run -g GOAL --approve``).

The planned config is saved as ``council run -g`` saves it (``goal.save_planned_config``);
then the plan is held in ``<repo>/.council/goal-plan.json`` (``safety.safe_write``, never
through a link): the goal, the saved config's path, the planned tasks, ``pending``, and the
SHA-256 of the saved config, so an answer applies to exactly that plan. ``council approve``,
``council approve --refuse`` and the page's buttons answer it through ``accept_plan`` and
``refuse_plan``; the waiting command reads the answer (``wait_for_answer``).

An accept may carry the tasks as the person left them: some removed, a prompt edited (each
edit a task of the plan, by id, in the plan's order or another). The saved config with those
tasks in its ``tasks:`` is checked exactly as a hand-written one (``validate_config_text``);
a bad edit is refused with the checks' problems and nothing changes. Otherwise the saved
config is rewritten with the accepted tasks and the record says ``accepted`` with its new
digest. The record is read as untrusted: bounded, each field checked, its config a planned
config (``*.goal-*.yaml``) whose bytes still have the recorded digest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orchestrator.config.load import check_config_text, load_config
from orchestrator.config.yaml_source import (
    dump_yaml_readable,
    read_config_text,
    without_top_level_key,
)
from orchestrator.errors import ConfigError, UsageError
from orchestrator.run.config_check import validate_config_text
from orchestrator.safety.safe_write import make_dirs, write_atomic

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig
    from orchestrator.config.task import TaskConfig
    from orchestrator.plugins.registry import AdapterRegistry

__all__ = [
    "ACCEPTED",
    "MAX_PROMPT",
    "PENDING",
    "PLAN_FILE",
    "REFUSED",
    "HeldPlan",
    "accept_plan",
    "goal_config",
    "hold_plan",
    "plan_path",
    "read_plan",
    "refuse_plan",
    "wait_for_answer",
]

PLAN_FILE = "goal-plan.json"
PENDING, ACCEPTED, REFUSED = "pending", "accepted", "refused"
_STATUSES = (PENDING, ACCEPTED, REFUSED)
_MAX_BYTES = 1024 * 1024  # a record bigger than any plan of goal.MAX_TASKS tasks is refused
MAX_PROMPT = 20_000  # characters of one edited prompt


@dataclass(frozen=True)
class HeldPlan:
    """The record: what was planned, for which saved config, and its answer."""

    goal: str
    config: str  # the saved config's absolute path
    tasks: list[dict[str, Any]]
    status: str
    digest: str  # SHA-256 of the saved config's bytes (after an accept: of the rewritten)

    def as_data(self) -> dict[str, Any]:
        return asdict(self)


def goal_config(path: Path) -> RunConfig:
    """The run config at ``path`` as ``load_config`` reads it; a goal's, whose ``tasks:`` the
    plan gives, read with a stand-in task in their place (what ``council approve`` and ``council
    web`` need of it: its repository, its store)."""
    try:
        return load_config(path)
    except ConfigError as refused:
        text = read_config_text(path, str(path))
        rest = without_top_level_key(text, str(path), "tasks")
        stand_in = "tasks:\n  - {id: goal-stand-in, prompt: the goal}\n"
        rest += "" if rest.endswith("\n") else "\n"
        checked = check_config_text(rest + stand_in, source=str(path), base_dir=path.parent)
        if checked.config is None:
            raise refused from None
        return checked.config


def plan_path(repo: Path) -> Path:
    return repo / ".council" / PLAN_FILE


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(repo: Path, held: HeldPlan) -> None:
    make_dirs(repo, repo / ".council")
    data = json.dumps(held.as_data(), indent=2).encode()
    write_atomic(repo, plan_path(repo), data, mode=0o600)


def hold_plan(repo: Path, saved: Path, goal: str, planned: list[TaskConfig]) -> HeldPlan:
    """The plan of ``goal`` (its tasks ``planned``, just saved as ``saved`` by
    ``goal.save_planned_config``) held, pending."""
    tasks = [t.model_dump(mode="json", exclude_defaults=True) for t in planned]
    path = saved.absolute()
    held = HeldPlan(goal, str(path), tasks, PENDING, _digest(path.read_bytes()))
    _write(repo, held)
    return held


def read_plan(repo: Path) -> HeldPlan | None:
    """The held plan of ``repo``, checked field by field; None when there is none."""
    path = plan_path(repo)
    if not path.is_file() or path.is_symlink() or (repo / ".council").is_symlink():
        return None
    where = f"the held plan {path}"
    if path.stat().st_size > _MAX_BYTES:
        raise UsageError(f"{where} is over {_MAX_BYTES} bytes: not a plan council wrote")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where} is not a JSON object")
    strings = ("goal", "config", "status", "digest")
    wrong = [key for key in strings if not isinstance(data.get(key), str)]
    found = data.get("tasks")
    tasks: list[dict[str, Any]] = []
    if isinstance(found, list) and all(isinstance(t, dict) for t in found):
        tasks = found
    else:
        wrong.append("tasks")
    if wrong:
        raise UsageError(f"{where}: {', '.join(wrong)} missing or of the wrong type")
    if data["status"] not in _STATUSES:
        raise UsageError(f"{where}: status {data['status']!r} is none of {', '.join(_STATUSES)}")
    config = Path(data["config"])
    if not config.is_absolute() or ".goal-" not in config.name or config.suffix != ".yaml":
        raise UsageError(f"{where}: config {str(config)!r} is not a planned config's path")
    return HeldPlan(data["goal"], str(config), tasks, data["status"], data["digest"])


def _pending(repo: Path) -> HeldPlan:
    held = read_plan(repo)
    if held is None:
        raise UsageError(f"no goal plan waits to be accepted in {repo} (council run -g --approve)")
    if held.status != PENDING:
        raise UsageError(f"the goal plan of {held.config} was {held.status} already")
    return held


def _saved_bytes(held: HeldPlan) -> bytes:
    path = Path(held.config)
    if path.is_symlink() or not path.is_file():
        raise UsageError(f"the planned config {path} is gone: plan the goal again")
    data = path.read_bytes()
    if _digest(data) != held.digest:
        raise UsageError(
            f"the planned config {path} changed since it was planned: nothing accepted; "
            "plan the goal again"
        )
    return data


def refuse_plan(repo: Path) -> str:
    """``council approve --refuse``: the held plan refused; nothing runs."""
    held = _pending(repo)
    _write(repo, replace(held, status=REFUSED))
    return f"refused the goal plan of {held.config}: nothing runs"


def _edited(held: HeldPlan, edits: list[Any] | None) -> list[dict[str, Any]]:
    """The plan's tasks as the person left them: ``edits`` a list of ``{id, prompt}``."""
    if edits is None:
        return held.tasks
    planned = {str(t.get("id")): t for t in held.tasks}
    if not edits:
        raise UsageError("an accepted plan keeps at least one task (refuse it instead)")
    tasks, seen = [], set()
    for number, edit in enumerate(edits, 1):
        if not isinstance(edit, dict) or not isinstance(edit.get("id"), str):
            raise UsageError(f"accepted task {number}: an object with the task's id")
        task_id, prompt = edit["id"], edit.get("prompt")
        if task_id not in planned or task_id in seen:
            twice = "named twice" if task_id in seen else "not a task of the plan"
            raise UsageError(f"accepted task {number}: {task_id!r} is {twice}")
        seen.add(task_id)
        task = dict(planned[task_id])
        if prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT:
                raise UsageError(
                    f"accepted task {task_id}: its prompt must be words, at most {MAX_PROMPT}"
                )
            task["prompt"] = prompt
        tasks.append(task)
    return tasks


async def accept_plan(
    repo: Path,
    registry: AdapterRegistry,
    environ: Mapping[str, str],
    edits: list[Any] | None = None,
) -> str:
    """The held plan accepted, with ``edits`` (see the module) when given: checked as a
    hand-written config, the saved config rewritten, the record ``accepted``."""
    held, data = await anyio.to_thread.run_sync(_answerable, repo)
    saved = Path(held.config)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"the planned config {saved} is not UTF-8 text") from None
    tasks = _edited(held, edits)
    rest = without_top_level_key(text, str(saved), "tasks")
    new_text = rest + ("" if rest.endswith("\n") else "\n") + dump_yaml_readable({"tasks": tasks})
    found = await validate_config_text(
        new_text, source=str(saved), base_dir=saved.parent, registry=registry, environ=environ
    )
    if found.errors or found.config is None:
        raise ConfigError(found.errors)
    await anyio.to_thread.run_sync(_accepted, repo, held, tasks, new_text.encode())
    return f"accepted the goal plan of {saved}: {len(tasks)} task(s) run"


def _answerable(repo: Path) -> tuple[HeldPlan, bytes]:
    held = _pending(repo)
    return held, _saved_bytes(held)


def _accepted(repo: Path, held: HeldPlan, tasks: list[dict[str, Any]], data: bytes) -> None:
    """The saved config rewritten and the record accepted, if nobody answered meanwhile."""
    _answerable(repo)
    saved = Path(held.config)
    write_atomic(saved.parent, saved, data)
    _write(repo, replace(held, tasks=tasks, status=ACCEPTED, digest=_digest(data)))


def wait_for_answer(
    repo: Path,
    saved: Path,
    say: Callable[[str], None],
    *,
    poll: float = 0.25,
    every: float = 30.0,
) -> HeldPlan:
    """The held plan of ``saved`` once answered (said every ``every`` seconds meanwhile); an
    accepted one only when the saved config's bytes are what was accepted."""
    said = time.monotonic()
    while True:
        held = read_plan(repo)
        if held is None or Path(held.config) != saved.absolute():
            raise UsageError(f"the goal plan of {saved} is no longer held in {plan_path(repo)}")
        if held.status == ACCEPTED:
            _saved_bytes(held)
            return held
        if held.status == REFUSED:
            return held
        if time.monotonic() - said >= every:
            said = time.monotonic()
            say("still waiting for the plan to be accepted or refused")
        time.sleep(poll)
