"""What scripted-cli's prompt says: its instructions, and goal mode's planning request.

``parse`` reads the prompt into its instructions, one a line (``KEYWORDS``; ``WRITE`` and
``APPEND`` may take a heredoc, ``<<EOF`` up to a line ``EOF``), and the rest of its text.
``plan`` and ``invalid_plan`` are the task lists a ``PLAN`` step answers for the goal between
``GOAL_BEGIN`` and ``GOAL_END``, between ``PLAN_BEGIN`` and ``PLAN_END``; ``ROUND`` reads which
planning round a prompt is. Standard library only, like ``scripted_cli`` (which see).
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing is not imported at run time (``_scripted_stream``)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "GOAL_BEGIN",
    "GOAL_END",
    "KEYWORDS",
    "PLAN_BEGIN",
    "PLAN_END",
    "ROUND",
    "between",
    "invalid_plan",
    "parse",
    "plan",
]

KEYWORDS = frozenset(
    {"WRITE", "APPEND", "DELETE", "READ", "SAY", "ECHO_ENV", "PRINT_ENV", "SLEEP", "SPEND",
     "WAIT_FOR", "FAIL", "RATE_LIMIT", "AUTH_ERROR", "DENY", "HANG", "IGNORE_TERM", "CRASH", "EXIT",
     "PLAN"}
)  # fmt: skip


def parse(prompt: str) -> tuple[list[tuple[str, str, str | None]], list[str]]:
    """Instructions as (keyword, argument, heredoc body or None), and the remaining text."""
    steps: list[tuple[str, str, str | None]] = []
    text: list[str] = []
    lines = prompt.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        keyword, _, argument = line.strip().partition(" ")
        if keyword not in KEYWORDS:
            text.append(line)
            continue
        body = None
        head, marker, tag = argument.rpartition(" <<")
        if marker and tag.strip() and keyword in ("WRITE", "APPEND"):
            collected: list[str] = []
            while index < len(lines) and lines[index].strip() != tag.strip():
                collected.append(lines[index])
                index += 1
            index += 1  # the terminator
            argument, body = head, "".join(f"{part}\n" for part in collected)
        steps.append((keyword, argument.strip(), body))
    return steps, text


# Goal mode's planning request (orchestrator/run/goal.py says the same lines): this script
# imports nothing of the orchestrator, so they are repeated here.
PLAN_BEGIN = "BEGIN COUNCIL TASKS"
PLAN_END = "END COUNCIL TASKS"
GOAL_BEGIN = "--- goal ---"
GOAL_END = "--- end of goal ---"
ROUND = re.compile(r"^Planning round: (\d+) of \d+$")


def between(lines: list[str], begin: str, end: str) -> list[str]:
    """The non-blank lines between the first ``begin`` line and the next ``end`` line."""
    stripped = [line.strip() for line in lines]
    if begin not in stripped:
        return []
    start = stripped.index(begin) + 1
    stop = stripped.index(end, start) if end in stripped[start:] else len(lines)
    return [line.strip() for line in lines[start:stop] if line.strip()]


def _slug(goal: list[str]) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", (goal[0] if goal else "").lower()).strip("-")
    return words[:40].strip("-") or "goal"


def plan(goal: list[str]) -> list[dict[str, Any]]:
    """Two tasks for ``goal``: a note of what it asks, then a checklist after it; each task's
    phase_instructions are the scripted lines that do its work."""
    slug, title = _slug(goal), (goal[0] if goal else "the goal")
    note, checklist = f"goal/{slug}.md", f"goal/{slug}-checklist.md"
    body = "\n".join(f"- {line}" for line in goal) or "- (no words)"
    return [
        {
            "id": slug,
            "prompt": f"Write {note}: what the goal asks ({title}).",
            "files": [note],
            "metadata": {
                "phase_instructions": {
                    "scout": f"SAY Nothing in the repository covers {title!r} yet.",
                    "plan": f"SAY FILES: {note}",
                    "build": f"WRITE {note} <<GOAL_EOF\n# {title}\n\n{body}\nGOAL_EOF",
                    "review": "SAY VERDICT: approve",
                }
            },
        },
        {
            "id": f"{slug}-checklist",
            "prompt": f"Write {checklist}: a checklist for the goal, after {note} exists.",
            "files": [checklist],
            "depends_on": [slug],
            "metadata": {
                "phase_instructions": {
                    "scout": f"SAY {note} is on the base now.",
                    "plan": f"SAY FILES: {checklist}",
                    "build": f"WRITE {checklist} <<GOAL_EOF\n- [ ] {title}\nGOAL_EOF",
                    "review": "SAY VERDICT: approve",
                }
            },
        },
    ]


def invalid_plan(goal: list[str]) -> list[dict[str, Any]]:
    """A list no run config accepts: an unsafe id and a dependency on no task."""
    title = goal[0] if goal else "the goal"
    return [{"id": "First Step", "prompt": title, "depends_on": ["no-such-task"]}]
