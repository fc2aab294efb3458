"""Phase prompts: rendering a template (``templates`` holds the defaults) with the handoffs before
it.

A template is plain text with placeholders in braces; only these names are replaced, so any
other brace (JSON, code) is left alone and never needs escaping:

    {task}          the task's prompt (its requirements)
    {task_id}       the task's id
    {phase}         the phase's name
    {round}         the build/review round (1, then 2 after review sent the task back, ...)
    {max_rounds}    the last round there can be (1 + workflow.max_review_rounds)
    {constraints}   the task's declared files and verify commands, as a list
    {handoff}       the handoffs this phase reads, each showing only the keys it needs
    {instructions}  the task's extra instructions for this phase (below)
    {busy_files}    the files other sessions own or are changing (``busy_files``), if any
    {radar}         the live sessions whose changes overlap this one's, where, and what they
                    changed (``orchestrator.radar.warning``), if any

``{handoff}``, ``{instructions}``, ``{busy_files}`` and ``{radar}`` are appended when a template
does not place them, so a custom template can never lose them. What a handoff brings along is
clipped (head and tail kept, the cut marked): the diff to 60 kB, the CLI's summary to 16 kB and
each message it quotes to 4 kB, so a CLI's megabyte answer cannot make the next prompt too long
to pass.

Per-task, per-phase instructions live in the task's metadata, a string or a list with one
entry per round (the last one repeats)::

    metadata:
      phase_instructions:
        build: "Keep the public API unchanged."
        review: ["Be strict about tests.", "Only check the requested changes."]

The conventions the orchestrator reads back from the CLI's answer
(``orchestrator.workflow.handoffs.review``):
the plan ends with ``FILES: a.py, b.py`` (or a fenced JSON ``{"files": [...]}``), the review
with ``VERDICT: approve`` or ``VERDICT: request-changes``, the council comparison with
``WINNER: <candidate id>``. The default templates say so; a custom one should too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.config.task import TaskConfig
from orchestrator.state.context import BusyFile
from orchestrator.workflow.handoffs.busy_files import render_busy_files
from orchestrator.workflow.handoffs.document import Handoff, HandoffKey
from orchestrator.workflow.handoffs.templates import DEFAULT_TEMPLATES, GENERIC_TEMPLATE

__all__ = [
    "INSTRUCTIONS_KEY",
    "PromptContext",
    "constraints_for",
    "instructions_for",
    "render_handoff",
    "render_prompt",
    "template_for",
]

INSTRUCTIONS_KEY = "phase_instructions"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# Bytes of UTF-8, not characters: the prompt is often one command-line argument, which Linux
# caps at 128 KiB (MAX_ARG_STRLEN); past it the next CLI cannot even start (E2BIG). A CLI's
# final answer can be a whole megabyte, so what it said is clipped too, head and tail kept.
_PROMPT_DIFF_LIMIT = 60_000
_PROMPT_SUMMARY_LIMIT = 16_000
_PROMPT_MESSAGE_LIMIT = 4_000
_PROMPT_MESSAGES = 5

_TITLES: dict[str, str] = {
    "scout": "Scout findings",
    "plan": "The plan",
    "build": "The builder's notes",
    "review": "The review",
}


def template_for(phase: str, configured: str | None) -> str:
    return configured or DEFAULT_TEMPLATES.get(phase, GENERIC_TEMPLATE)


@dataclass(frozen=True)
class PromptContext:
    task: TaskConfig
    phase: str
    round: int = 1
    max_rounds: int = 1
    verify: Sequence[Sequence[str]] = ()
    handoffs: Sequence[Handoff] = ()  # what this phase reads, in order
    extra: Mapping[str, str] | None = None  # more placeholders (council mode's candidates)
    busy: Sequence[BusyFile] = ()  # the files other sessions are on (their session context)
    radar: str = ""  # the collision radar's warning for this session (``radar.warning``)


def render_prompt(template: str, context: PromptContext) -> str:
    task = context.task
    constraints = constraints_for(task, context.verify)
    # A blank line before each section, whatever the template puts around {handoff}.
    handoff = "".join("\n" + render_handoff(h, task.prompt, constraints) for h in context.handoffs)
    values = {
        "task": task.prompt.strip(),
        "task_id": task.id,
        "phase": context.phase,
        "round": str(context.round),
        "max_rounds": str(context.max_rounds),
        "constraints": _bullets(constraints),
        "handoff": handoff,
        "instructions": instructions_for(task, context.phase, context.round),
        "busy_files": render_busy_files(context.busy),
        "radar": context.radar,
        **(context.extra or {}),
    }
    used = set(_PLACEHOLDER.findall(template))
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    for name in ("handoff", "instructions", "busy_files", "radar"):
        if name not in used and values[name]:
            text = f"{text.rstrip()}\n\n{values[name]}"
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def constraints_for(task: TaskConfig, verify: Sequence[Sequence[str]]) -> list[str]:
    """What the orchestrator holds the work to, in words a CLI reads."""
    found = []
    if task.files:
        found.append("Change only these files: " + ", ".join(task.files))
    found += [f"This command must pass: {shlex.join(argv)}" for argv in verify]
    return found


def instructions_for(task: TaskConfig, phase: str, round_: int = 1) -> str:
    """The task's extra instructions for ``phase`` in round ``round_`` (see module doc)."""
    table = task.metadata.get(INSTRUCTIONS_KEY)
    entry = table.get(phase) if isinstance(table, dict) else None
    if isinstance(entry, list):
        texts = [item for item in entry if isinstance(item, str)]
        entry = texts[min(round_, len(texts)) - 1] if texts else None
    return entry.strip() if isinstance(entry, str) else ""


