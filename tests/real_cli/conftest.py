"""The real-CLI tier: each test drives one installed CLI (``@pytest.mark.real_cli("NAME")``)
through the real ``council run`` against ``orchestrator.testing.fake_model``.

Which tests run where their CLI is missing is decided in ``tests/support/real_clis.py`` (deselected
with one line saying how to run them; failed with ``COUNCIL_REQUIRE_REAL_CLIS=1``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import real_clis


@pytest.fixture
def real_cli_binary(request: pytest.FixtureRequest) -> Path:
    """The installed binary of the CLI the test's ``real_cli`` marker names."""
    return real_clis.binary_for(request.node)
