"""Repository paths: one spelling per file, and no way out of the root.

Contract:

- ``normalize_repo_path(repo, path)`` returns the path relative to ``repo`` with POSIX
  separators and no ``.``, ``..``, empty or trailing components, so ``./a//b``, ``a/b/`` and
  ``<repo>/a/b`` are all ``a/b``. It resolves like the kernel does: symlinks are followed (a
  symlink inside the repo to another file in it yields that file's path, so two names of one
  file share one lock) and ``..`` applies to what a symlink points at, not to its name. Paths
  that do not exist yet are resolved as far as they exist. Anything that ends outside the
  repository (``../x``, an absolute path elsewhere, a symlink pointing out) raises
  ``PathEscapeError``; so does the repository root itself, which is not a path *in* it.
- ``ensure_under(root, path)`` returns the resolved absolute path and raises the same error
  when it is not strictly under ``root`` (``allow_root=True`` also accepts the root itself).
- ``RepoPaths(repo)`` does the same for many paths of one repository: it resolves the root
  once, then only looks at the components of each path (one ``lstat`` each), which is what
  makes normalizing cheap enough for the lock hot path.

On POSIX a backslash is an ordinary file-name character, not a separator, and is kept.
These functions read the file system (``lstat``, ``readlink``) but never change it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.errors import PathEscapeError

__all__ = ["RepoPaths", "ensure_under", "normalize_repo_path"]

StrPath = str | os.PathLike[str]


class RepoPaths:
    """Normalizes paths of one repository whose root is resolved once, up front."""

    __slots__ = ("_given_prefix", "_prefix", "given", "root")

    def __init__(self, repo: StrPath) -> None:
        self.given = os.path.abspath(os.fspath(repo))
        self.root = os.path.realpath(self.given)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._given_prefix = self.given.rstrip(os.sep) + os.sep

    def normalize(self, path: StrPath) -> str:
        """``path`` relative to the root, POSIX-style; see the module docstring."""
        resolved = self._resolve(path)
        if resolved == self.root:
            raise PathEscapeError(
                f"{os.fspath(path)!r} names the repository root {self.root}, not a path in it"
            )
        rel = resolved[len(self._prefix) :]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")

    def absolute(self, path: StrPath, *, allow_root: bool = False) -> Path:
        """``path`` resolved to an absolute path that is under the root."""
        resolved = self._resolve(path)
        if resolved == self.root and not allow_root:
            raise PathEscapeError(f"{os.fspath(path)!r} is the root {self.root}, not under it")
        return Path(resolved)

    def _resolve(self, path: StrPath) -> str:
        text = os.fspath(path)
        if not isinstance(text, str) or not text or "\0" in text:
            raise PathEscapeError(f"{text!r} is not a usable path")
        if not os.path.isabs(text):
            resolved = _walk(self.root, text)
        elif text == self.root or text == self.given:
            resolved = self.root
        elif text.startswith(self._prefix):
            resolved = _walk(self.root, text[len(self._prefix) :])
        elif text.startswith(self._given_prefix):
            resolved = _walk(self.root, text[len(self._given_prefix) :])
        else:
            resolved = os.path.realpath(text)
        if resolved != self.root and not resolved.startswith(self._prefix):
            raise PathEscapeError(f"{text!r} resolves to {resolved}, outside {self.root}")
        return resolved


def normalize_repo_path(repo: StrPath, path: StrPath) -> str:
    """``path`` as a normalized repository-relative POSIX path (see the module docstring)."""
    return RepoPaths(repo).normalize(path)


def ensure_under(root: StrPath, path: StrPath, *, allow_root: bool = False) -> Path:
    """``path`` (relative paths count from ``root``) resolved, and checked to stay under it."""
    return RepoPaths(root).absolute(path, allow_root=allow_root)


def _walk(real_base: str, rest: str) -> str:
    """``os.path.realpath(os.path.join(real_base, rest))`` for an already resolved ``real_base``.

    Same algorithm as the standard library's (so the two always agree), minus the ``lstat``
    of every component of the base, which is most of realpath's cost for a short path.
    """
    current = real_base
    for name in rest.split(os.sep):
        if not name or name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = current + name if current.endswith(os.sep) else current + os.sep + name
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        except OSError:
            is_link = False  # missing so far (or not a directory): resolved lexically from here
        current = os.path.realpath(candidate) if is_link else candidate
    return current
