"""Each real CLI pointed at an endpoint of the user's own (here the fake model) with its key
kept out of the YAML (issue 11, "their own endpoints", "secrets out of YAML"): `${NAME}` in an
adapter's `env`, a key variable of the user's choosing (codex `env_key`, opencode
`api_key_env`). The model accepts only that key; the change lands; the key is stored nowhere
under `.council/`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from orchestrator.testing.live_scenarios import WRITE, ScenarioOutcome, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS, FAKE_KEY
from tests.support import real_clis

SECRET = "sk-users-own-gateway-key-5a7c9e1b3d"


def _stored_nowhere(tmp_path: Path) -> None:
    for path in (tmp_path / "repo" / ".council").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in (tmp_path / "council.yaml").read_text()


def _landed(outcome: ScenarioOutcome) -> None:
    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert not [r for r in outcome.requests if r.status == 401], "a request with another key"


@pytest.mark.parametrize(
    "cli", [pytest.param(name, marks=pytest.mark.real_cli(name)) for name in real_clis.CLIS]
)
def test_a_key_by_reference_reaches_the_users_endpoint(
    cli: str, tmp_path: Path, real_cli_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_GATEWAY_KEY", SECRET)
    target = BUILTIN_TARGETS[cli]
    referenced = {
        name: "${TEAM_GATEWAY_KEY}" if value == FAKE_KEY else value
        for name, value in target.env.items()
    }
    scenario = dataclasses.replace(WRITE, api_key=SECRET)

    outcome = run_scenario(
        cli,
        scenario,
        tmp_path,
        target=dataclasses.replace(target, env=referenced),
        executable=real_cli_binary,
    )

    _landed(outcome)
    _stored_nowhere(tmp_path)


@pytest.mark.real_cli("codex")
def test_codex_with_a_key_variable_of_the_users_choosing(
    tmp_path: Path, real_cli_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: "Missing environment variable: `TEAM_CODEX_KEY`", then retried as a failure.
    monkeypatch.setenv("TEAM_CODEX_KEY", SECRET)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    target = BUILTIN_TARGETS["codex"]
    custom = dataclasses.replace(
        target,
        env={},
        options=lambda model: {**target.options(model), "env_key": "TEAM_CODEX_KEY"},
    )

    outcome = run_scenario(
        "codex", dataclasses.replace(WRITE, api_key=SECRET), tmp_path, target=custom,
        executable=real_cli_binary,
    )  # fmt: skip

    _landed(outcome)
    _stored_nowhere(tmp_path)


@pytest.mark.real_cli("opencode")
def test_opencode_sends_the_key_its_api_key_env_names(
    tmp_path: Path, real_cli_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the requests went out with no auth header at all.
    monkeypatch.setenv("TEAM_OPENCODE_KEY", SECRET)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    target = BUILTIN_TARGETS["opencode"]
    custom = dataclasses.replace(
        target,
        env={},
        options=lambda model: {**target.options(model), "api_key_env": "TEAM_OPENCODE_KEY"},
    )

    outcome = run_scenario(
        "opencode", dataclasses.replace(WRITE, api_key=SECRET), tmp_path, target=custom,
        executable=real_cli_binary,
    )  # fmt: skip

    _landed(outcome)
    asked = [r for r in outcome.requests if r.protocol]
    assert asked and all("authorization" in r.headers for r in asked)


@pytest.mark.real_cli("codex")
def test_codex_without_its_key_variable_is_auth_required_at_once(
    tmp_path: Path, real_cli_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: codex's "Missing environment variable" was a generic failure, retried.
    monkeypatch.delenv("TEAM_CODEX_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    target = BUILTIN_TARGETS["codex"]
    custom = dataclasses.replace(
        target,
        env={},
        options=lambda model: {**target.options(model), "env_key": "TEAM_CODEX_KEY"},
    )
    scenario = dataclasses.replace(
        WRITE,
        expected_status="failed",
        expected_failure="auth_required",
        expected_files={"hello.txt": None},
        config={"retry": {"max_retries": 3, "backoff_initial": 0.05, "backoff_max": 0.1}},
    )

    outcome = run_scenario("codex", scenario, tmp_path, target=custom, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert outcome.error is not None and "TEAM_CODEX_KEY" in outcome.error
    assert outcome.requests == []  # it never reached the model
    events = (tmp_path / "repo" / ".council" / "events.jsonl").read_text().splitlines()
    started = [line for line in events if json.loads(line)["type"] == "phase.started"]
    assert len(started) == 1  # not retried, though three retries were allowed
