"""Council mode (best of N): comparing candidate implementations of one task and picking one.

The scheduler runs the candidates (each its own session, worktree and branch, each through
``run_workflow``) and then asks ``pick_best`` which one to merge:

- only candidates whose workflow ended ``ready_to_merge`` (committed, non-empty, verified,
  approved) can win; with none, ``WorkflowError``; with one, it wins without asking anyone;
- otherwise a comparison runs one CLI (``adapter``, else the ``review`` phase's adapter, else
  the run's ``default_adapter``, else the first candidate's) with ``COUNCIL_TEMPLATE``: each
  candidate's diff against its fork point, files and result message, under its session id.
  It runs in a scratch directory of its own below ``home_root``, never in a candidate's
  worktree, so it cannot change anyone's work. The answer's last ``WINNER: <session id>``
  naming a verified candidate wins (the candidate's adapter name is accepted too, when no
  other verified candidate ran on that adapter); no usable answer (or a failed CLI) falls back
  to the first verified candidate, so a council run always merges exactly one candidate.
  ``judge_adapter`` is that choice of CLI, for a caller that must reserve its slot first.
  The judge's call passes the run's spend gate like every call, counted to the council task;
  one the gate holds (a budget without room, a quota) is not made: the first verified
  candidate wins, as when the judge gives no usable answer.

The other candidates' branches are the scheduler's to keep (never merged, never deleted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig
from orchestrator.errors import CouncilError, WorkflowError
from orchestrator.events import Event
from orchestrator.git.repo import Git
from orchestrator.plugins.host import PluginHost
from orchestrator.runner.cli_run import CliWatch
from orchestrator.runner.phase import call_phase_cli, phase_home
from orchestrator.runner.phase_call import DEFAULT_IDLE_TIMEOUT, DEFAULT_TIMEOUT, PhaseCall
from orchestrator.safety import safe_write
from orchestrator.spend.gate import CallPlan, SpendGate, SpendHeld
from orchestrator.workflow.handoffs.prompts import PromptContext, render_prompt
from orchestrator.workflow.handoffs.review import parse_winner
from orchestrator.workflow.handoffs.templates import COUNCIL_TEMPLATE
from orchestrator.workflow.spending import MeteredCall, failing
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus
from orchestrator.worktrees.confine import outside_look
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["COUNCIL_PHASE", "CandidateResult", "judge_adapter", "pick_best"]

log = logging.getLogger(__name__)

COUNCIL_PHASE = "council"
_DIFF_LIMIT = 40_000


@dataclass(frozen=True)
class CandidateResult:
    """One candidate of a council run: its session (worktree, branch) and how it ended."""

    session: SessionWorktree
    adapter: str
    result: WorkflowResult


async def pick_best(
    run_config: RunConfig,
    task: TaskConfig,
    candidates: Sequence[CandidateResult],
    *,
    worktrees: WorktreeManager,
    plugins: PluginHost,
    home_root: Path,
    log_dir: Path,
    adapter: str | None = None,
    cancel: anyio.Event | None = None,
    on_event: Callable[[Event], None] | None = None,
    watch: CliWatch | None = None,
    spend: SpendGate | None = None,
) -> str:
    """The session id of the candidate to merge (see the module doc)."""
    verified = [c for c in candidates if c.result.status == WorkflowStatus.READY_TO_MERGE]
    if not verified:
        raise WorkflowError(f"task {task.id}: no candidate is ready to merge; nothing to pick")
    if len(verified) == 1:
        return verified[0].session.session_id
    phase = _review_phase(run_config)
    judge = adapter or judge_adapter(run_config, verified[0].adapter)
    sections = [await _describe(worktrees, candidate) for candidate in verified]
    context = PromptContext(task, COUNCIL_PHASE, extra={"handoff": "\n".join(sections)})
    workdir = phase_home(home_root, task.id, judge, COUNCIL_PHASE) / "workdir"
    await anyio.to_thread.run_sync(safe_write.make_dirs, home_root, workdir)
    call = PhaseCall(
        task_id=task.id,
        phase=COUNCIL_PHASE,
        adapter=judge,
        prompt=render_prompt(COUNCIL_TEMPLATE, context),
        workdir=workdir,
        home_root=home_root,
        session_id=task.id,
        model=phase.model,
        timeout=phase.timeout or DEFAULT_TIMEOUT,
        idle_timeout=phase.idle_timeout or DEFAULT_IDLE_TIMEOUT,
        grace=run_config.scheduler.stop_grace,
        # Confined like every CLI of a run (``sandbox:``): it works in a directory of its own,
        # outside every worktree, the repository read-only.
        reach=lambda: outside_look(run_config.repo),
    )
    ids = [c.session.session_id for c in verified]
    names = _names(verified)
    ticket = None
    if spend is not None:
        plan = CallPlan(task=task.id, phase=COUNCIL_PHASE, adapter=judge, model=phase.model)
        try:
            ticket = await spend.open(plan)
        except SpendHeld as held:
            log.warning("task %s: no comparison (%s); taking %s", task.id, held.reason, ids[0])
            return ids[0]
    metered = MeteredCall(spend, ticket) if ticket is not None and spend is not None else None
    try:
        async with failing(metered):
            ran = await call_phase_cli(
                run_config,
                plugins,
                call,
                log_dir=log_dir,
                cancel=cancel,
                on_event=on_event,
                watch=watch,
                on_cli_event=metered.meter.heard if metered is not None else None,
                halt=metered.halt if metered is not None else None,
            )
    except CouncilError as exc:
        log.warning(
            "task %s: the council comparison could not run (%s); taking %s", task.id, exc, ids[0]
        )
        return ids[0]
    if metered is not None:
        await metered.close(ran)
        if metered.over is not None and ran.cli.result.cancelled:
            log.warning(
                "task %s: no comparison (%s); taking %s", task.id, metered.over.message(), ids[0]
            )
            return ids[0]
    winner = parse_winner(ran.texts, list(names)) if ran.cli.ok else None
    if winner is None:
        log.info("task %s: no usable WINNER from %s; taking %s", task.id, judge, ids[0])
        return ids[0]
    return names[winner]


def judge_adapter(run_config: RunConfig, first_candidate: str) -> str:
    """The CLI that compares the candidates: the ``review`` phase's adapter, else the run's
    ``default_adapter``, else ``first_candidate`` (the first verified candidate's adapter)."""
    return _review_phase(run_config).adapter or run_config.default_adapter or first_candidate


def _names(verified: Sequence[CandidateResult]) -> dict[str, str]:
    """Every name a judge may give a candidate -> its session id."""
    names = {c.session.session_id: c.session.session_id for c in verified}
    adapters = [c.adapter for c in verified]
    for candidate in verified:
        if adapters.count(candidate.adapter) == 1:
            names.setdefault(candidate.adapter, candidate.session.session_id)
    return names


def _review_phase(config: RunConfig) -> PhaseConfig:
    try:
        return config.phase("review")
    except KeyError:
        return PhaseConfig(name="review")


async def _describe(worktrees: WorktreeManager, candidate: CandidateResult) -> str:
    session = candidate.session
    layout = await worktrees.layout()
    git = Git(layout.root, layout.hooks_dir)
    diff = await git.run("diff", "--no-color", session.base_commit, f"refs/heads/{session.branch}")
    text = diff.stdout
    cut = "\n(diff cut short)" if len(text) > _DIFF_LIMIT else ""
    fence = "````" if "```" in text else "```"
    files = ", ".join(candidate.result.files_changed) or "(none listed)"
    return (
        f"## Candidate {session.session_id} (adapter {candidate.adapter}, branch "
        f"{session.branch})\n"
        f"Files: {files}\nResult: {candidate.result.message or candidate.result.status}\n"
        f"{fence}diff\n{text[:_DIFF_LIMIT].rstrip()}\n{fence}{cut}\n"
    )
