"""The offline demo's sample repository: a tiny Python package, created on first use.

A run config with ``sample_repo: true`` names a ``repo`` that may not exist yet; the first run
creates it there (a git repository on the config's base branch with one commit) so the demo
needs nothing but this checkout. An existing directory is never touched: if it is not the
sample (not a git repository, or empty of commits), that is an error, not something to fix.
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git import Git

__all__ = ["SAMPLE_FILES", "ensure_sample_repo"]

SAMPLE_FILES: dict[str, str] = {
    "README.md": "# textkit\n\nSmall text helpers, grown by CLI Council's offline demo.\n",
    "textkit/__init__.py": '"""Small text helpers."""\n\nfrom textkit.words import words\n\n'
    '__all__ = ["words"]\n',
    "textkit/words.py": '"""Splitting text into words."""\n\n\n'
    "def words(text: str) -> list[str]:\n"
    '    """The whitespace-separated words of ``text``."""\n'
    "    return text.split()\n",
    "tests/__init__.py": "",
    "tests/test_words.py": "import unittest\n\nfrom textkit import words\n\n\n"
    "class WordsTest(unittest.TestCase):\n"
    "    def test_split(self) -> None:\n"
    '        self.assertEqual(words("a b  c"), ["a", "b", "c"])\n',
    ".gitignore": "__pycache__/\n",
}

_IDENTITY = {
    "GIT_AUTHOR_NAME": "CLI Council",
    "GIT_AUTHOR_EMAIL": "council@localhost",
    "GIT_COMMITTER_NAME": "CLI Council",
    "GIT_COMMITTER_EMAIL": "council@localhost",
}


async def ensure_sample_repo(path: Path, base_branch: str = "main") -> bool:
    """Create the sample repository at ``path`` unless it exists; True when it was created."""
    if await anyio.to_thread.run_sync(path.exists):
        git = Git(path, path / ".council" / "git-hooks", _IDENTITY)
        # -C alone would find an enclosing repository (the demo's repo sits inside this
        # checkout), so the directory must be a repository's top level itself.
        top = await git.run("rev-parse", "--show-toplevel", check=False)
        top_path = Path(top.out) if top.ok else None
        same = top_path is not None and await anyio.to_thread.run_sync(top_path.samefile, path)
        if not same or await git.rev_parse(base_branch) is None:
            raise WorkspaceError(
                f"{path} exists but has no branch {base_branch!r}: it is not the demo's sample "
                "repository (remove it to let the demo create one, or point repo elsewhere)"
            )
        return False
    await anyio.to_thread.run_sync(_write_files, path)
    git = Git(path, path / ".council" / "git-hooks", _IDENTITY)
    await git.run("init", "-q", "-b", base_branch)
    await git.run("add", "-A")
    await git.run("commit", "-q", "--no-gpg-sign", "-m", "textkit: the sample project")
    return True


def _write_files(root: Path) -> None:
    for relative, content in SAMPLE_FILES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
