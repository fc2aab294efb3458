"""How long a test waits before it calls something stuck: every test-side timeout goes
through ``patience``, so a loaded machine gets more of it, in one place
(``orchestrator.testing.patience``: ``COUNCIL_TEST_PATIENCE`` when set, e.g.
``COUNCIL_TEST_PATIENCE=4 .venv/bin/python -m pytest`` beside another run of the suite, else the
machine's load per core as measured when the timeout is taken, never less than the most seen
before in that process).

A timeout here is a safety net, never what a test checks: each is sized so that only a hung
test reaches it on an idle machine. pytest's own per-test timeout (``timeout`` in
pyproject.toml, or a test's ``timeout`` mark) is scaled by the same factor as each test starts
(``tests/conftest.py``), so a load that begins after the run did is met too."""

from __future__ import annotations

from orchestrator.testing.patience import MAX_MEASURED, PATIENCE_ENV, factor, patience

__all__ = ["MAX_MEASURED", "PATIENCE_ENV", "factor", "patience"]
