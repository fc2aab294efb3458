"""What council says in public: the one way any text reaches a forge.

Everything council posts (an issue's or a pull request's comment, a pull request's title and
body) is a ``PublicText``, and the ``Forge`` protocol takes nothing else, so mypy refuses a
plain string at every ``comment`` and ``open_pull``. A ``PublicText`` is built here alone
(``tests/forge/test_public_text.py`` walks the code for any other maker), from three kinds of parts:

- ``own``: council's own sentence, which may carry values from elsewhere (a task id, a branch,
  the first line of a reason). It is masked (the run's known secrets, ``safety.secret_mask``,
  also wrapped over lines or with whitespace inside them, ``secret_mask.unwrapped``,
  and every credential shape, ``safety.secret_shapes``), its ``@mentions`` and issue references
  (``#12``, ``org/repo#12``, ``GH-12``; but those council names itself, ``refs``) are
  broken with a zero-width space so nobody is pinged and no
  other issue's timeline is written, ``<`` is escaped, so no HTML (a hidden ``<!-- -->``
  marker, a tag) passes, and no Markdown link or image (``](``) is made;
- ``output``: what a command or a CLI printed, as evidence: only its bounded end (the last
  ``lines`` lines and at most ``chars`` characters; ``keep="head"`` for a summary, whose start
  matters), masked the same way, inside a fence one backtick longer than any run of backticks
  in it (a ```` ``` ```` in the output cannot end the block; a fenced block neither renders
  mentions nor HTML), with what was cut said above it;
- ``log_pointer(task)``: where the rest lives, on the machine that ran the task;
- ``closes(issue)``: ``Closes #N``, the one reference council makes to close an issue.

``compose`` joins parts into the body, ``title`` makes one line of at most 120 characters.
Council's hidden markers (``told``: a fact said once) are added by ``with_marker``, the only
way a ``<!--`` reaches a post.

More eyes: once masked, each ``own`` sentence and each ``output`` tail is looked at for
credentials nobody declared (``safety.secret_detect``: detect-secrets' plugins and our
shapes, the run's ``secrets.allow`` honoured); a part still holding one is not posted: a note
naming the kind and its line in that part takes its place, and a warning is logged (the
value never: neither in the note nor in the log).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, NewType

from orchestrator.safety import secret_mask, secret_shapes

if TYPE_CHECKING:
    from orchestrator.safety.secret_detect import Detector

__all__ = [
    "OUTPUT_CHARS",
    "OUTPUT_LINES",
    "PublicText",
    "closes",
    "compose",
    "fence",
    "log_pointer",
    "markers",
    "masked",
    "output",
    "own",
    "title",
    "with_marker",
]

PublicText = NewType("PublicText", str)
"""Text fit to post: made only by this module's functions."""

OUTPUT_LINES = 30  # of output, at most, in one post
OUTPUT_CHARS = 1500
_OWN_CHARS = 600  # of one sentence of council's (a reason's first line, a value in it)
_TITLE_CHARS = 120
_ZWSP = "\u200b"

# ``@name`` or ``@org/team`` at a word's start (an e-mail's ``a@b`` pings nobody).
_MENTION = re.compile(r"(?<![A-Za-z0-9_.+-])@(?=[A-Za-z0-9])")
# ``#12``, ``org/repo#12``, ``GH-12``: each writes on that issue's timeline.
_REFERENCE = re.compile(
    r"(?:(?P<owner>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?#|(?<![A-Za-z0-9])(?P<gh>GH)-)(?P<n>[0-9]+)",
    re.IGNORECASE,
)
# Only at the very end of a body: a marker in quoted output (fenced, before it) is not one.
_MARKER = re.compile(r"\n\n<!-- council:fact:([A-Za-z0-9:._#/-]{1,200}) -->\n?\Z")
_KEY = re.compile(r"[A-Za-z0-9:._#/-]{1,200}")

log = logging.getLogger(__name__)


def _withheld(text: str, part: str) -> str | None:
    """A note to post instead of ``text`` (masked already) when it still holds a credential
    nobody declared; None when it holds none."""
    hits = _detector().text(part, text)
    if not hits:
        return None
    named = "; ".join(f"line {hit.line}: {hit.kind}" for hit in hits[:5])
    log.warning("not posted: %s held what looks like a credential (%s)", part, named)
    return f"({part} withheld: it held what looks like a credential, {named})"


def masked(text: str) -> str:
    """``text`` with the run's known secrets (as written, encoded, and with whitespace put
    inside them: a token wrapped over two lines) and every credential shape masked."""
    return secret_shapes.masked(secret_mask.unwrapped(secret_mask.mask()(text)))


