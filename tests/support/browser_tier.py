"""The browser test tier: the page of ``council web`` in a real headless Chromium.

A test that needs it carries ``@pytest.mark.browser``. It drives Debian's ``chromium`` (never
a browser Playwright downloads) through Playwright's Python package. Where either is missing
these tests are deselected with one line saying how to run them; with
``COUNCIL_REQUIRE_BROWSER=1`` or in CI (``CI`` set) they are kept and fail instead.

``WebProcess`` is ``council web FILE --port 0`` as a real process, its URL read from what it
prints; ``artefact`` is where a test keeps its screenshots (``COUNCIL_TEST_ARTEFACTS``, else
the test's own temporary directory).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import tiers
from tests.support.cli_process_helpers import COUNCIL, ENV
from tests.support.timing import patience

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["REQUIRE_ENV", "WebProcess", "artefact", "chromium", "deselect_missing"]

REQUIRE_ENV = "COUNCIL_REQUIRE_BROWSER"
BROWSER = "/usr/bin/chromium"
HOW_TO_RUN = (
    "install Debian's chromium (apt-get install chromium) and the dev extra's playwright, and "
    "run COUNCIL_REQUIRE_BROWSER=1 .venv/bin/python -m pytest -m browser"
)
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1" or bool(os.environ.get("CI"))


def available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(BROWSER).is_file() or shutil.which("chromium") is not None


def deselect_missing(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("browser") is not None]
    if not marked or required() or available():
        return
    note = (
        f"browser tier: {len(marked)} tests deselected (no chromium or playwright); to run them: "
    )
    tiers.deselect(config, items, marked, note + HOW_TO_RUN)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    binary = BROWSER if Path(BROWSER).is_file() else shutil.which("chromium")
    assert binary is not None, f"no chromium: {HOW_TO_RUN}"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=binary, args=_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def artefact(tmp_path: Path, name: str) -> Path:
    """Where a test keeps ``name`` (a screenshot) for people to look at after the run."""
    kept = os.environ.get("COUNCIL_TEST_ARTEFACTS")
    directory = Path(kept) / "web" if kept else tmp_path / "artefacts"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


class WebProcess:
    """``council web CONFIG --port 0`` running (without CONFIG: the run found in ``cwd``);
    ``url`` its printed URL with the token."""

    def __init__(
        self,
        config: Path | None,
        *extra: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        named = [str(config)] if config is not None else []
        where = cwd or (config.parent if config is not None else Path.cwd())
        self.stderr_text = ""
        self.process = subprocess.Popen(
            [*COUNCIL, "web", *named, "--port", "0", *extra],
            cwd=where,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or ENV,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the first line says where it serves
        if "http://" not in line:
            self.stop()
            raise AssertionError(f"council web did not start: {line}{self._stderr()}")
        self.url = line[line.index("http://") :].split()[0]
        self.base = self.url.split("/?")[0]
        self.token = self.url.split("token=")[1]

    def _stderr(self) -> str:
        return self.process.stderr.read() if self.process.stderr is not None else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=patience(10))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None and not self.process.stderr.closed:
            self.stderr_text = self.process.stderr.read()  # what it said, once it ended
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> WebProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
