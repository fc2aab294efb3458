"""A service's settings (``config.services.ServiceConfig``): what it runs, when it is ready,
what the session's commands are told of it; a setting that cannot work refused, naming it.

The run config's ``services:`` section takes them by name; each phase a service names must be
one of the workflow's."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from orchestrator.config.run import RunConfig
from orchestrator.config.services import ServiceConfig


def test_a_service_s_settings() -> None:
    db = ServiceConfig.model_validate(
        {
            "command": "postgres -D data",
            "port": 5432,
            "url": "postgresql://{host}:{port}/app",
            "phases": ["build"],
        }
    )
    assert db.command == ["postgres", "-D", "data"]
    assert db.needed_by("build") and not db.needed_by("review")
    assert db.variables("db")["COUNCIL_SERVICE_DB_URL"] == "postgresql://127.0.0.1:5432/app"


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"command": "postgres"}, "needs `port` or `ready`"),
        ({"command": "serve", "port": 70000}, "port"),
        ({"command": "serve", "ready": "true", "url": "http://{host}:{port}/"}, "{port}"),
        ({"command": "serve", "port": 1, "env": {"A": "x\0y"}}, "env.A contains a NUL"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_naming_it(
    settings: dict[str, object], said: str
) -> None:
    with pytest.raises(ValidationError, match=r"(?s).*" + re.escape(said)):
        ServiceConfig.model_validate(settings)


def _run(services: dict[str, object]) -> dict[str, object]:
    return {
        "repo": "/tmp",
        "workflow": {"phases": [{"name": "build"}, {"name": "review"}]},
        "services": services,
        "tasks": [{"id": "one", "prompt": "Do one."}],
    }


def test_a_run_config_takes_services_by_name() -> None:
    web = {"command": "python -m http.server 3000", "port": 3000, "phases": ["build"]}
    config = RunConfig.model_validate(_run({"web": web}))
    assert config.services["web"].port == 3000
    assert config.services["web"].needed_by("build")
    assert not config.services["web"].needed_by("review")
    assert RunConfig.model_validate(_run({})).services == {}


def test_a_service_naming_no_phase_of_the_workflow_is_refused_naming_where() -> None:
    web = {"command": "serve", "port": 3000, "phases": ["biuld"]}
    with pytest.raises(ValidationError, match=r"services\.web\.phases\[0\]: unknown phase 'biuld'"):
        RunConfig.model_validate(_run({"web": web}))