def render_handoff(handoff: Handoff, task_prompt: str = "", constraints: Sequence[str] = ()) -> str:
    """The keys ``handoff.needs`` names, as a Markdown section.

    Requirements and constraints equal to the task's own (``task_prompt``, ``constraints``),
    which every template shows already, are not repeated.
    """
    title = _TITLES.get(handoff.phase, f"The {handoff.phase} phase")
    lines = [f"## {title} (handoff from {handoff.phase}, {handoff.adapter}, round {handoff.round})"]
    for key in handoff.needs:
        if key == "requirements" and handoff.requirements.strip() == task_prompt.strip():
            continue
        if key == "constraints" and list(handoff.constraints) == list(constraints):
            continue
        lines += _render_key(handoff, key)
    return "\n".join(lines) + "\n"


def _render_key(handoff: Handoff, key: HandoffKey) -> list[str]:
    if key == "requirements":
        return ["### Requirements", handoff.requirements.strip()]
    if key == "constraints":
        return ["### Constraints", _bullets(handoff.constraints)]
    if key == "summary":
        return [
            "### Summary",
            _clip(handoff.summary.strip(), _PROMPT_SUMMARY_LIMIT) or "(no summary)",
        ]
    if key == "messages":
        said = [
            _clip(m.strip(), _PROMPT_MESSAGE_LIMIT)
            for m in handoff.messages[-_PROMPT_MESSAGES:]
            if m.strip()
        ]
        return ["### What it said", *said] if said else []
    if key == "files_to_touch":
        return ["### Files to touch", _bullets(handoff.files_to_touch)]
    if key == "files_changed":
        return ["### Files changed", _bullets(handoff.files_changed)]
    if key == "diff_stat":
        stat = handoff.diff_stat
        if stat is None:
            return []
        return [
            f"### Diff stat\n{stat.files} files, +{stat.insertions} -{stat.deletions}, "
            f"{stat.commits_ahead} commits"
        ]
    if key == "commits":
        return ["### Commits", _bullets(handoff.commits)] if handoff.commits else []
    if key == "verify":
        return ["### Verify commands", _bullets(_verify_lines(handoff))]
    if key == "diff":
        return ["### Diff", _fenced(handoff)]
    return [f"### Verdict\n{handoff.verdict or 'none stated'}"]


def _verify_lines(handoff: Handoff) -> list[str]:
    return [
        f"`{shlex.join(v.argv)}`: {'passed' if v.ok else 'FAILED'} ({v.seconds:.1f} s)"
        for v in handoff.verify
    ]


def _fenced(handoff: Handoff) -> str:
    diff = handoff.diff
    data = diff.encode("utf-8", "surrogatepass")
    cut = len(data) > _PROMPT_DIFF_LIMIT or handoff.diff_truncated
    if len(data) > _PROMPT_DIFF_LIMIT:
        diff = data[:_PROMPT_DIFF_LIMIT].decode("utf-8", "ignore")
    fence = "````" if "```" in diff else "```"
    note = "\n(diff cut short; read the files in the working tree)" if cut else ""
    return f"{fence}diff\n{diff.rstrip()}\n{fence}{note}"


def _clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` bytes of UTF-8: its head and tail, with the cut marked."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    half = limit // 2
    head = data[:half].decode("utf-8", "ignore")
    tail = data[-half:].decode("utf-8", "ignore")
    return f"{head}\n[... {len(data) - 2 * half} bytes cut ...]\n{tail}"


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items) if items else "- (none)"
