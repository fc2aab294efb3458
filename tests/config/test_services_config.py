"""A service's settings (``config.services.ServiceConfig``): what it runs, when it is ready,
what the session's commands are told of it; a setting that cannot work refused, naming it.

The run config does not take a ``services:`` section yet: a run does not start services
(``orchestrator.services`` has the parts, not their place in a run), so the section would
promise what a run does not do."""

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


def test_a_run_config_does_not_take_services_yet() -> None:
    assert "services" not in RunConfig.model_fields