def _quiet(text: str, refs: frozenset[int]) -> str:
    """``text`` that pings nobody, links no issue but ``refs`` and carries no HTML."""
    # No tag and no comment can start (a zero-width space after each ``<``): shown as it is,
    # inside a code span too, where an entity such as ``&lt;`` would show as typed.
    text = text.replace("<", "<" + _ZWSP)
    text = _MENTION.sub("@" + _ZWSP, text).replace("](", "]" + _ZWSP + "(")

    def broken(match: re.Match[str]) -> str:
        own_ref = match.group("gh") is None and not match.group("owner")
        if own_ref and int(match.group("n")) in refs:
            return match.group(0)
        return match.group(0)[: -len(match.group("n"))] + _ZWSP + match.group("n")

    return _REFERENCE.sub(broken, text)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def own(text: str, *, refs: Iterable[int] = ()) -> PublicText:
    """Council's own words (values from elsewhere in them made safe: module doc); ``#N`` of
    each of ``refs`` (an issue or pull request council names itself) stays a link."""
    said = masked(text)
    said = _withheld(said, "council's words") or said
    lines = [_bounded(line, _OWN_CHARS) for line in said.splitlines()]
    return PublicText(_quiet("\n".join(lines), frozenset(refs)))


def closes(issue: int) -> PublicText:
    """``Closes #<issue>``: the pull request's merge closes the issue."""
    return PublicText(f"Closes #{int(issue)}")


def fence(text: str) -> PublicText:
    """``text`` in a fenced block nothing in it can close (module doc). Not masked: callers
    pass output through ``output``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marks = "`" * max(3, longest + 1)
    return PublicText(f"{marks}text\n{text}\n{marks}")


def output(
    text: str,
    *,
    lines: int = OUTPUT_LINES,
    chars: int = OUTPUT_CHARS,
    keep: Literal["tail", "head"] = "tail",
) -> PublicText:
    """The bounded end (``keep``) of output ``text``, masked and fenced; empty for no text.
    Masked whole before it is cut, so a secret split by the cut is never half shown."""
    whole = masked(text.replace("\r\n", "\n")).strip("\n")
    if not whole.strip():
        return PublicText("")
    rows = whole.split("\n")
    kept = rows[-lines:] if keep == "tail" else rows[:lines]
    shown = "\n".join(kept)
    if len(shown) > chars:
        shown = shown[-chars:] if keep == "tail" else shown[:chars]
        # a cut line is dropped whole: half a line could be half a secret's mask
        if keep == "tail":
            shown = shown.split("\n", 1)[1] if "\n" in shown else shown
        else:
            shown = shown.rsplit("\n", 1)[0] if "\n" in shown else shown
    left = len(rows) - shown.count("\n") - 1
    note = _withheld(shown, "the output")
    if note is not None:
        return PublicText(_quiet(note, frozenset()))
    cut = ""
    if left > 0:
        where = "first" if keep == "tail" else "last"
        cut = f"({left} {where} line{'s' if left != 1 else ''} of the output left out)\n\n"
    return PublicText(cut + fence(shown))


def log_pointer(task_id: str) -> PublicText:
    """Where the whole of a task's output lives: on the machine that ran it."""
    return own(
        f"More of the output is on the machine that ran task `{task_id}`: "
        f"`council status --json` (the task's `error`) and its CLIs' logs, "
        f"`.council/logs/{task_id}-*.log`."
    )


def compose(*parts: PublicText) -> PublicText:
    """The parts, each a paragraph (empty ones left out)."""
    return PublicText("\n\n".join(part.strip("\n") for part in parts if part.strip()) + "\n")


def title(text: str) -> PublicText:
    """One line of council's words, at most 120 characters (a pull request's title)."""
    line = " ".join(own(text).split())
    return PublicText(_bounded(line, _TITLE_CHARS))


def with_marker(text: PublicText, key: str) -> PublicText:
    """``text`` carrying council's hidden marker of fact ``key`` (``markers`` finds it)."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"fact key {key!r}: letters, digits and :._#/- only, at most 200")
    return PublicText(f"{text.rstrip()}\n\n<!-- council:fact:{key} -->\n")


def markers(body: str) -> set[str]:
    """The fact key of council's marker that ends a posted ``body`` (``with_marker``), if any:
    one written anywhere else, as in output council quoted, is none."""
    return set(_MARKER.findall(body))


@functools.cache
def _detector() -> Detector:
    """The detector (the run's ``secrets.allow``, read at each check), made at the first post:
    detect-secrets is not imported before (``safety.secret_allow``)."""
    from orchestrator.safety.secret_detect import Detector

    return Detector()
