"""Where a CLI keeps a login: what an adapter declares so the runner can show the CLI the
user's own (``orchestrator.runner.logins`` does the linking)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapter.user_files import user_path

__all__ = ["AWS_PROFILES", "GCLOUD_ADC", "Credential"]


@dataclass(frozen=True)
class Credential:
    """One place a CLI keeps a login.

    ``home_path`` is where the CLI reads it, relative to its HOME (the private one points the
    CLI's own variables, ``CODEX_HOME``, ``XDG_DATA_HOME``, at their default places), and where
    the user's own is relative to theirs. ``moved_by`` names a variable that moves the user's
    directory of it (``CLAUDE_CONFIG_DIR``, ``CODEX_HOME``): when the user sets it, the file is
    ``$VAR/<moved_path>`` (by default ``home_path`` without its first directory).

    ``keys`` is for a file of variables (``.env``): it is a login of this CLI only where it
    sets one of them, so a ``~/.env`` holding only another tool's key is not reported as one
    (it is linked all the same: the CLI reads it whole).
    """

    home_path: str
    what: str  # said in `council adapters check`: "account login", "AWS profiles (Bedrock)"
    moved_by: str | None = None
    moved_path: str | None = None
    keys: tuple[str, ...] = ()

    def source(self, env: Mapping[str, str]) -> Path:
        """The user's file (or directory), which may not exist."""
        return user_path(self.home_path, self.moved_by, self.moved_path, env)

    @property
    def target(self) -> str:
        return self.home_path


# Cloud logins several CLIs use (Claude Code and aider on Bedrock or Vertex, gemini on Vertex).
AWS_PROFILES = Credential(".aws", "AWS profiles and SSO cache (Bedrock)")
GCLOUD_ADC = Credential(
    ".config/gcloud/application_default_credentials.json",
    "gcloud application-default login (Vertex AI)",
    moved_by="CLOUDSDK_CONFIG",
    moved_path="application_default_credentials.json",
)
