"""The secrets in the user's login files (``orchestrator.runner.login_secrets``): every value
under a secret-sounding key, in JSON at any depth and in ``name = value`` lines, each named by
its login and key, never by its value; nothing else of the files."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.adapter import Credential
from orchestrator.runner.login_secrets import login_secrets


def test_tokens_in_json_and_in_lines_are_found_by_name(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    oauth = {"claudeAiOauth": {"accessToken": "at-123456789", "refreshToken": "rt-987654321"}}
    oauth["claudeAiOauth"]["expiresAt"] = "1800000000000"  # not a secret: left out
    (home / ".claude" / ".credentials.json").write_text(json.dumps(oauth))
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAEXAMPLE1\naws_secret_access_key = s3cr3t/Value+1\n"
        "region = eu-west-1\n"
    )
    (home / ".env").write_text("export OPENAI_API_KEY='sk-proj-abc123def'\nDEBUG=1\n")
    credentials = [
        Credential(".claude/.credentials.json", "account login"),
        Credential(".aws", "AWS profiles"),
        Credential(".env", "keys in ~/.env"),
        Credential(".codex/auth.json", "codex login"),  # the user has none
    ]

    found = login_secrets(credentials, {"HOME": str(home)})

    assert found == {
        "login 'account login' (.credentials.json: claudeAiOauth.accessToken)": "at-123456789",
        "login 'account login' (.credentials.json: claudeAiOauth.refreshToken)": "rt-987654321",
        "login 'AWS profiles' (credentials: aws_access_key_id)": "AKIAEXAMPLE1",
        "login 'AWS profiles' (credentials: aws_secret_access_key)": "s3cr3t/Value+1",
        "login 'keys in ~/.env' (.env: OPENAI_API_KEY)": "sk-proj-abc123def",
    }
