"""What the user gave cannot be used: a run config, a plugin or adapter, a value named on the
command line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors.base import CouncilError

__all__ = [
    "AdapterError",
    "AdapterUnavailable",
    "ConfigError",
    "ConfigIssue",
    "PlanRefused",
    "PluginError",
    "UsageError",
]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file, located as precisely as the file allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(CouncilError):
    """A run config could not be loaded; ``issues`` lists every problem found, one per line."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class PlanRefused(ConfigError):
    """Goal mode: no valid task list came of the goal (``orchestrator.run.goal``); ``issues``
    are the last plan's problems, each at its line of that plan; nothing was changed."""

    def __init__(self, headline: str, issues: Sequence[ConfigIssue]) -> None:
        super().__init__(issues)
        self.headline = headline
        self.args = ("\n".join([headline, *(str(issue) for issue in self.issues)]),)

    def __str__(self) -> str:
        return str(self.args[0])


class PluginError(CouncilError):
    """A plugin could not be loaded, or registered something invalid."""


class AdapterError(PluginError):
    """An adapter is unknown, misconfigured, or its CLI binary cannot be found."""


class AdapterUnavailable(AdapterError, ValueError):
    """An adapter a run would use cannot run here (unknown type, bad options, binary not
    found); found before the run writes anything, and the user's to fix (exit code 2)."""


class UsageError(CouncilError, ValueError):
    """A value the user gave names nothing there is (exit code 2, like any bad input)."""
