"""The run config's ``sandbox:`` section, run-wide and per adapter.

::

    sandbox: auto                 # auto | bubblewrap | none (shorthand for {mode: ...})
    sandbox:
      mode: auto                  # auto: bubblewrap where the machine has it, else none
      network: open               # open: its own namespace, the public network only (no
                                  # host loopback); model: only the model's API hosts
                                  # (an allow-list proxy); none: no network at all
      read: [~/datasets]          # more paths the CLI may read (everything else of HOME is hidden)
      write: [~/.cache/pip]       # more paths it may write
      limits:                     # on each CLI and each command run for a task (none: unbounded)
        processes: 2048           # processes and threads (a fork bomb fails that CLI only)
        memory: 8GiB              # each process's data memory (as root: also all of them)
        file_size: 2GiB           # the largest file it may write
    adapters:
      ollama:
        sandbox: {network: open}  # per adapter: what it sets overrides the run's
      aider:
        sandbox: none
      claude_code:
        sandbox: {limits: {memory: 16GiB}}  # the rest of the run's limits stay

What the sandbox allows and hides: ``orchestrator.sandbox.plan``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ByteSize, Field, ValidationInfo, field_validator, model_validator

from orchestrator.config.fields import Section, resolve_path

__all__ = ["LimitsConfig", "SandboxConfig", "merged_sandbox"]

Mode = Literal["auto", "bubblewrap", "none"]
_MIB = 1024**2
_GIB = 1024**3


class LimitsConfig(Section):
    """Resource limits on each confined CLI and command (``orchestrator.process.limits``);
    ``none`` (for the section or one limit) leaves it unbounded."""

    processes: int | None = Field(
        default=2048,
        description="processes and threads one CLI may have at once (a cgroup as root, "
        "RLIMIT_NPROC in its user namespace otherwise)",
    )
    memory: ByteSize | None = Field(
        default=ByteSize(8 * _GIB),
        description="each process's data memory (RLIMIT_DATA; `8GiB`); as root, where a "
        "cgroup can be made, also the whole CLI's",
    )
    file_size: ByteSize | None = Field(
        default=ByteSize(2 * _GIB),
        description="the largest file a CLI may write (RLIMIT_FSIZE; `2GiB`)",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None or value == "none":
            return {"processes": None, "memory": None, "file_size": None}
        if isinstance(value, dict):
            return {key: None if item == "none" else item for key, item in value.items()}
        return value

    @field_validator("processes")
    @classmethod
    def _processes(cls, value: int | None) -> int | None:
        if value is not None and value < 16:
            raise ValueError(f"{value} is too few for any CLI to start: at least 16 (or none)")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: ByteSize | None) -> ByteSize | None:
        if value is not None and value < 64 * _MIB:
            raise ValueError(
                f"{value.human_readable()} is too little for any CLI to start: at least 64MiB "
                "(or none)"
            )
        return value

    @field_validator("file_size")
    @classmethod
    def _file_size(cls, value: ByteSize | None) -> ByteSize | None:
        if value is not None and value < _MIB:
            raise ValueError(f"{value} bytes is too small: at least 1MiB (or none)")
        return value


class SandboxConfig(Section):
    """How a CLI is confined (``orchestrator.sandbox``)."""

    mode: Mode = Field(
        default="auto",
        description="auto: bubblewrap where the machine has a working one, else none (said "
        "at the start of the run and by `council doctor`); bubblewrap: required, the run "
        "refuses to start without it; none: the CLI reaches whatever the user can",
    )
    network: Literal["open", "model", "none"] = Field(
        default="open",
        description="open: the CLI reaches the public network (its model's API) from a network "
        "namespace of its own, never this machine's loopback or local sockets (where slirp4netns "
        "works); model: only its model's API hosts, through the orchestrator's allow-list proxy "
        "(HTTPS_PROXY; a CLI that ignores the variable reaches nothing: `council doctor` says "
        "which); none: no network at all. With open and model, a model endpoint on this "
        "machine's loopback (base_url, Ollama's host) is relayed in, that port alone",
    )
    read: list[Path] = Field(
        default_factory=list, description="more paths the CLI may read (`~` allowed)"
    )
    write: list[Path] = Field(
        default_factory=list, description="more paths the CLI may write (`~` allowed)"
    )
    limits: LimitsConfig = Field(
        default_factory=LimitsConfig,
        description="resource limits on each CLI and command: processes, memory, file_size",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    @field_validator("read", "write")
    @classmethod
    def _paths(cls, paths: list[Path], info: ValidationInfo) -> list[Path]:
        return [resolve_path(path.expanduser(), info) for path in paths]


def merged_sandbox(run: SandboxConfig, adapter: SandboxConfig | None) -> SandboxConfig:
    """The run's ``sandbox:`` with what the adapter's own sets laid over it (its ``limits``
    limit by limit)."""
    if adapter is None:
        return run
    given = {name: getattr(adapter, name) for name in adapter.model_fields_set}
    if "limits" in given:
        own = adapter.limits
        limits = {name: getattr(own, name) for name in own.model_fields_set}
        given["limits"] = run.limits.model_copy(update=limits)
    return run.model_copy(update=given)
