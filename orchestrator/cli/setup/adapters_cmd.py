"""``council adapters``: which CLIs this installation can drive, and whether each one works.

``list`` shows every adapter the loaded plugins provide (its plugin, binary, whether the binary
is on PATH, its version, its capabilities). ``check`` gives each a verdict: the binary is found
and its version command runs; every adapter, the one named, or with ``--config`` the adapters a
run config declares (with their options). Exit codes: 0 every check passed, 1 some check failed,
2 a name that names no adapter (the message lists the known ones) or a bad config. Checking
every adapter, a CLI not installed ("not installed") and a preset that needs options ("needs
options") are listed, not failed; one named or declared by a run config must work. Tables keep
adapter names whole; ``--wide`` shows every column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import anyio
import typer

from orchestrator.adapter import Adapter
from orchestrator.cli import console, event_loop
from orchestrator.cli.setup.adapters_live import live_check, live_targets
from orchestrator.config import adapter_entry
from orchestrator.config.load import load_config
from orchestrator.errors import AdapterError, UsageError
from orchestrator.plugins import host as plugins
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.setup.cli_detect import login_of
from orchestrator.runner.version import VersionAnswer, version_answer

__all__ = ["Report", "app", "survey"]

app = typer.Typer(
    name="adapters",
    help="List the CLI adapters and check that their CLIs work.",
    no_args_is_help=True,
    add_completion=False,
)

_PARALLEL = 4  # version commands start whole runtimes (node, python): a few at a time


@dataclass
class Report:
    name: str
    type: str
    plugin: str
    binary: str | None
    found: bool
    path: str | None
    version: str | None
    capabilities: list[str]
    ok: bool
    message: str
    login: str  # where the CLI would find its login: paths and variable names, never values


async def survey(
    registry: AdapterRegistry,
    adapters: Sequence[tuple[str, Adapter | AdapterError, str]],
    configured: Mapping[str, adapter_entry.AdapterConfig] | None = None,
) -> list[Report]:
    """A report per (name, adapter or why it could not be made, type), versions in parallel;
    ``configured`` holds the run config's entries by name (their ``credentials``, ``env`` and
    ``pass_env`` say which login the run would use)."""
    entries = configured or {}
    reports: list[Report | None] = [None] * len(adapters)
    limiter = anyio.CapacityLimiter(_PARALLEL)

    async def one(index: int, name: str, adapter: Adapter | AdapterError, kind: str) -> None:
        async with limiter:
            reports[index] = await _report(registry, name, adapter, kind, entries.get(name))

    async with anyio.create_task_group() as tasks:
        for index, (name, adapter, kind) in enumerate(adapters):
            tasks.start_soon(one, index, name, adapter, kind)
    return [report for report in reports if report is not None]


async def _report(
    registry: AdapterRegistry,
    name: str,
    adapter: Adapter | AdapterError,
    kind: str,
    settings: adapter_entry.AdapterConfig | None = None,
) -> Report:
    plugin = registry.plugin_of(kind).name if kind in registry else "-"
    if isinstance(adapter, AdapterError):
        return Report(name, kind, plugin, None, False, None, None, [], False, str(adapter), "-")
    check = adapter.check()
    answer = await version_answer(adapter) if check.found else VersionAnswer(None)
    version = answer.version
    ok = check.found and version is not None
    if not check.found:
        message = check.message
    elif version is None:
        message = (
            f"found at {check.path}, but {answer.failure(' '.join(adapter.version_command()))}"
        )
    else:
        message = f"ok: {version}"
    return Report(
        name=name,
        type=kind,
        plugin=plugin,
        binary=adapter.binary,
        found=check.found,
        path=check.path,
        version=version,
        capabilities=_capabilities(adapter),
        ok=ok,
        message=message,
        # The same words as `init` and `doctor`: only the logins the run would really use.
        login=login_of(adapter, settings).where,
    )


def _capabilities(adapter: Adapter) -> list[str]:
    flags = {
        "json": adapter.streams_json,
        "resume": adapter.can_resume,
        "model": adapter.can_choose_model,
        "edits": adapter.edits_files,
    }
    return [flag for flag, present in flags.items() if present]


def _registered(
    registry: AdapterRegistry, only: str | None
) -> list[tuple[str, Adapter | AdapterError, str]]:
    try:
        names = [registry.get(only).name] if only else registry.names()
    except AdapterError as exc:  # a name that names nothing: the command line's fault
        raise UsageError(str(exc)) from None
    return [(name, _create(registry, name, None), name) for name in names]


def _configured(
    registry: AdapterRegistry, config_file: Path, only: str | None
) -> list[tuple[str, Adapter | AdapterError, str]]:
    configured = load_config(config_file).adapters
    if only is not None and only not in configured:
        raise UsageError(
            f"{config_file} declares no adapter {only!r} (it declares: "
            f"{', '.join(configured) or 'none'})"
        )
    chosen = {only: configured[only]} if only else configured
    return [
        (name, _create(registry, name, settings), settings.type or name)
        for name, settings in chosen.items()
    ]


def _entries(config_file: Path) -> dict[str, adapter_entry.AdapterConfig]:
    return dict(load_config(config_file).adapters)


def _create(
    registry: AdapterRegistry, name: str, settings: adapter_entry.AdapterConfig | None
) -> Adapter | AdapterError:
    try:
        return registry.create(name, settings)
    except AdapterError as exc:
        if settings is None:  # a type surveyed without a run config, e.g. `command`
            return AdapterError("needs options (a preset): check it with --config <run config>")
        return exc


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON array.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every column whole.")]
_LIST = (
    console.Column("adapter", key=True),
    console.Column("plugin", drop=1),
    console.Column("binary", wraps=True),
    console.Column("found"),
    console.Column("version", wraps=True),
    console.Column("capabilities", wraps=True, drop=2),
)
_CHECK = (
    console.Column("adapter", key=True),
    console.Column("verdict"),
    console.Column("detail", wraps=True),
    console.Column("login", wraps=True, drop=1),
)
_LIVE = (
    console.Column("cli", key=True),
    console.Column("version", wraps=True),
    console.Column("verdict"),
    console.Column("seconds", drop=1),
    console.Column("detail", wraps=True),
)


@app.command("list")
def list_adapters(as_json: JsonOption = False, wide: WideOption = False) -> None:
    """Every adapter the installed plugins provide, with its binary, version and plugin."""
    registry = plugins.default_plugins().registry
    reports = event_loop.run(survey, registry, _registered(registry, None))
    if as_json:
        console.print_lines(json.dumps([asdict(report) for report in reports], indent=2))
        return
    console.print_table(
        _LIST,
        (
            [
                report.name,
                report.plugin,
                report.binary or "(from options)",
                "yes" if report.found else "no",
                report.version or "-",
                ", ".join(report.capabilities) or "-",
            ]
            for report in reports
        ),
        wide=wide,
    )


@app.command("check")
def check_adapters(
    name: Annotated[str | None, typer.Argument(help="Check only this adapter.")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Check the adapters this run config declares."),
    ] = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Run a real write task through each installed CLI against a local fake "
            "model (offline, seconds per CLI): does this CLI release work with CLI Council?",
        ),
    ] = False,
) -> None:
    """Is each adapter's CLI installed, does its version command run, and where would it find
    its login (paths and variable names, never their contents)?"""
    if live:
        _check_live(name, as_json, wide)
        return
    registry = plugins.default_plugins().registry
    chosen = _configured(registry, config, name) if config else _registered(registry, name)
    entries = _entries(config) if config else None
    reports = event_loop.run(survey, registry, chosen, entries)
    # Surveying everything, a CLI this machine lacks and a preset without options are listed,
    # not failures; one named, or declared by a run config, has to work.
    verdicts = [_verdict(report, surveyed=config is None and name is None) for report in reports]
    if as_json:
        rows = [{**asdict(r), "verdict": v} for r, v in zip(reports, verdicts, strict=True)]
        console.print_lines(json.dumps(rows, indent=2))
    else:
        console.print_table(
            _CHECK,
            ([r.name, v, r.message, r.login] for r, v in zip(reports, verdicts, strict=True)),
            wide=wide,
        )
    if "FAIL" in verdicts:
        raise typer.Exit(1)


def _verdict(report: Report, *, surveyed: bool) -> str:
    """``ok``, ``FAIL``, or (surveying every adapter) ``not installed`` / ``needs options``."""
    if report.ok:
        return "ok"
    if surveyed and not report.found:
        return "needs options" if report.binary is None else "not installed"
    return "FAIL"


def _check_live(name: str | None, as_json: bool, wide: bool) -> None:
    reports = event_loop.run(live_check, live_targets(name), console.print_progress)
    if as_json:
        console.print_lines(json.dumps([asdict(report) for report in reports], indent=2))
    else:
        console.print_table(
            _LIVE,
            (
                [
                    r.cli,
                    r.version or "-",
                    {True: "works", False: "FAILS", None: "not installed"}[r.works],
                    "-" if r.seconds is None else f"{r.seconds:.1f}",
                    r.detail,
                ]
                for r in reports
            ),
            title="this machine's CLIs against the fake model (offline)",
            wide=wide,
        )
    failed = any(r.works is False for r in reports)
    if failed or (name is not None and not all(r.installed for r in reports)):
        raise typer.Exit(1)
