"""What a full disk's error names when the failed step does not say which file it could not
write (git's "unable to write loose object file" names none)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config.task import TaskConfig
from orchestrator.errors import GitError, OutOfSpace
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.failures import stopped_for_space

GIT_DIR = Path("/repo/.git")


def attempt() -> Attempt:
    return Attempt(TaskConfig(id="big", prompt="p"), "alice", "build", 1, frozenset())


def test_a_git_step_that_names_no_file_says_where_git_writes() -> None:
    exc = GitError(
        ["add", "-A"], 128, "fatal: unable to write loose object file: No space left on device"
    )
    error = stopped_for_space(attempt(), exc, GIT_DIR)
    assert isinstance(error, OutOfSpace)
    assert "unable to write loose object file" in str(error)
    assert "(git writes to /repo/.git/)" in str(error)
    assert "task big had not started" in str(error) and "council resume" in str(error)


def test_a_git_step_that_names_its_file_is_not_told_twice() -> None:
    stderr = "error: unable to create temporary file /repo/.git/objects/ab/tmp: No space left"
    error = stopped_for_space(attempt(), GitError(["add", "-A"], 128, stderr), GIT_DIR)
    assert "git writes to" not in str(error)
    assert str(error).count("/repo/.git/") == 1


def test_another_step_keeps_its_own_words() -> None:
    exc = OSError(28, "No space left on device", "/repo/.council/logs/x.log")
    error = stopped_for_space(attempt(), exc, GIT_DIR)
    assert "/repo/.council/logs/x.log" in str(error) and "git writes to" not in str(error)
