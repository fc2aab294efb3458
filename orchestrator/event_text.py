"""Events as one readable sentence each, for people (warnings on stderr, logs); the data stays
in the event for programs (``--json``, the event log, subscribers).

``sentence(event)`` uses the event type's own wording when it has one and every value it names
is there; otherwise a plain line built from the data: the task first, then each field as
words, lists joined with commas, never a Python dict or quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.events import Event, EventType

__all__ = ["TRANSITIONS", "sentence"]

_WORDING: dict[str, str] = {
    EventType.MERGE_FAILED: "{task_id}: landing {branch} failed: {error}",
    EventType.MERGE_WAITING: "{task_id}: waiting to land: {message}",
    EventType.MERGE_CONFLICT: "{task_id}: {message}",
    EventType.STATE_RECORD_LARGE: (
        "{kind} record {key} is {size} bytes, over state.monitor.large_record ({threshold}): "
        "every write rewrites it whole"
    ),
    EventType.STATE_RECOVERED: (
        "{kind} record {key} was damaged ({reason}): recovered from version "
        "{recovered_from_version}"
    ),
    EventType.LOCK_DEADLOCK: "{session}: waiting for {path} would deadlock: refused",
    "phase.failed": "{task_id}: {phase} failed ({outcome}): {error}",
    "phase.stopped": "{task_id}: {phase} stopped",
    "phase.resume_refused": "{task_id}: {phase} could not resume its conversation: started afresh",
    "merge.forecast_conflict": (
        "{task_id}: waits to land until {held_for} has (both change {paths})"
    ),
    "merge.resolve_round": (
        "{task_id}: conflicts with the base in {paths}: building it again on the updated base "
        "(round {round}; branch {kept_branch} kept)"
    ),
    "merge.vanished": (
        "{task_id}: its landing {commit} is no longer on {base_branch} (now at {base}, "
        "replaced by: {replaced_by}): {action}"
    ),
    "radar.collision": (
        "{task_id}: its session and {other_task_id}'s change {paths} ({severity}): the collision "
        "radar warns both"
    ),
    "radar.resolved": "{task_id} and {other_task_id} no longer collide on {paths} ({reason})",
    "service.ready": "{task_id}: service {service} ready for {phase} (log {log})",
    "service.failed": "{task_id}: service {service} not ready for {phase}: {why} (log {log})",
    "service.stopped": "{task_id}: service {service} stopped",
    "merge.fenced": "{task_id}: not landed: its claim no longer holds (taken over elsewhere)",
    "merge.outside": (
        "{base_branch} moved outside the merge queue: {commit} {subject} is no landing (pushed "
        "by hand or by a CLI); no task counts it as landed"
    ),
    "task.claim_lost": (
        "{task_id}: its claim lapsed and another took the task: this attempt writes nothing more"
    ),
    "task.self_fenced": (
        "{task_id}: claim not renewed for {silent}s: the session stopped itself, its work kept "
        "on its branch"
    ),
    "task.swept": "{task_id}: the claim of {holder} lapsed: the task is {status} again",
    "task.worktree_lost": (
        "{task_id}: its worktree {worktree} disappeared: the attempt stops, the task goes back "
        "to the queue"
    ),
    "task.publish_failed": "{task_id}: could not push {branch} to the team's remote: {error}",
    "task.takeover_refused": (
        "{task_id}: cannot continue {branch} here ({error}): starting afresh from the base"
    ),
    "task.failed": "{task_id}: failed: {error}",
    "issue.skipped": "issue #{issue} is not a task: {reason}",
    "issue.withdrawn": "{task_id}: cancelled before it started: {reason} (issue #{issue})",
    "forge.call_failed": "the forge: could not {action}: {error}",
    "worktree.adopted": "{task_id}: {message}",
    "task.waiting_for_checkout": (
        "{task_id}: stopped waiting to land after {waited}s ({message}); its work is kept on "
        "{branch}: clear that, then `council resume` lands it"
    ),
    "task.retry": "{task_id}: trying again in {delay}s after: {error}",
    "cli.orphans_left": "processes a dead run left could not all be stopped: {error}",
    # A task's way through a run (what a piped or redirected ``council run`` prints).
    "run.started": "run {session_id} started",
    "run.joined": "joined team run {session_id} ({tasks} tasks)",
    "run.finished": "run {session_id} finished: {status}",
    "run.interrupted": "run {session_id} interrupted",
    "task.dispatched": "{task_id}: attempt {attempt} started on {adapter} ({branch})",
    "phase.started": "{task_id}: {phase} started on {adapter}",
    "phase.completed": "{task_id}: {phase} done",
    "phase.sent_back": "{task_id}: review sent the work back: {phase} again (round {round})",
    "task.taken_over": "{task_id}: continued here from {branch} at {tip}",
    EventType.MERGE_COMPLETED: "{task_id}: landed on {base_branch} in {merge_commit}",
    EventType.MERGE_ALREADY_MERGED: "{task_id}: already on {base_branch}: {message}",
    "task.already_merged": "{task_id}: already landed in {commit}",
    "pull.opened": "{task_id}: pull request #{number} open for review: {url}",
    "pull.round_unchanged": (
        "{task_id}: feedback round {round} changed nothing: pull request #{number} stays at "
        "the head reviewed ({head_sha}): {url}"
    ),
    "pull.merged": "{task_id}: pull request #{number} merged in {commit}",
    "pull.stack_carried": (
        "{task_id}: pull request #{number} rebuilt on #{below} ({below_task}), which changed"
    ),
    "pull.stack_retargeted": "{task_id}: pull request #{number} now lands on {base}: {url}",
    "pull.closed": "{task_id}: pull request #{number} was closed without merging: {url}",
    "pull.feedback_round": (
        "{task_id}: pull request #{number} got feedback ({reasons}): building again (round {round})"
    ),
    "pull.not_merged": "{task_id}: pull request #{number} could not be merged ({kind}): {message}",
    "task.cancelled": "{task_id}: cancelled",
    "adapter.parked": (
        "{task_id}: {adapter} is rate limited until {until} (park {park} of {max_parks}): {message}"
    ),
    "budget.exceeded": "budget: {message} ({action})",
    "budget.raised": "budget: {scope} raised",
    "call.held": "{task_id}: {phase} on {adapter} held: {reason}",
    "workstation.paused": (
        "this workstation was paused for {seconds}s ({how}), not the state store: "
        "{renewed} of {attempts} running claims renewed at once"
    ),
}

TRANSITIONS = frozenset(
    {
        "run.started",
        "run.joined",
        "run.finished",
        "run.interrupted",
        "task.dispatched",
        "phase.started",
        "phase.completed",
        "phase.failed",
        "phase.stopped",
        "phase.sent_back",
        "task.taken_over",
        "task.takeover_refused",
        EventType.MERGE_COMPLETED,
        EventType.MERGE_ALREADY_MERGED,
        EventType.MERGE_CONFLICT,
        EventType.MERGE_WAITING,
        "merge.resolve_round",
        "merge.vanished",
        "merge.outside",
        "task.already_merged",
        "pull.opened",
        "pull.merged",
        "pull.closed",
        "pull.not_merged",
        "pull.feedback_round",
        "pull.round_unchanged",
        "pull.stack_carried",
        "pull.stack_retargeted",
        "task.retry",
        "task.failed",
        "task.waiting_for_checkout",
        "task.cancelled",
        "task.swept",
        "adapter.parked",
        "budget.exceeded",
        "call.held",
    }
)
"""The events that move a task (or the run) from one state to the next."""


_CANCELLED_PHASE = "{task_id}: {phase} stopped"


def sentence(event: Event) -> str:
    """``event`` as one line a person reads (module doc)."""
    data = event.data
    wording = _WORDING.get(event.type)
    if event.type == "phase.failed" and data.get("outcome") == "cancelled":
        wording = _CANCELLED_PHASE  # an older version's log: a stop said as a failure
    if wording is not None:
        try:
            return wording.format_map(_Shown(data))
        except KeyError:
            pass  # a field the wording needs is missing: the plain line says what there is
    return _plain(event.type, data)


class _Shown(dict[str, str]):
    """The event's values as text; a missing one is a ``KeyError`` (the wording is not used)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__({key: _text(value) for key, value in data.items() if value is not None})
        if "task_id" not in self and "task" in self:
            self["task_id"] = self["task"]  # an event logged before phases said ``task_id``


def _plain(kind: str, data: Mapping[str, Any]) -> str:
    subject = data.get("task_id") or data.get("task")
    what = kind.replace(".", " ").replace("_", " ")
    rest = [
        f"{key.replace('_', ' ')} {_text(value)}"
        for key, value in data.items()
        if value not in (None, "", [], {}) and key not in ("task_id", "task")
    ]
    head = f"{subject}: {what}" if subject else what
    return f"{head}: {', '.join(rest)}" if rest else head


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_text(item) for item in value) or "nothing"
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_text(item)}" for key, item in value.items())
    return str(value)
