"""A faithful fake GitHub for tests: ``FakeGitHub`` (``server``) serves the REST endpoints a
forge client uses over a real bare repository; ``site`` holds its state and rules, ``routes``
its endpoints, ``objects`` and ``shapes`` GitHub's JSON objects in full, ``bare`` the git."""

from orchestrator.testing.fake_github.records import RecordedRequest
from orchestrator.testing.fake_github.server import FakeGitHub

__all__ = ["FakeGitHub", "RecordedRequest"]
