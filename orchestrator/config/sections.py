"""The run config's settings sections: capacity, retries, rate-limit parks, the scheduler's clock,
the state backend, and how worktrees are prepared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from orchestrator.config.budgets import QuotaConfig
from orchestrator.config.durations import Duration, PositiveDuration
from orchestrator.config.fields import (
    CommandList,
    EnvNames,
    Id,
    NonBlank,
    RepoPath,
    Section,
    no_duplicates,
    resolve_path,
)
from orchestrator.config.state_monitor import StateMonitorConfig

__all__ = [
    "CapacityConfig",
    "LandingConfig",
    "PullsMode",
    "RateLimitConfig",
    "RetryConfig",
    "SchedulerConfig",
    "StateConfig",
    "WorktreeConfig",
]


class CapacityConfig(Section):
    """How many CLI sessions may run at once: overall, per adapter and per phase."""

    sessions: int = Field(default=4, ge=1, description="global maximum of concurrent sessions")
    per_adapter: dict[Id, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="adapter name -> maximum concurrent sessions"
    )
    per_phase: dict[Id, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="phase name -> maximum concurrent sessions"
    )


PullsMode = Literal["single", "stacked"]


class LandingConfig(Section):
    """Landing finished work on the base (``scheduler.attempts.lander``). ``wait_timeout``:
    how long a finished task waits for the base's checkout to be landable. ``relanding``:
    what happens to a landed task whose landing vanished from the base (a reset, a
    force-push, the branch recreated): ``auto`` lands it again from its kept branch through
    the merge queue (its CLI phases never run again); ``report`` only says so, and the run
    ends failed (``scheduler.attempts.relander``). ``via: pull_request`` and the fields after
    it: landing through a pull request on the forge (``scheduler.pulls.landing``)."""

    wait_timeout: PositiveDuration = Field(
        default=1800.0,
        description="how long a finished task waits for the base branch's checkout to be "
        "landable (uncommitted changes, a rebase or merge under way, an untracked file in the "
        "way) before it ends `waiting_for_checkout`, its work kept on its branch, until "
        "`council resume`",
    )
    relanding: Literal["auto", "report"] = Field(
        default="auto",
        description="auto: land a vanished landing again from its kept branch; "
        "report: name it in the report and end the run failed",
    )
    via: Literal["merge", "pull_request"] = Field(
        default="merge",
        description="merge: the merge queue lands finished work on the base; pull_request: "
        "it is pushed to the remote as council/<task> and lands through one pull request "
        "(needs a forge and a git remote `origin`; scheduler.pulls.landing)",
    )
    approvals: int = Field(
        default=1,
        ge=0,
        description="approving reviews a pull request needs (each reviewer's latest counts)",
    )
    checks: Literal["required", "ignore"] = Field(
        default="required",
        description="required: the head commit's check runs and statuses must all succeed "
        "(and at least one must be reported); ignore: they are not looked at",
    )
    merge: Literal["auto", "manual"] = Field(
        default="auto",
        description="auto: council merges the pull request through the API once approved "
        "and checked; manual: a person merges it, council follows until merged or closed",
    )
    merge_method: Literal["merge", "squash", "rebase"] = "merge"
    max_review_rounds: int = Field(
        default=3, ge=0, description="feedback rounds a pull request may take"
    )
    poll: PositiveDuration = Field(
        default=30.0, description="how often the open pull requests are looked at"
    )
    pulls: PullsMode = Field(
        default="single",
        description="single: a task starts once its dependencies merged; stacked: a task "
        "whose dependencies are open for review starts from their branches and opens its "
        "pull request against the one below it (needs via: pull_request; "
        "scheduler.pulls.stack)",
    )


class RetryConfig(Section):
    """Retries of a failed attempt, with exponential backoff."""

    max_retries: int = Field(default=3, ge=0)
    backoff_initial: Duration = 5.0
    backoff_max: Duration = 600.0
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: bool = True


class RateLimitConfig(Section):
    """Parks on a rate limit: how long a task waits for the limit to lift, and for how long
    waiting goes on before the task ends ``failed`` as ``rate_limited``
    (``orchestrator.scheduler.rules.parks``)."""

    backoff_initial: PositiveDuration = Field(
        default=30.0,
        description="the first park of a task when the CLI gives no reset time; each next "
        "one is `multiplier` times longer",
    )
    multiplier: float = Field(default=2.0, ge=1.0)
    backoff_max: PositiveDuration = Field(
        default=1800.0, description="the longest park without a reset time"
    )
    max_parks: int = Field(
        default=10, ge=1, description="parks per task; one more rate limit ends it"
    )
    max_parked_time: PositiveDuration = Field(
        default=21600.0,
        description="how long an adapter may stay rate limited (from its first park in a "
        "row) before the tasks parked on it end",
    )
    hold_at: float = Field(
        default=0.95,
        gt=0.0,
        le=1.0,
        description="a CLI that reports its quota this much used (0.95: 95 %) gets no new "
        "call before that quota resets: one started then would be cut off mid-phase",
    )
    quotas: dict[Id, QuotaConfig] = Field(
        default_factory=dict,
        description="an adapter's known quota (tokens, usd or calls per window): a CLI call "
        "that would pass it waits for the window to make room, or goes to a fallback",
    )


class SchedulerConfig(Section):
    heartbeat_interval: PositiveDuration = 60.0
    stale_threshold: PositiveDuration = Field(
        default=300.0, description="a claim not renewed for this long is swept"
    )
    tick: PositiveDuration = 1.0
    stop_grace: PositiveDuration = Field(
        default=5.0,
        description="time a CLI gets between SIGTERM and SIGKILL when it is stopped "
        "(time limit, cancel, Ctrl-C)",
    )


class StateConfig(Section):
    backend: Literal["file", "postgresql"] = "file"
    path: Path | None = Field(
        default=None, description="file backend directory; default <repo>/.council/state"
    )
    dsn: NonBlank | None = Field(
        default=None,
        description="postgresql: libpq connection string or URL; default COUNCIL_DATABASE_URL, "
        "then libpq's own defaults (PG* variables, .pgpass, service files)",
    )
    run: Id | None = Field(
        default=None,
        description="postgresql: the team run workstations join; default "
        "<repository name>-<base branch>",
    )
    remote: NonBlank | None = Field(
        default=None,
        description="postgresql: the shared git remote work lands on; default origin",
    )
    monitor: StateMonitorConfig = Field(default_factory=StateMonitorConfig)

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else resolve_path(path, info)


def _not_council_owned(values: list[str]) -> list[str]:
    for value in values:
        if value.split("/", 1)[0] in (".git", ".council"):
            raise ValueError(f"{value!r} is git's or the orchestrator's own directory")
    return values


class WorktreeConfig(Section):
    """How each session's worktree is prepared, and whether finished ones are recycled."""

    copy_files: Annotated[
        list[RepoPath], AfterValidator(no_duplicates), AfterValidator(_not_council_owned)
    ] = Field(
        default_factory=list,
        description="files or directories copied from the main checkout into every new "
        "worktree (such as .env); skipped when absent, never committed by the orchestrator",
    )
    setup: CommandList = Field(
        default_factory=list,
        description="commands run in every new worktree before its session starts, without "
        "a shell; output goes to .council/logs/setup-<session>.log",
    )
    setup_timeout: PositiveDuration = Field(
        default=600.0, description="time limit for each setup command"
    )
    passthrough_env: EnvNames = Field(
        default_factory=list,
        description="variables of the orchestrator's environment that setup and verify "
        "commands get besides the allow-listed ones (PATH, HOME, locale, TERM, TZ, proxies, "
        "CA bundles), such as JAVA_HOME or VIRTUAL_ENV; they run code the CLIs wrote, so pass "
        "no secret they do not need (a secret's value is masked in everything stored)",
    )
    pool_size: int = Field(
        default=0,
        ge=0,
        le=256,
        description="finished worktrees kept for reuse (0: remove them); reuse is much faster "
        "than a fresh checkout on large repositories",
    )
    sparse: Annotated[
        list[RepoPath], AfterValidator(no_duplicates), AfterValidator(_not_council_owned)
    ] = Field(
        default_factory=list,
        description="sparse-checkout cone: directories to check out (files at the top level "
        "always are); empty for a full checkout",
    )
