"""The run's ``secrets.allow``: the credentials nobody declared that a run lets through
(``safety.secret_detect``), set as the run starts and read at each check.

Apart from the detector so that setting it costs nothing: the detector imports detect-secrets
(and with it ``requests``), a few hundred milliseconds a ``council run`` pays only when it
first looks (a landing's check, in its worker thread; a post), not at its start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from orchestrator.config.secrets import SecretAllowConfig as AllowRule

__all__ = ["AllowRule", "allow", "allowed"]

_allowed: tuple[AllowRule, ...] = ()
_allowed_lock = threading.Lock()


def allow(rules: Iterable[AllowRule]) -> None:
    """The run's ``secrets.allow`` (set as the run starts; every later check reads it)."""
    global _allowed
    with _allowed_lock:
        _allowed = tuple(rules)


def allowed() -> tuple[AllowRule, ...]:
    with _allowed_lock:
        return _allowed
