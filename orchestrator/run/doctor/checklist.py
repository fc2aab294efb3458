"""One line of ``council doctor``'s checklist: what was checked, the verdict, and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["GROUPS", "Check", "Status"]

GROUPS = ("git", "sandbox", "repository", "cli", "state")  # the order the checklist is shown in


class Status(StrEnum):
    OK = "ok"
    FAIL = "fail"  # a run would be refused, or would not land its work
    WARN = "warn"  # a run works, with less protection than it could have


@dataclass(frozen=True)
class Check:
    group: str  # one of GROUPS
    name: str  # what was checked: "git", "base branch", "claude_code login"
    status: Status
    detail: str
    fix: str | None = None  # one line, for a failure

    @classmethod
    def ok(cls, group: str, name: str, detail: str) -> Check:
        return cls(group, name, Status.OK, detail)

    @classmethod
    def warn(cls, group: str, name: str, detail: str, fix: str) -> Check:
        return cls(group, name, Status.WARN, detail, fix)

    @classmethod
    def fail(cls, group: str, name: str, detail: str, fix: str) -> Check:
        return cls(group, name, Status.FAIL, detail, fix)
