"""Reading the conventions the phase prompts ask the CLIs to follow.

Only what the CLI said is read (its messages and its final text), never the prompt, and the
last statement wins, so a CLI that corrects itself is taken at its final word.

- The plan's files: every ``FILES: a.py, b.py`` line (commas or spaces between paths,
  backticks and quotes ignored, ``FILES: none`` for none) and every fenced JSON block holding
  ``{"files": [...]}``. Paths are kept only when they are repository-relative and stay inside
  (no absolute paths, no ``..``, nothing in ``.git`` or ``.council``), normalized, in order,
  without duplicates.
- The review's verdict: ``VERDICT: approve`` or ``VERDICT: request-changes`` (also accepted:
  ``approved``, ``request changes``, ``changes requested``, ``reject``). ``None`` when the
  review stated none; the workflow then approves, since the work it reviews has already passed
  the orchestrator's own checks (non-empty diff, verify commands).
- Council mode: ``WINNER: <candidate id>``, only an id among the candidates counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from pathlib import PurePosixPath

from orchestrator.workflow.handoffs.document import Verdict

__all__ = ["clean_repo_path", "parse_plan_files", "parse_verdict", "parse_winner"]

_FILES_LINE = re.compile(r"\bFILES:[ \t]*(?P<list>[^\n]*)")
_FENCED = re.compile(r"```[a-zA-Z]*[ \t]*\n(?P<body>.*?)```", re.DOTALL)
_VERDICT = re.compile(
    r"\bVERDICT:[\s*_`]*(?P<word>approved?|request[-_ ]?changes|changes[-_ ]requested|"
    r"reject(?:ed)?)\b",
    re.IGNORECASE,
)
_WINNER = re.compile(r"\bWINNER:[\s*_`]*(?P<id>[a-z0-9][a-z0-9._-]*)", re.IGNORECASE)
_NONE_WORDS = frozenset({"none", "(none)", "n/a", "-", "nothing"})
_QUOTES = "`'\"[](){}<>"


def clean_repo_path(value: str) -> str | None:
    """``value`` as a normalized repository-relative path, or None when it is not one."""
    text = value.strip().strip(_QUOTES).rstrip(".,;:").strip(_QUOTES)
    if not text or "\0" in text or "\\" in text or text.lower() in _NONE_WORDS:
        return None
    path = PurePosixPath(text)
    if path.is_absolute() or re.match(r"[A-Za-z]:", text) or ".." in path.parts:
        return None
    parts = [part for part in path.parts if part != "."]
    if not parts or parts[0] in (".git", ".council"):
        return None
    return "/".join(parts)


def parse_plan_files(texts: Iterable[str]) -> list[str]:
    """The files the plan says the build will touch, from every convention found."""
    found: list[str] = []
    for text in texts:
        for match in _FILES_LINE.finditer(text):
            found += re.split(r"[,\s]+", match.group("list"))
        for block in _FENCED.finditer(text):
            found += _json_files(block.group("body"))
    cleaned = (clean_repo_path(item) for item in found)
    return list(dict.fromkeys(path for path in cleaned if path is not None))


def _json_files(body: str) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return []
    return [item for item in files if isinstance(item, str)]


def parse_verdict(texts: Iterable[str]) -> Verdict | None:
    """The last verdict stated in ``texts``, or None when there is none."""
    last: str | None = None
    for text in texts:
        for match in _VERDICT.finditer(text):
            last = match.group("word").lower()
    if last is None:
        return None
    return "approve" if last.startswith("approve") else "request-changes"


def parse_winner(texts: Iterable[str], candidates: Collection[str]) -> str | None:
    """The last ``WINNER:`` naming one of ``candidates``, or None."""
    winner: str | None = None
    for text in texts:
        for match in _WINNER.finditer(text):
            named = match.group("id").rstrip(".,;:").lower()
            if named in candidates:
                winner = named
    return winner
