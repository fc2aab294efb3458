"""The run config as pydantic models: what a ``configs/*.yaml`` file may say, with defaults.

Every model forbids unknown keys, so a misspelt setting is an error instead of a silently
ignored line. Relative paths (``repo``, ``state.path``) are resolved against the directory of
the config file, passed as the validation context ``{"base_dir": ...}``; without it they are
resolved against the current directory. Checks that span several fields (unknown task or adapter
names, cycles) live in ``config_checks`` and run when a ``RunConfig`` is built.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from orchestrator.config_checks import find_problems, format_problems
from orchestrator.durations import Duration, PositiveDuration
from orchestrator.ids import ID_PATTERN, SafeId
from orchestrator.models import DEFAULT_PHASES

__all__ = [
    "DEFER_CHECKS",
    "AdapterConfig",
    "CapacityConfig",
    "Command",
    "CommandList",
    "Id",
    "PhaseConfig",
    "RateLimitConfig",
    "RepoPath",
    "RetryConfig",
    "RunConfig",
    "SchedulerConfig",
    "StateConfig",
    "TaskConfig",
    "WorkflowConfig",
    "WorktreeConfig",
]

DEFER_CHECKS = "defer_checks"
"""Validation-context key: leave the cross-field checks to the caller (the YAML loader runs
them itself so each problem can be reported at its own line)."""

_SHELL_OPERATORS = frozenset({"&&", "||", "|", ";", "&", ">", ">>", "<", "<<", "2>", "2>&1"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- field types -------------------------------------------------------------------------------

Id = Annotated[SafeId, WithJsonSchema({"type": "string", "pattern": ID_PATTERN})]
"""A safe id (task, phase, adapter name) that also shows its pattern in the JSON schema."""


def _split_command(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"cannot split command {value!r}: {exc}") from None
    operators = [word for word in argv if word in _SHELL_OPERATORS]
    if operators:
        raise ValueError(
            f"shell operator {operators[0]!r} in {value!r}: commands run without a shell; "
            "list each command separately"
        )
    return argv


def _check_argv(argv: list[str]) -> list[str]:
    if not argv or not argv[0]:
        raise ValueError("command is empty")
    if any("\0" in word for word in argv):
        raise ValueError("command contains a NUL character")
    return argv


_COMMAND_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1, "description": "split like a shell does (shlex)"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ],
}

Command = Annotated[
    list[str],
    BeforeValidator(_split_command),
    AfterValidator(_check_argv),
    WithJsonSchema(_COMMAND_SCHEMA, mode="validation"),
]
"""One command: a string split with ``shlex`` (never run by a shell) or an argument list."""


def _one_command_is_a_list(value: Any) -> Any:
    # `verify: pytest -q` means one command, not the characters of a string.
    return [value] if isinstance(value, str) else value


CommandList = Annotated[list[Command], BeforeValidator(_one_command_is_a_list)]


def _repo_path(value: str) -> str:
    if not value.strip():
        raise ValueError("path is empty")
    if "\0" in value:
        raise ValueError("path contains a NUL character")
    if "\\" in value:
        raise ValueError(f"{value!r}: use '/' to separate directories")
    path = PurePosixPath(value)
    if path.is_absolute() or re.match(r"[A-Za-z]:", value):
        raise ValueError(f"{value!r} is absolute; give a path relative to the repository root")
    if ".." in path.parts:
        raise ValueError(f"{value!r} climbs out with '..'; stay inside the repository")
    parts = [part for part in path.parts if part != "."]
    if not parts:
        raise ValueError(f"{value!r} names the repository root; name a file or directory")
    return "/".join(parts)


RepoPath = Annotated[str, AfterValidator(_repo_path)]
"""A repository-relative POSIX path, normalized (``./src//a.py`` becomes ``src/a.py``)."""


def _no_duplicates(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ValueError(f"{value!r} is listed twice")
    return values


UniqueIds = Annotated[list[Id], AfterValidator(_no_duplicates)]


def _env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid environment variable name")
    return name


EnvName = Annotated[str, AfterValidator(_env_name)]
EnvNames = Annotated[list[EnvName], AfterValidator(_no_duplicates)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


def _branch_name(value: str) -> str:
    if (
        not value
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
        or _BAD_REF_CHARS.search(value)
    ):
        raise ValueError(f"{value!r} is not a valid git branch name")
    return value


def _resolve(path: Path, info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, dict) else {}
    base = Path(context.get("base_dir") or Path.cwd())
    return (base / path.expanduser()).resolve()


# --- sections ----------------------------------------------------------------------------------


class CapacityConfig(_Section):
    """How many CLI sessions may run at once: overall, per adapter and per phase."""

    sessions: int = Field(default=4, ge=1, description="global maximum of concurrent sessions")
    per_adapter: dict[Id, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="adapter name -> maximum concurrent sessions"
    )
    per_phase: dict[Id, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="phase name -> maximum concurrent sessions"
    )


class AdapterConfig(_Section):
    """One configured CLI. The key under ``adapters:`` is the name tasks refer to."""

    type: Id | None = Field(
        default=None,
        description="adapter plugin that drives this CLI; defaults to the key (always set "
        "once loaded)",
    )
    executable: NonBlank | None = Field(default=None, description="binary name or path")
    model: NonBlank | None = None
    options: dict[str, Any] = Field(
        default_factory=dict, description="adapter-specific; validated by the adapter plugin"
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="extra environment variables; `${NAME}` in a value is NAME from the "
        "environment council runs in (a secret stays out of this file; `$${` is a literal "
        "`${`); an unset NAME is an error before the run starts",
    )
    pass_env: EnvNames = Field(
        default_factory=list,
        description="more variables of the environment council runs in that this CLI gets "
        "as they are (a key under a name of your own); their values are masked wherever stored",
    )
    credentials: Literal["shared", "isolated"] = Field(
        default="shared",
        description="shared: the CLI sees the user's own login (their credential files, "
        "linked into its private HOME); isolated: only what the run config gives it",
    )
    fallback: UniqueIds = Field(
        default_factory=list, description="adapters to try, in order, when this one is parked"
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            if "\0" in value:
                raise ValueError(f"{name}: value contains a NUL character")
        return env


class PhaseConfig(_Section):
    """One workflow phase: one CLI invocation per task, fed the previous phase's handoff."""

    name: Id
    adapter: Id | None = Field(
        default=None, description="adapter for this phase when the task names none"
    )
    model: NonBlank | None = None
    prompt_template: str | None = None
    timeout: PositiveDuration | None = Field(default=None, description="total time limit")
    idle_timeout: PositiveDuration | None = Field(
        default=None, description="limit on time without any output"
    )


def _default_phases() -> list[PhaseConfig]:
    return [PhaseConfig(name=name) for name in DEFAULT_PHASES]


class WorkflowConfig(_Section):
    phases: list[PhaseConfig] = Field(default_factory=_default_phases, min_length=1)
    max_review_rounds: int = Field(
        default=2, ge=0, description="times review may send a task back to build"
    )


class RetryConfig(_Section):
    """Retries of a failed attempt, with exponential backoff."""

    max_retries: int = Field(default=3, ge=0)
    backoff_initial: Duration = 5.0
    backoff_max: Duration = 600.0
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: bool = True


class RateLimitConfig(_Section):
    """Parks on a rate limit: how long a task waits for the limit to lift, and for how long
    waiting goes on before the task ends ``failed`` as ``rate_limited`` (``orchestrator.parks``)."""

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


class SchedulerConfig(_Section):
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


class StateConfig(_Section):
    backend: Literal["file", "postgresql"] = "file"
    path: Path | None = Field(
        default=None, description="file backend directory; default <repo>/.council/state"
    )
    dsn: NonBlank | None = Field(default=None, description="required for postgresql")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else _resolve(path, info)


def _not_council_owned(values: list[str]) -> list[str]:
    for value in values:
        if value.split("/", 1)[0] in (".git", ".council"):
            raise ValueError(f"{value!r} is git's or the orchestrator's own directory")
    return values


class WorktreeConfig(_Section):
    """How each session's worktree is prepared, and whether finished ones are recycled."""

    copy_files: Annotated[
        list[RepoPath], AfterValidator(_no_duplicates), AfterValidator(_not_council_owned)
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
        list[RepoPath], AfterValidator(_no_duplicates), AfterValidator(_not_council_owned)
    ] = Field(
        default_factory=list,
        description="sparse-checkout cone: directories to check out (files at the top level "
        "always are); empty for a full checkout",
    )


class TaskConfig(_Section):
    """One unit of work: a prompt run through the workflow's phases in its own worktree."""

    id: Id
    prompt: NonBlank
    priority: int = Field(default=0, description="higher runs first")
    depends_on: Annotated[list[str], AfterValidator(_no_duplicates)] = Field(
        default_factory=list, description="task ids that must be merged before this one starts"
    )
    files: Annotated[list[RepoPath], AfterValidator(_no_duplicates)] = Field(
        default_factory=list, description="repository paths this task will change (locked)"
    )
    adapters: UniqueIds = Field(
        default_factory=list, description="first is the primary, the rest fallbacks"
    )
    verify: CommandList | None = Field(
        default=None, description="replaces the top-level verify commands for this task"
    )
    timeout: PositiveDuration | None = Field(
        default=None, description="limit for one attempt of the whole task"
    )
    phases: Annotated[UniqueIds, Field(min_length=1)] | None = Field(
        default=None, description="phases to run, in order (default: all)"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    council: bool = Field(
        default=False,
        description="council mode (best of N): every adapter in `adapters` runs the task in "
        "its own session and worktree, in parallel; a comparison picks the one to merge and "
        "the other branches are kept",
    )


# --- the run -----------------------------------------------------------------------------------


class RunConfig(_Section):
    """A whole run: the repository, its adapters, the workflow and the tasks."""

    repo: Path = Field(
        default=Path(),
        validate_default=True,
        description="the git repository, relative to the config file",
    )
    base_branch: Annotated[str, AfterValidator(_branch_name)] = "main"
    sample_repo: bool = Field(
        default=False,
        description="create a small sample repository at `repo` when it does not exist; "
        "used by the offline demo",
    )
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    adapters: dict[Id, AdapterConfig] = Field(default_factory=dict)
    default_adapter: Id | None = None
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    verify: CommandList = Field(
        default_factory=list, description="commands that must pass before a task merges"
    )
    state: StateConfig = Field(default_factory=StateConfig)
    worktrees: WorktreeConfig = Field(default_factory=WorktreeConfig)
    tasks: list[TaskConfig]

    @field_validator("repo")
    @classmethod
    def _absolute_repo(cls, repo: Path, info: ValidationInfo) -> Path:
        return _resolve(repo, info)

    @field_validator("adapters")
    @classmethod
    def _type_defaults_to_name(cls, adapters: dict[str, AdapterConfig]) -> dict[str, AdapterConfig]:
        return {
            name: adapter if adapter.type else adapter.model_copy(update={"type": name})
            for name, adapter in adapters.items()
        }

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, dict) and info.context.get(DEFER_CHECKS):
            return self
        problems = find_problems(self)
        if problems:
            raise ValueError(format_problems(problems))
        return self

    # --- answers the rest of the orchestrator asks; one rule each, kept here ------------------

    @property
    def state_dir(self) -> Path:
        """Where the file state backend keeps its records."""
        return self.state.path or self.repo / ".council" / "state"

    @property
    def state_anchor(self) -> Path:
        """The directory the state store's files are reached from without following a link:
        the repository when the state lives in it, else the state directory itself."""
        inside = Path(os.path.normpath(self.state_dir)).is_relative_to(os.path.normpath(self.repo))
        return self.repo if inside else self.state_dir

    def phase(self, name: str) -> PhaseConfig:
        """The phase called ``name`` (``KeyError`` if the workflow has none)."""
        for phase in self.workflow.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def phases_for(self, task: TaskConfig) -> list[PhaseConfig]:
        """The phases ``task`` runs, in order."""
        if task.phases is None:
            return list(self.workflow.phases)
        return [self.phase(name) for name in task.phases]

    def verify_for(self, task: TaskConfig) -> list[list[str]]:
        """The verify commands for ``task``: its own when it sets ``verify``, else the run's."""
        return [list(argv) for argv in (self.verify if task.verify is None else task.verify)]

    def adapter_chain(self, task: TaskConfig, phase: PhaseConfig) -> list[str]:
        """Adapters to try for ``task`` in ``phase``, primary first.

        The most specific setting wins: the task's ``adapters`` list, else the phase's
        ``adapter``, else ``default_adapter``, else the only adapter defined. Unless the task
        lists its own fallbacks, the primary adapter's ``fallback`` list follows it. An empty
        answer means no adapter is configured at all (the caller decides, e.g. auto-detection).
        """
        if task.adapters:
            return list(task.adapters)
        primary = phase.adapter or self.default_adapter
        if primary is None and len(self.adapters) == 1:
            primary = next(iter(self.adapters))
        if primary is None:
            return []
        chain = [primary]
        configured = self.adapters.get(primary)
        for name in configured.fallback if configured else []:
            if name not in chain:
                chain.append(name)
        return chain
