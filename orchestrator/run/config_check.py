"""What ``council config validate`` finds in one pass: every problem of a run config file, and
everything ``council run`` would refuse before it starts, each at its line in the file.

- **Errors** are the file's to fix, wherever it runs: what the loader finds (syntax, types,
  unknown keys and names, adapter types no plugin provides, options an adapter refuses, unset
  ``${NAME}`` references), a task with no adapter, a phase whose prompt one of its
  adapters cannot be given (``prompt_fit``), a forge type no plugin provides, and a
  ``sources:`` with no forge to read (no ``forge.repo`` and no origin remote on a forge:
  ``source_check``).
- **Warnings** are what this machine lacks for the run (``preflight``'s findings ``here``): a
  CLI that is not installed, a repository that is missing, is not a git checkout or has no
  base branch, a symbolic link in ``.council``. ``council run`` here would refuse each of them
  too; a config checked in CI, away from the CLIs and the repository, is still valid.

Nothing is written: the checks read the file, the registry and (for the repository) git.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config.load import CheckedConfig, RunConfig, check_config, check_config_text
from orchestrator.errors import ConfigIssue
from orchestrator.plugins.forge_types import ForgeTypes
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.preflight import Finding, adapter_findings, repository_finding
from orchestrator.run.prompt_fit import prompt_problems
from orchestrator.run.pull_landing_check import pull_landing_finding
from orchestrator.run.source_check import forge_findings

__all__ = ["Validation", "validate_config", "validate_config_text"]


@dataclass(frozen=True)
class Validation:
    source: str
    config: RunConfig | None  # None when the file could not be read, parsed or typed
    errors: list[ConfigIssue]
    warnings: list[ConfigIssue]  # ``council run`` would refuse these here, not elsewhere
    # What the file allows but most likely did not mean (a phase ``biuld``, no ``build``).
    slips: list[ConfigIssue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


async def validate_config(
    path: str | Path,
    registry: AdapterRegistry,
    environ: Mapping[str, str],
    *,
    forges: ForgeTypes | None = None,
) -> Validation:
    """Every problem of the run config at ``path``, as ``council config validate`` reports;
    ``forges``: the forge types plugins registered (default: the built-in ones)."""
    checked = check_config(path, options_models=registry.options_models(), environ=environ)
    return await _validated(checked, registry, forges)


async def validate_config_text(
    text: str,
    *,
    source: str,
    base_dir: Path,
    registry: AdapterRegistry,
    environ: Mapping[str, str],
) -> Validation:
    """``validate_config`` on config ``text`` that is not a file yet (a planned run, goal
    mode): the same checks, relative paths against ``base_dir``, issues naming ``source``."""
    checked = check_config_text(
        text,
        source=source,
        base_dir=base_dir,
        options_models=registry.options_models(),
        environ=environ,
    )
    return await _validated(checked, registry)


async def _validated(
    checked: CheckedConfig, registry: AdapterRegistry, forges: ForgeTypes | None = None
) -> Validation:
    config = checked.config
    if config is None:
        return Validation(checked.source, None, checked.issues, [], list(checked.warnings))
    # An adapter that cannot be created (an unknown type, a bad option: issues already) is
    # not reported a second time for what follows from it.
    flagged = {
        str(loc[1])
        for loc, _ in checked.problems
        if loc[:1] == ("adapters",) and len(loc) > 2 and loc[2] in ("type", "options")
    }
    findings = adapter_findings(config, registry, skip=flagged)
    findings += [
        Finding(("tasks", index, "prompt"), message)
        for index, message in prompt_problems(config, registry, skip=flagged)
    ]
    repository = await repository_finding(config)
    if repository is not None:
        findings.append(repository)
    elif (pulls := await pull_landing_finding(config)) is not None:
        findings.append(pulls)
    findings += await forge_findings(config, forges or ForgeTypes())
    errors = checked.located((f.loc, f.message) for f in findings if not f.here)
    warnings = checked.located((f.loc, f.message) for f in findings if f.here)
    return Validation(
        checked.source,
        config,
        _by_line([*checked.issues, *errors]),
        _by_line(warnings),
        _by_line(list(checked.warnings)),
    )


def _by_line(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda issue: issue.line or 0)
