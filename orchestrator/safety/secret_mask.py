"""The secrets this process knows, and masking them in everything the orchestrator stores.

Secrets are:

- the values of sensitive-named variables (``process_env.is_sensitive``) of this process's own
  environment: children no longer inherit it (``process.env``), but a child can still read it
  (``/proc/<pid>/environ`` of its parent is readable by the same user) and print it;
- every secret handed to a child, told here by ``remember`` (a CLI's passthrough keys, its
  adapter's overlay and the run config's ``env``, its ``CommandSpec.secrets``; the values a
  setup or verify command was passed through), or by ``remember_named`` with the name it was
  given under (``OPENAI_API_KEY``, ``adapters.codex.env.MY_TOKEN``): ``names`` tells, for each
  known secret, that name, so a report can say *which* secret it found, never its value. A
  sensitive-named variable of this process is known by its own name.

Masking happens where text is stored, one choke point per sink, never at each caller: state
records (``state.records``), checkpoints (``state.checkpoints``), the event log and what its
subscribers are handed (``state.event_log``), session context files (``context``), setup logs
(``worktrees.setup``), handoffs (masked as they are made, by the ``Handoff`` model itself, so
their digests describe what is stored), and CLI logs (the run's ``Redactor`` includes these).

Stores mask each secret as is and in its common encodings (``secret_forms``: URL, hex,
base64), since a handoff's diff shows what a CLI wrote and it may have encoded its key.

Stores mask only values that can be told from ordinary text (``storable``): at least 8
characters, not an absolute path (a variable naming *where* a key is kept is not the key), and
letters mixed with digits or other characters. ``ollama``, ``false`` or ``development`` in a
``*_KEY`` variable are settings, not secrets, and masking them would rewrite task ids, adapter
names and paths inside the records. Real keys and passwords have the mix.

A record's strings are masked (``Redactor.deep``), never its JSON text: a mask can neither
break the JSON nor turn a number into a string. The usual record holds no secret, which one
scan of its JSON tells (``masked_json``); only a hit costs a second serialization.

``unwrapped(text)`` masks, beyond what ``mask()`` does, a known secret with whitespace put
anywhere inside it (a token a terminal wrapped over two lines, base64 wrapped at any width:
``secret_stream.mask``), in every form of ``secret_forms``. It costs a pass over the text
with its whitespace taken out and one search per form. ``hidden(text)`` is both masks;
``deep(value)`` ``hidden`` on every string of a record. The stores' choke points
(``masked_json``, ``masked_model``) look for the wrapped forms too, in a record's JSON with its
whitespace and escaped line breaks taken out, and mask its strings with ``hidden`` on a hit; a
CLI's log, line by line, is masked over line breaks by ``secret_lines``.

``mask()`` is cheap enough to call for every record: the environment is read again only when
its size or one of the kept values changed (a full scan decodes every variable).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.errors import StateError
from orchestrator.safety.redaction import Redactor, is_sensitive
from orchestrator.safety.secret_forms import forms
from orchestrator.safety.secret_stream import first, mask_text, squeeze

__all__ = [
    "deep",
    "hidden",
    "known",
    "mask",
    "masked_json",
    "masked_model",
    "masked_with_json",
    "names",
    "needles",
    "plain",
    "remember",
    "remember_named",
    "storable",
    "unwrapped",
]

M = TypeVar("M", bound=BaseModel)

_MIN_LENGTH = 8
UNNAMED = "a secret handed to a child process"


def storable(value: str) -> bool:
    """Whether ``value`` is masked in stores (the module doc says why some are not)."""
    if len(value) < _MIN_LENGTH or os.path.isabs(value):
        return False
    letters = sum(1 for c in value if c.isalpha())
    return 0 < letters < len(value)


@dataclass(frozen=True)
class _Known:
    size: int  # len(os.environ) when it was read
    names: tuple[str, ...]  # its sensitive-named variables
    values: tuple[str | None, ...]  # and their values then
    remembered: frozenset[str]
    secrets: frozenset[str]  # every piece masked: the environment's and the remembered
    redactor: Redactor
    named: dict[str, str]  # piece -> the name it is known by
    labels: int  # len(_names) when it was read
    needles: tuple[bytes, ...]  # every form of every piece, longest first (``unwrapped``)


_guard = threading.Lock()
_remembered: set[str] = set()
_names: dict[str, str] = {}  # remembered piece -> the name it was first given under
_known = _Known(-1, (), (), frozenset(), frozenset(), Redactor(()), {}, 0, ())


def remember(values: Iterable[str]) -> None:
    """Secrets handed to a child: masked in everything stored from now on."""
    fresh = {piece for value in values for piece in _pieces(value)} - _remembered
    if fresh:
        with _guard:
            _remembered.update(fresh)


def remember_named(named: Mapping[str, str]) -> None:
    """``remember`` the values of ``named`` (name -> value), each known by its name (the first
    name a value was given under stays its name)."""
    fresh = {
        piece: name
        for name, value in named.items()
        for piece in _pieces(value)
        if piece not in _names
    }
    if fresh:
        with _guard:
            for piece, name in fresh.items():
                _names.setdefault(piece, name)
            _remembered.update(fresh)


def names() -> dict[str, str]:
    """Every secret known now (as ``known``) -> the name it is known by: the variable or the
    config key it was given under, ``UNNAMED`` when it was remembered without one."""
    return dict(_current().named)


def mask() -> Redactor:
    """The redactor of every secret known now (see the module doc)."""
    return _current().redactor


def unwrapped(text: str) -> str:
    """``text`` with every known secret masked in every form, whitespace inserted in it or
    not (module doc); ``text`` itself when it holds none."""
    needles = _current().needles
    return mask_text(text, needles) if needles else text


def needles() -> tuple[bytes, ...]:
    """Every form of every known secret, longest first (``secret_forms``): what ``unwrapped``
    looks for, whitespace inserted in it or not (``secret_lines`` holds a log's lines on it)."""
    return _current().needles


def hidden(text: str) -> str:
    """``text`` masked by ``mask()`` and ``unwrapped``: every known secret in every form, as
    written, JSON-escaped, or with whitespace (line breaks) inside it."""
    current = _current()
    text = current.redactor(text) if current.redactor else text
    return mask_text(text, current.needles) if current.needles else text


def deep(value: Any) -> Any:
    """``value`` with every string in it (nested in dicts, lists and tuples) ``hidden``; the
    very same object when nothing in it needed hiding."""
    if isinstance(value, str):
        return hidden(value)
    if isinstance(value, dict):
        items = {key: deep(item) for key, item in value.items()}
        changed = any(items[key] is not item for key, item in value.items())
        return items if changed else value
    if isinstance(value, list | tuple):
        parts = [deep(item) for item in value]
        changed = any(new is not old for new, old in zip(parts, value, strict=True))
        return type(value)(parts) if changed else value
    return value


def known() -> frozenset[str]:
    """Every secret known now (each line of a multi-line one on its own)."""
    return _current().secrets


def _current() -> _Known:
    known = _known
    if (
        len(os.environ) != known.size
        or tuple(os.environ.get(name) for name in known.names) != known.values
        or len(_remembered) != len(known.remembered)
        or len(_names) != known.labels
    ):
        known = _refresh()
    return known


def masked_json(model: BaseModel) -> bytes:
    """``model``'s JSON (as ``model_dump_json``) with every known secret masked."""
    return _masked(model, _current())[1]


def masked_with_json(model: M) -> tuple[M, bytes]:
    """``masked_model`` and its JSON (``masked_json``), the model looked through once. The
    answer is kept for a ``masked_model`` of the very same object (``_Seen``), a frozen one
    only (a model changed since would get a stale answer): an event is written to the log in
    a worker thread, then handed to subscribers on the event loop."""
    current = _current()
    masked, data = _masked(model, current)
    if model.model_config.get("frozen"):  # an event; never a mutable record, or a checkpoint
        _seen.keep(model, masked, current)  # of megabytes held for nothing
    return masked, data


def _masked(model: M, current: _Known) -> tuple[M, bytes]:
    text = model.model_dump_json()
    if not _holds(text, current):
        return model, text.encode()
    rebuilt = _rebuilt(model)
    return rebuilt, rebuilt.model_dump_json().encode()


def masked_model(model: M) -> M:
    """``model`` with every known secret masked; the same object when it held none. A model
    ``masked_with_json`` has just looked through, the known secrets the same since, is not
    looked through again (its answer is handed back, once)."""
    current = _current()
    seen = _seen.get(model, current)
    if seen is not None:
        return seen
    if not _holds(model.model_dump_json(), current):
        return model
    return _rebuilt(model)


class _Seen:
    """The last models looked through and their masked forms, by identity (each kept with the
    model itself, so an id is never another object's), while the known secrets stay the same
    (``_Known``, replaced whenever they change). Each answer is given once; bounded: emptied
    at ``LIMIT`` entries (a model not found is looked through again)."""

    LIMIT = 256

    def __init__(self) -> None:
        self._kept: dict[int, tuple[BaseModel, BaseModel, _Known]] = {}

    def keep(self, model: BaseModel, masked: BaseModel, current: _Known) -> None:
        if len(self._kept) >= self.LIMIT:
            self._kept = {}
        self._kept[id(model)] = (model, masked, current)

    def get(self, model: M, current: _Known) -> M | None:
        kept = self._kept.pop(id(model), None)  # once: a write is told to subscribers once
        if kept is None or kept[0] is not model or kept[2] is not current:
            return None
        masked: M = kept[1]  # type: ignore[assignment]  # masked from ``model``: its type
        return masked


_seen = _Seen()


def _holds(text: str, current: _Known) -> bool:
    """Whether a record's JSON ``text`` may hold a known secret: as written or escaped
    (``mask()``), or with whitespace inside it (its JSON escapes for a line break or a tab
    taken out too: a string's line break is ``\\n`` in JSON)."""
    if current.redactor and current.redactor.finds(text):
        return True
    if not current.needles:
        return False
    data = text.encode("utf-8", "surrogateescape")
    for escape in (b"\\n", b"\\r", b"\\t"):
        data = data.replace(escape, b"")
    return first(data, current.needles) is not None


def _rebuilt(model: M) -> M:
    data = deep(model.model_dump(mode="json"))
    try:
        return type(model).model_validate(data)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise StateError(
            f"a {type(model).__name__} would hold a secret's value in {where}, which must keep "
            "its exact value, so it was not stored; that value is in a sensitive-named "
            "environment variable or a key the run config gives a CLI"
        ) from None


def plain(value: Any) -> Any:
    """``value`` with every pydantic model in it as its JSON-mode data, tuples as lists."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _refresh() -> _Known:
    global _known
    with _guard:
        names = tuple(name for name in os.environ if is_sensitive(name))
        values = tuple(os.environ.get(name) for name in names)
        remembered = frozenset(_remembered)
        named = {
            piece: name
            for name, value in zip(names, values, strict=True)
            if value
            for piece in _pieces(value)
        }
        for piece in remembered:
            named[piece] = _names.get(piece) or named.get(piece) or UNNAMED
        pieces = frozenset(named)
        redactor = Redactor(pieces | _encoded(pieces))
        needles = {form.needle for piece in pieces for form in forms(piece)}
        ordered = tuple(sorted((n for n in needles if squeeze(n)), key=len, reverse=True))
        _known = _Known(
            len(os.environ),
            names,
            values,
            remembered,
            pieces,
            redactor,
            named,
            len(_names),
            ordered,
        )
        return _known


def _encoded(pieces: frozenset[str]) -> set[str]:
    """Each piece base64-, hex- and URL-encoded (``secret_forms``): a diff in a handoff shows
    what a CLI wrote, and it may have encoded its key."""
    return {
        form.needle.decode("ascii")
        for piece in pieces
        for form in forms(piece)
        if form.encoding != "plain"
    }


def _pieces(value: str) -> list[str]:
    # A secret spanning lines (a PEM key) is masked line by line, like ``Redactor`` does.
    return [piece for piece in value.splitlines() if storable(piece)]
