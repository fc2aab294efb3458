"""Shared fixtures: tests see only the plugins they ask for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator import plugins

# Held here because a test may monkeypatch plugins.default_plugins itself.
_default_plugins = plugins.default_plugins


@pytest.fixture(autouse=True)
def no_third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's installed plugins must not change what the tests see; a test that wants
    # third-party plugins passes its own entry points and environment to load_plugins.
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    _default_plugins.cache_clear()
    yield
    _default_plugins.cache_clear()
