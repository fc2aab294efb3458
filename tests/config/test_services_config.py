"""The run config's ``services:`` section: a bad field is named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.load import RunConfig, load_config
from orchestrator.errors import ConfigError

TASKS = "tasks:\n  - id: a\n    prompt: x\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def issues(text: str) -> list[str]:
    Path("run.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config("run.yaml")
    return str(caught.value).splitlines()


def test_services_load(workdir: Path) -> None:
    config = load_config_text(
        "services:\n  db:\n    command: postgres -D data\n    port: 5432\n"
        "    url: 'postgresql://{host}:{port}/app'\n    phases: [build]\n" + TASKS
    )
    db = config.services["db"]
    assert db.command == ["postgres", "-D", "data"]
    assert db.needed_by("build") and not db.needed_by("review")
    assert db.variables("db")["COUNCIL_SERVICE_DB_URL"] == "postgresql://127.0.0.1:5432/app"


def load_config_text(text: str) -> RunConfig:
    Path("run.yaml").write_text(text, encoding="utf-8")
    return load_config("run.yaml")


def test_a_service_without_readiness_is_named_at_its_line(workdir: Path) -> None:
    found = issues("services:\n  db:\n    command: postgres\n" + TASKS)
    assert len(found) == 1 and found[0].startswith("run.yaml:2: services.db:")
    assert "needs `port` or `ready`" in found[0]


def test_a_bad_port_is_named_at_its_line(workdir: Path) -> None:
    found = issues("services:\n  web:\n    command: serve\n    port: 70000\n" + TASKS)
    assert len(found) == 1 and found[0].startswith("run.yaml:4: services.web.port:")


def test_a_service_s_unknown_phase_is_named_at_its_line(workdir: Path) -> None:
    found = issues(
        "services:\n  web:\n    command: serve\n    port: 3000\n    phases: [biuld]\n" + TASKS
    )
    assert len(found) == 1 and found[0].startswith("run.yaml:5: services.web.phases[0]:")
    assert "build" in found[0]  # the phase it most likely meant
