"""``EventType``: the name of every event CLI Council emits, one family a block.

Each has one model (``orchestrator.events.catalogue.MODELS``; a test keeps the two in step). A
plugin may emit a type of its own: it travels as a plain ``Event``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EventType"]


class EventType(StrEnum):
    # the state store
    STATE_UPDATED = "state.updated"
    STATE_RECOVERED = "state.recovered"
    STATE_QUARANTINED = "state.quarantined"
    STATE_RECORD_LARGE = "state.record_large"
    STATE_RESYNC = "state.resync"  # other processes' writes may have gone unheard: read all
    SESSION_CREATED = "session.created"
    SESSION_UPDATED = "session.updated"
    SESSION_RECOVERED = "session.recovered"
    SESSION_REMOVED = "session.removed"
    CHECKPOINT_CREATED = "checkpoint.created"
    CHECKPOINT_RESTORED = "checkpoint.restored"
    CLAIM_ACQUIRED = "claim.acquired"
    CLAIM_RENEWED = "claim.renewed"
    CLAIM_RELEASED = "claim.released"
    CLAIM_EXPIRED = "claim.expired"
    LEGACY_IMPORTED = "legacy.imported"
    # file and merge locks
    LOCK_CLEANED = "lock.cleaned"
    LOCK_ACQUIRED = "lock.acquired"
    LOCK_RELEASED = "lock.released"
    LOCK_WAITING = "lock.waiting"
    LOCK_DEADLOCK = "lock.deadlock"
    # the collision radar
    RADAR_COLLISION = "radar.collision"
    RADAR_RESOLVED = "radar.resolved"
    # a session's services
    SERVICE_READY = "service.ready"
    SERVICE_FAILED = "service.failed"
    SERVICE_STOPPED = "service.stopped"
    # the merge queue and the scheduler's landing
    MERGE_STARTED = "merge.started"
    MERGE_COMPLETED = "merge.completed"
    MERGE_ALREADY_MERGED = "merge.already_merged"
    MERGE_CONFLICT = "merge.conflict"
    MERGE_WAITING = "merge.waiting"
    MERGE_FAILED = "merge.failed"
    MERGE_FORECAST_CONFLICT = "merge.forecast_conflict"
    MERGE_RESOLVE_ROUND = "merge.resolve_round"
    MERGE_FENCED = "merge.fenced"
    MERGE_VANISHED = "merge.vanished"
    MERGE_OUTSIDE = "merge.outside"
    # landing by pull request
    PULL_OPENED = "pull.opened"
    PULL_MERGED = "pull.merged"
    PULL_CLOSED = "pull.closed"
    PULL_NOT_MERGED = "pull.not_merged"
    PULL_FEEDBACK_ROUND = "pull.feedback_round"
    PULL_ROUND_UNCHANGED = "pull.round_unchanged"
    PULL_STACK_CARRIED = "pull.stack_carried"
    PULL_STACK_RETARGETED = "pull.stack_retargeted"
    # a run as a whole
    RUN_STARTED = "run.started"
    RUN_JOINED = "run.joined"
    RUN_RESUMED = "run.resumed"
    RUN_LEFT = "run.left"
    RUN_INTERRUPTED = "run.interrupted"
    RUN_FINISHED = "run.finished"
    WORKSTATION_PAUSED = "workstation.paused"
    # a task's way through the scheduler
    TASK_SUBMITTED = "task.submitted"
    TASK_REJECTED = "task.rejected"
    TASK_DISPATCHED = "task.dispatched"
    TASK_REQUEUED = "task.requeued"
    TASK_RETRY = "task.retry"
    TASK_FAILED = "task.failed"
    TASK_ALREADY_MERGED = "task.already_merged"
    TASK_CANCEL_REQUESTED = "task.cancel_requested"
    TASK_CANCEL_TOO_LATE = "task.cancel_too_late"
    TASK_CANCELLED = "task.cancelled"
    TASK_SWEPT = "task.swept"
    TASK_CLAIM_LOST = "task.claim_lost"
    TASK_SELF_FENCED = "task.self_fenced"
    TASK_WORKTREE_LOST = "task.worktree_lost"
    TASK_WAITING_FOR_CHECKOUT = "task.waiting_for_checkout"
    TASK_RECORD_RECREATED = "task.record_recreated"
    TASK_PUBLISH_FAILED = "task.publish_failed"
    TASK_TAKEOVER_REFUSED = "task.takeover_refused"
    TASK_TAKEN_OVER = "task.taken_over"
    ADAPTER_PARKED = "adapter.parked"
    # council mode (several candidates, one winner)
    COUNCIL_CANDIDATE_READY = "council.candidate_ready"
    COUNCIL_COMPARING = "council.comparing"
    COUNCIL_WINNER = "council.winner"
    # spending (orchestrator.spend)
    BUDGET_EXCEEDED = "budget.exceeded"
    BUDGET_RAISED = "budget.raised"
    CALL_HELD = "call.held"
    # one phase of one attempt, and the CLI it runs
    PHASE_STARTED = "phase.started"
    PHASE_COMPLETED = "phase.completed"
    PHASE_FAILED = "phase.failed"
    PHASE_STOPPED = "phase.stopped"  # cut short by the user's stop or cancel: not a failure
    PHASE_SENT_BACK = "phase.sent_back"
    PHASE_EVENT = "phase.event"  # one line of the CLI's output, parsed (subscribers only)
    PHASE_RESUME_REFUSED = "phase.resume_refused"
    PHASE_LEFTOVERS_KEPT = "phase.leftovers_kept"
    VERIFY_DISCARDED = "verify.discarded"
    CLI_SURVIVORS_STOPPED = "cli.survivors_stopped"
    CLI_ORPHANS_STOPPED = "cli.orphans_stopped"
    CLI_ORPHANS_LEFT = "cli.orphans_left"
    # issues as tasks (orchestrator.forge.issue_tasks)
    ISSUES_READ = "issues.read"
    ISSUE_SKIPPED = "issue.skipped"
    ISSUE_WITHDRAWN = "issue.withdrawn"
    FORGE_CALL_FAILED = "forge.call_failed"
    # session worktrees
    WORKTREE_CREATED = "worktree.created"
    WORKTREE_RECREATED = "worktree.recreated"
    WORKTREE_FINISHED = "worktree.finished"
    WORKTREE_RESCUED = "worktree.rescued"
    WORKTREE_REMOVED = "worktree.removed"
    WORKTREE_ADOPTED = "worktree.adopted"
    # the council's MCP server (orchestrator.coordination)
    MCP_CALL = "mcp.call"
    # what an event iterator says of its own (``Council.events``), never logged
    EVENTS_DROPPED = "events.dropped"
