"""Hiding secrets in text: which values are secrets, and replacing them with ``***``.

Secrets are the values of variables whose names contain KEY, TOKEN, SECRET, PASSWORD, PASSWD
or CREDENTIAL (wherever they came from) plus ``CommandSpec.secrets``; ``Redactor`` replaces
them with ``***``, as written and as a JSON string would escape them (a quote, a backslash or
a slash in a key), in raw output lines and again in what the adapter parsed out of them
(``Redactor.deep``): a parser decodes escapes a line-level mask cannot see. Values shorter
than 4 characters are not treated as secrets: masking them would mask ordinary text everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "Redactor", "is_sensitive"]

MASK = "***"
_SENSITIVE = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_MIN_SECRET = 4


def is_sensitive(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in _SENSITIVE)


class Redactor:
    """Replaces every secret in a text with ``***``; falsy when there is nothing to hide."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        # A secret spanning lines (a PEM key) is hidden line by line, since output is.
        pieces = {part for secret in secrets for part in secret.splitlines()}
        pieces |= {escaped for piece in pieces for escaped in _json_forms(piece)}
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = tuple(
            sorted((p for p in pieces if len(p) >= _MIN_SECRET), key=len, reverse=True)
        )

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def finds(self, text: str) -> bool:
        """Whether ``text`` holds any secret (as written or JSON-escaped)."""
        return any(secret in text for secret in self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def deep(self, value: Any) -> Any:
        """``value`` with every string in it (nested in dicts and lists) redacted; the very
        same object when nothing in it needed hiding."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            items = {key: self.deep(item) for key, item in value.items()}
            changed = any(items[key] is not item for key, item in value.items())
            return items if changed else value
        if isinstance(value, list | tuple):
            parts = [self.deep(item) for item in value]
            changed = any(new is not old for new, old in zip(parts, value, strict=True))
            return type(value)(parts) if changed else value
        return value

    def cut_partial(self, text: str) -> str:
        """Drop a secret's beginning from the end of a line that was cut short."""
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(text)), 0, -1):
                if text.endswith(secret[:size]):
                    return text[:-size] + MASK
        return text


def _json_forms(secret: str) -> set[str]:
    """How JSON encoders may write ``secret`` inside a string: escaped quotes, backslashes,
    control and non-ASCII characters, and slashes as ``\\/``."""
    ascii_form = json.dumps(secret)[1:-1]
    forms = {ascii_form, json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms |= {form.replace("/", "\\/") for form in forms}
    forms.discard(secret)
    return forms
