"""``council adapters check --live``: does this release of each installed CLI work with CLI
Council? Offline, in seconds per CLI.

For each built-in CLI found (``live_targets.find_cli``), the write scenario runs for real: a
temporary repository, the local fake model (``orchestrator.testing.fake_model``) speaking the
CLI's own wire protocol, and ``council run`` driving the real binary through its adapter. The
CLI works when its change lands on the base branch. Nothing leaves the machine: the CLI talks
to 127.0.0.1 with a fake key, and the user's own logins are not offered to it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.errors import RunError, UsageError
from orchestrator.process.command import run_command
from orchestrator.runner.version import VERSION_TIMEOUT, version_line
from orchestrator.testing.live_scenarios import WRITE, arun_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS, LiveTarget, find_cli

__all__ = ["LiveReport", "live_check", "live_targets"]


@dataclass
class LiveReport:
    cli: str
    adapter: str
    installed: bool
    path: str | None
    version: str | None
    works: bool | None  # None: not installed, so not checked
    seconds: float | None
    detail: str


def live_targets(name: str | None) -> list[LiveTarget]:
    """The built-in targets, or the one ``name`` names (its binary or its adapter type)."""
    targets = list(BUILTIN_TARGETS.values())
    if name is None:
        return targets
    chosen = [t for t in targets if name in (t.cli, t.adapter_type)]
    if not chosen:
        known = ", ".join(f"{t.adapter_type} ({t.cli})" for t in targets)
        raise UsageError(f"no live check for {name!r}; there is one for: {known}")
    return chosen


async def live_check(
    targets: Sequence[LiveTarget], progress: Callable[[str], None] = lambda _: None
) -> list[LiveReport]:
    """Run the write scenario on each installed CLI of ``targets``, one after the other
    (each starts a whole CLI runtime and a ``council run``)."""
    reports = []
    for target in targets:
        binary = find_cli(target.cli)
        if binary is None:
            reports.append(
                LiveReport(
                    target.cli, target.adapter_type, False, None, None, None, None,
                    f"{target.cli!r} is not installed (not on PATH)",
                )
            )  # fmt: skip
            continue
        progress(f"checking {target.cli} ({binary}) against the fake model ...")
        reports.append(await _check_one(target, binary))
    return reports


async def _check_one(target: LiveTarget, binary: Path) -> LiveReport:
    with tempfile.TemporaryDirectory(prefix=f"council-live-{target.cli}-") as scratch:
        version = await _version(binary, Path(scratch))
        # The user's own logins stay out of it: the fake model wants no real credential.
        isolated = replace(target, settings={**target.settings, "credentials": "isolated"})
        outcome = await arun_scenario(
            target.cli, WRITE, Path(scratch), target=isolated, executable=binary
        )
    asked = sum(1 for r in outcome.requests if not r.side)
    if outcome.passed:
        detail = f"wrote and landed hello.txt ({asked} model request{'s' * (asked != 1)})"
    else:
        detail = outcome.reason + (f" ({asked} model requests)" if asked else "; it asked nothing")
    return LiveReport(
        cli=target.cli,
        adapter=target.adapter_type,
        installed=True,
        path=str(binary),
        version=version,
        works=outcome.passed,
        seconds=round(outcome.seconds, 1),
        detail=detail,
    )


async def _version(binary: Path, cwd: Path) -> str | None:
    try:
        done = await run_command([str(binary), "--version"], cwd=cwd, timeout=VERSION_TIMEOUT)
    except RunError:
        return None
    return version_line(done.output) if done.ok else None
