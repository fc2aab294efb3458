"""Is git installed, and recent enough for the merge queue?"""

from __future__ import annotations

from orchestrator.git.version import MINIMUM, git_version
from orchestrator.run.doctor.checklist import Check

__all__ = ["git_check"]

_NEEDED = ".".join(map(str, MINIMUM))


async def git_check() -> Check:
    found = await git_version()
    if isinstance(found, str):
        return Check.fail("git", "git", found, f"install git {_NEEDED} or newer")
    if not found.recent_enough:
        return Check.fail(
            "git",
            "git",
            f"{found.text}: older than {_NEEDED} (the merge queue needs `git merge-tree "
            "--write-tree`)",
            f"upgrade git to {_NEEDED} or newer",
        )
    return Check.ok("git", "git", f"{found.text} ({_NEEDED} or newer needed)")
