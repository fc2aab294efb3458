"""The user's git identity, handed to every CLI through its environment.

A CLI runs with a private HOME, so the user's ``~/.gitconfig`` is out of its sight. Some CLIs
then write an identity of their own into the repository's shared ``.git/config`` (aider sets
``user.name=Your Name``), which the tamper guard rightly treats as tampering and which would
block the merge. So every CLI gets the identity git itself would use in the repository, read
once per repository with the user's own HOME:

- ``GIT_AUTHOR_*`` / ``GIT_COMMITTER_*`` for the commits a CLI makes;
- the same as ``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n`` entries (git 2.31+), so that
  ``git config --get user.name`` answers inside the CLI and nothing feels it must write one.

Where the user has no identity at all, the CLI commits as ``CLI Council <council@localhost>``
(the orchestrator's own identity), never as a placeholder written into their config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import GitError
from orchestrator.git.repo import Git

__all__ = ["FALLBACK", "UserIdentity", "identity_env", "read_identity", "user_identity"]


@dataclass(frozen=True)
class UserIdentity:
    name: str
    email: str
    from_config: bool  # False: the fallback, the user has none configured


FALLBACK = UserIdentity("CLI Council", "council@localhost", from_config=False)


_known: dict[Path, UserIdentity] = {}


async def user_identity(repo: Path) -> UserIdentity:
    """The identity git would commit with in ``repo`` (its local, global and system config).

    Read once per repository and process: it costs a git process, and a CLI starts often.
    """
    known = _known.get(repo)
    if known is None:
        known = _known[repo] = await anyio.to_thread.run_sync(read_identity, repo)
    return known


def read_identity(repo: Path) -> UserIdentity:
    """``user_identity`` read now, in this thread."""
    try:
        result = Git(repo, None).run_sync(
            "config", "--get-regexp", r"^user\.(name|email)$", check=False
        )
    except GitError:
        return FALLBACK
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if value.strip():
            found[key] = value.strip()  # later lines are the more specific config: they win
    name, email = found.get("user.name"), found.get("user.email")
    if not name or not email:
        return UserIdentity(name or FALLBACK.name, email or FALLBACK.email, bool(name or email))
    return UserIdentity(name, email, from_config=True)


def identity_env(identity: UserIdentity) -> dict[str, str]:
    """The variables that give a CLI (and every git it runs) ``identity``."""
    return {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "user.name",
        "GIT_CONFIG_VALUE_0": identity.name,
        "GIT_CONFIG_KEY_1": "user.email",
        "GIT_CONFIG_VALUE_1": identity.email,
    }
