"""The environment every git process of the orchestrator gets: what git needs, nothing else.

A git command can run code the repository names (a filter, a merge driver, an ssh command),
and what that code runs with is the command's environment. The orchestrator's own
environment holds its API keys and tokens, and ``GIT_*`` variables that steer git itself
(``GIT_DIR``, ``GIT_INDEX_FILE``, ``GIT_CONFIG_PARAMETERS``: a hook of another git, or a
parent shell, may have set them). So git gets exactly:

- the allow-list every child gets (``orchestrator.process.env.ALLOWED_NAMES``: ``PATH``,
  locale, ``TERM``, ``TZ``, CA bundles, proxies, ``USER``/``SHELL``);
- what git itself reads from the user's setup: ``HOME`` and ``XDG_CONFIG_HOME`` (their global
  config: identity, credential helper, ``git lfs``), ``SSH_AUTH_SOCK`` (their ssh agent, for a
  team's remote), and the few ``GIT_*`` names that only say where the user's own config or
  transport is (``GIT_CONFIG_GLOBAL``, ``GIT_CONFIG_SYSTEM``, ``GIT_CONFIG_NOSYSTEM``,
  ``GIT_SSH``, ``GIT_SSH_COMMAND``, ``GIT_SSL_CAINFO``, ``GIT_SSL_CAPATH``);
- minus every sensitive-named variable (``safety.redaction.is_sensitive``), whatever list
  brought it;
- then the fixed settings of ``orchestrator.git.repo`` and what the caller passes (the
  orchestrator's commit identity).

No value is cached: a test or a caller may change ``os.environ`` between two commands. Only
the verdict on a name is remembered (``_passes``: it depends on the name alone), since every
git process asks it of every name, and the substring tests of ``is_sensitive`` were most of
what building the environment cost.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from orchestrator.process.env import ALLOWED_NAMES, ALLOWED_PREFIXES
from orchestrator.safety.redaction import is_sensitive

__all__ = ["GIT_NAMES", "git_environ"]

GIT_NAMES = frozenset(
    {
        "HOME", "XDG_CONFIG_HOME", "SSH_AUTH_SOCK",
        "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
        "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
    }
)  # fmt: skip


def git_environ(parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of ``parent`` (this process's environment) a git process may see."""
    parent = os.environ if parent is None else parent
    # The names first, each value read only for a name that passes: ``os.environ`` decodes
    # what it hands out, and most of its values never go to git.
    return {name: parent[name] for name in list(parent) if _passes(name)}


@functools.lru_cache(maxsize=1024)
def _passes(name: str) -> bool:
    """Whether a variable of this name goes to git (the module doc's rules)."""
    allowed = name in ALLOWED_NAMES or name in GIT_NAMES or name.startswith(ALLOWED_PREFIXES)
    return allowed and not is_sensitive(name)
