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
    adapters:
      ollama:
        sandbox: {network: open}  # per adapter: what it sets overrides the run's
      aider:
        sandbox: none

What the sandbox allows and hides: ``orchestrator.sandbox.plan``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from orchestrator.config.fields import Section, resolve_path

__all__ = ["SandboxConfig", "merged_sandbox"]

Mode = Literal["auto", "bubblewrap", "none"]


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

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    @field_validator("read", "write")
    @classmethod
    def _paths(cls, paths: list[Path], info: ValidationInfo) -> list[Path]:
        return [resolve_path(path.expanduser(), info) for path in paths]


def merged_sandbox(run: SandboxConfig, adapter: SandboxConfig | None) -> SandboxConfig:
    """The run's ``sandbox:`` with what the adapter's own sets laid over it."""
    if adapter is None:
        return run
    given = {name: getattr(adapter, name) for name in adapter.model_fields_set}
    return run.model_copy(update=given)
