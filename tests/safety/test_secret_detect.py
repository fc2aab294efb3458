"""Credentials nobody declared (``safety.secret_detect``): found by kind at their line, never
shown; detect-secrets' pragma and the run's ``secrets.allow`` let them through; the config's
rules are checked with the field and line named; a post holding one is not posted."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config.load import load_config
from orchestrator.config.secrets import SECRET_KINDS, SecretAllowConfig
from orchestrator.errors import ConfigError
from orchestrator.forge.public_text import compose, output, own, title
from orchestrator.safety import secret_detect
from orchestrator.safety.secret_detect import KINDS, Detector
from tests.support.credential_values import (
    aws_key,
    github_token,
    pgpass_line,
    private_key,
    sendgrid_key,
    vault_token,
)
from tests.support.forge_helpers import Rig, rig


def numbered(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.splitlines(), start=1))


def test_the_kinds_the_config_checks_are_the_detectors() -> None:
    assert KINDS == SECRET_KINDS


def test_each_form_is_found_at_its_line_by_kind_never_shown() -> None:
    aws, github, vault, key = aws_key(), github_token(), vault_token(), private_key()
    pgpass, password = pgpass_line()
    text = (
        "import os\n"
        f"ACCESS = '{aws}'\n"
        f"TOKEN = '{github}'\n"
        f"VAULT_ADDR_TOKEN = '{vault}'\n"
        f"{pgpass}\n"
        "print('plain words, no credential')\n"
        f"{key}"
    )

    hits = Detector(allow=[]).lines("deploy/setup.py", numbered(text))

    found = {(hit.line, hit.kind) for hit in hits}
    assert {
        (2, "AWS Access Key"),
        (3, "GitHub Token"),
        (4, "Vault Token"),
        (5, "PostgreSQL Password File Line"),
        (7, "Private Key"),
    } <= found
    assert all(hit.line not in (1, 6) for hit in hits)
    shown = repr(hits) + "".join(hit.describe() for hit in hits)
    for value in (aws, github, vault, password, key.splitlines()[1]):
        assert value not in shown
    by_kind = {hit.kind: hit for hit in hits}
    assert by_kind["AWS Access Key"].fingerprint == hashlib.sha256(aws.encode()).hexdigest()
    assert by_kind["AWS Access Key"].describe().startswith("deploy/setup.py line 2: AWS Access")


def test_plain_code_and_placeholders_are_no_credential() -> None:
    text = (
        "password = os.environ['DB_PASSWORD']\n"
        'token = "${GITHUB_TOKEN}"\n'
        "def read_secret(path: str) -> str:\n"
        "db.internal:5432:prod:alice:*****\n"
        "12:30:00:00:01\n"
        "password reset is in the settings page\n"
    )
    assert Detector(allow=[]).lines("app/config.py", numbered(text)) == []


def test_a_netrc_password_alone_on_its_line_counts_in_a_netrc_file_only() -> None:
    text = "machine example.com\nlogin alice\npassword Zq8" + "w2" * 6 + "\n"
    hits = Detector(allow=[]).lines("home/.netrc", numbered(text))
    assert [(hit.line, hit.kind) for hit in hits] == [(3, "Netrc Password")]
    assert Detector(allow=[]).lines("notes.md", numbered(text)) == []


def test_the_pragma_and_allow_rules_let_a_credential_through() -> None:
    aws = aws_key()
    line = f"KEY = '{aws}'"
    assert Detector(allow=[]).lines("a.py", [(1, line + "  # pragma: allowlist secret")]) == []
    above = [(1, "# pragma: allowlist nextline secret"), (2, line)]
    assert Detector(allow=[]).lines("a.py", above) == []

    by_path = SecretAllowConfig(path="tests/fixtures/*", kind="AWS Access Key")
    assert Detector(allow=[by_path]).lines("tests/fixtures/x/keys.py", [(1, line)]) == []
    assert len(Detector(allow=[by_path]).lines("src/keys.py", [(1, line)])) == 1
    other_kind = SecretAllowConfig(path="tests/fixtures/*", kind="GitHub Token")
    assert len(Detector(allow=[other_kind]).lines("tests/fixtures/keys.py", [(1, line)])) == 1
    one_value = SecretAllowConfig(fingerprint=hashlib.sha256(aws.encode()).hexdigest())
    assert Detector(allow=[one_value]).lines("anywhere.py", [(1, line)]) == []
    assert len(Detector(allow=[one_value]).lines("b.py", [(1, f"K = '{aws_key()}'")])) == 1


def test_the_runs_allow_list_is_read_at_each_check() -> None:
    line = [(1, f"KEY = '{aws_key()}'")]
    detector = Detector()
    try:
        secret_detect.allow([SecretAllowConfig(path="vendored/*")])
        assert detector.lines("vendored/lib.py", line) == []
        secret_detect.allow([])
        assert len(detector.lines("vendored/lib.py", line)) == 1
    finally:
        secret_detect.allow([])


# -- the run config ------------------------------------------------------------------------------


def _issues(tmp_path: Path, section: str) -> str:
    path = tmp_path / "run.yaml"
    path.write_text("tasks:\n  - id: a\n    prompt: do a\n" + section)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_the_secrets_section_loads(tmp_path: Path) -> None:
    fingerprint = "ab" * 32
    path = tmp_path / "run.yaml"
    path.write_text(
        "tasks:\n  - id: a\n    prompt: do a\n"
        "secrets:\n  allow:\n"
        '    - {path: "tests/fixtures/*", kind: "AWS Access Key"}\n'
        f"    - {{fingerprint: {fingerprint}}}\n"
    )
    allow = load_config(path).secrets.allow
    assert allow[0].path == "tests/fixtures/*" and allow[0].kind == "AWS Access Key"
    assert allow[1].fingerprint == fingerprint


def test_a_bad_rule_is_refused_naming_the_field_and_line(tmp_path: Path) -> None:
    unknown = _issues(tmp_path, "secrets:\n  allow:\n    - {path: x, kind: AWS Key}\n")
    assert "run.yaml:6: secrets.allow[0]" in unknown
    assert "kind 'AWS Key' is none of the detector's kinds" in unknown
    assert "AWS Access Key" in unknown
    empty = _issues(tmp_path, "secrets:\n  allow:\n    - {}\n")
    assert "secrets.allow[0]" in empty and "needs a path, a kind or a fingerprint" in empty
    short = _issues(tmp_path, "secrets:\n  allow:\n    - {fingerprint: abc}\n")
    assert "run.yaml:6: secrets.allow[0].fingerprint" in short
    stray = _issues(tmp_path, "secrets:\n  allow:\n    - {file: x}\n")
    assert "secrets.allow[0].file" in stray


# -- posts -------------------------------------------------------------------------------------


def test_a_post_holding_a_credential_is_replaced_by_a_note(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = sendgrid_key()
    with caplog.at_level(logging.WARNING, logger="orchestrator.forge.public_text"):
        body = compose(own("Task t1 finished."), output(f"deploying\nusing {key}\ndone\n"))
        said = own(f"could not deploy with {key}")
    assert key not in body and key not in said and key not in caplog.text
    assert "the output withheld" in body and "line 2: SendGrid API Key" in body
    assert "Task t1 finished." in body  # the rest of the post stands
    assert said.startswith("(council's words withheld") and "SendGrid API Key" in said
    assert "not posted: the output held what looks like a credential" in caplog.text
    assert key not in title(f"deploy {key}")


@pytest.fixture
def r(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as made:
        yield made


async def test_a_pull_request_body_with_a_credential_is_not_posted(r: Rig) -> None:
    key, aws = sendgrid_key(), aws_key()
    r.branch("council/task-9", {"a.txt": "a\n"})
    body = compose(own("Work of task task-9."), output(f"ran deploy.sh\nkey {key}\naws {aws}\n"))

    opened = await r.forge.open_pull(
        title=title("Task 9"), body=body, head="council/task-9", base="main"
    )
    comment = await r.forge.comment(opened.pull.number, own(f"verify printed {key}"))

    posted = (await r.forge.get_pull(opened.pull.number)).body
    assert key not in posted and aws not in posted
    assert "line 2: SendGrid API Key" in posted and "Work of task task-9." in posted
    assert key not in comment.body and "SendGrid API Key" in comment.body


# In a fresh process: lines no anchor matches are looked at without importing detect-secrets
# (nor requests); the first line one matches imports it and is looked at by its plugin.
_LAZY_PROBE = """\
import sys
from orchestrator.safety.secret_detect import Detector, Run
detector = Detector(allow=())
plain = detector.runs("notes.txt", [Run(1, b"written by task 1\\nmore words here")])
before = sorted(m for m in sys.modules if m.split(".")[0] in ("detect_secrets", "requests"))
found = detector.runs("deploy.sh", [Run(7, b"AWS_KEY=" + sys.argv[1].encode())])
print(plain, before, [(hit.line, hit.kind) for hit in found], "detect_secrets" in sys.modules)
"""


def test_detect_secrets_is_imported_at_the_first_line_an_anchor_matches() -> None:
    import subprocess
    import sys

    key = "AKIA" + "ABCDEFGHIJKLMNOP"  # the AWS key id form (split: the repository's own scan)
    done = subprocess.run(
        [sys.executable, "-c", _LAZY_PROBE, key], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "[]", "[(7,", "'AWS", "Access", "Key')]", "True"]
