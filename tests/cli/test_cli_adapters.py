"""``council adapters list`` and ``council adapters check``, in-process with chosen plugins."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.adapter import Adapter, AdapterRequest, AgentEvent, CommandSpec, Stream
from orchestrator.cli import console
from orchestrator.cli.app import app
from orchestrator.plugins import host as plugins
from orchestrator.plugins.hookspecs import hookimpl


class Missing(Adapter):
    name = "missing-cli"
    executable = "no-such-cli-xyz"

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return CommandSpec(argv=[self.binary, request.prompt])

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        return []


class MissingPlugin:
    @hookimpl
    def register_adapters(self, register: Any) -> None:
        register(Missing)


@pytest.fixture(autouse=True)
def chosen_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI asks default_plugins(); give it ours (and not the other built-ins) so these
    # tests say exactly which adapters exist.
    host = plugins.load_plugins(
        builtins=("adapters.command", "adapters.scripted"),
        extra=[MissingPlugin()],
        entry_points=(),
        environ={},
    )
    monkeypatch.setattr(plugins, "default_plugins", lambda: host)
    monkeypatch.setenv("NO_COLOR", "1")
    # rich fixes the width from COLUMNS when the console is created (pytest-xdist workers
    # export COLUMNS=80 before that), so set it on the console itself.
    monkeypatch.setattr(console.stdout, "width", 200)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["adapters", *args])


def test_list_json_describes_every_adapter() -> None:
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    reports = {report["name"]: report for report in json.loads(result.stdout)}
    assert sorted(reports) == ["command", "missing-cli", "scripted"]
    scripted = reports["scripted"]
    assert scripted["plugin"] == "adapters.scripted" and scripted["found"] is True
    assert scripted["binary"] == sys.executable
    assert scripted["version"] == "scripted-cli 1.0.0 (cli-council)"
    assert scripted["capabilities"] == ["json", "resume", "model", "edits"]
    assert reports["missing-cli"]["found"] is False and reports["missing-cli"]["version"] is None
    assert reports["command"]["binary"] is None


def test_list_prints_a_table() -> None:
    result = invoke("list")
    assert result.exit_code == 0
    assert "scripted-cli 1.0.0" in result.stdout and "(from options)" in result.stdout
    assert "MissingPlugin" in result.stdout


def test_check_everything_lists_absent_clis_and_presets_without_failing() -> None:
    # Before: exit 1 on a machine where every installed CLI worked (issue 29).
    result = invoke("check", "--json")
    assert result.exit_code == 0, result.output
    verdicts = {report["name"]: report["verdict"] for report in json.loads(result.stdout)}
    assert verdicts == {
        "command": "needs options",
        "missing-cli": "not installed",
        "scripted": "ok",
    }
    table = invoke("check")
    assert table.exit_code == 0 and "not installed" in table.stdout and "FAIL" not in table.stdout


class Broken(Adapter):
    name = "broken-cli"
    executable = "false"  # on PATH; its "--version" exits 1

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return CommandSpec(argv=[self.binary, request.prompt])

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        return []


class BrokenPlugin:
    @hookimpl
    def register_adapters(self, register: Any) -> None:
        register(Broken)


def test_check_everything_exits_1_when_an_installed_cli_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = plugins.load_plugins(
        builtins=("adapters.scripted",), extra=[BrokenPlugin()], entry_points=(), environ={}
    )
    monkeypatch.setattr(plugins, "default_plugins", lambda: host)
    result = invoke("check", "--json")
    assert result.exit_code == 1
    verdicts = {report["name"]: report["verdict"] for report in json.loads(result.stdout)}
    assert verdicts == {"broken-cli": "FAIL", "scripted": "ok"}
    (broken,) = [r for r in json.loads(result.stdout) if r["name"] == "broken-cli"]
    assert broken["message"].endswith("but 'false --version' failed")


def test_check_a_named_adapter_sets_the_exit_code() -> None:
    good = invoke("check", "scripted")
    assert good.exit_code == 0 and "ok: scripted-cli" in good.stdout
    bad = invoke("check", "missing-cli")
    assert bad.exit_code == 1 and "'no-such-cli-xyz' not found on PATH" in bad.stdout
    preset = invoke("check", "command")
    assert preset.exit_code == 1 and "needs options (a preset)" in preset.stdout
    unknown = invoke("check", "nope")
    assert unknown.exit_code == 2  # a name that names nothing is a usage error
    assert "unknown adapter 'nope'; known adapters: command, missing-cli" in unknown.output


def test_check_a_run_configs_adapters(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        "adapters:\n"
        "  alice: {type: scripted, options: {persona: quick}}\n"
        "  ghost: {type: command, options: {binary: no-such-cli-xyz}}\n"
        "  typo: {type: scripted, options: {persnoa: quick}}\n"
        "default_adapter: alice\n"
        "tasks:\n"
        "  - {id: a, prompt: x}\n"
    )
    result = invoke("check", "--config", str(config), "--json")
    assert result.exit_code == 1
    reports = {report["name"]: report for report in json.loads(result.stdout)}
    assert reports["alice"]["ok"] and reports["alice"]["type"] == "scripted"
    assert reports["ghost"]["message"] == "'no-such-cli-xyz' not found on PATH"
    assert "unknown option 'persnoa'" in reports["typo"]["message"]
    assert invoke("check", "alice", "--config", str(config)).exit_code == 0
    absent = invoke("check", "bob", "--config", str(config))
    assert absent.exit_code == 2 and "declares no adapter 'bob'" in absent.output
