"""The rules every write of a store must pass (``RecordRule``): one registry per store,
checked by both backends at the one place each makes a record's next version (the file
backend's ``FileCore.merge``, PostgreSQL's ``merged``), so creations, updates, claims,
transactions and restores alike are checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.errors import RecordRejected, StateError
from orchestrator.plugins.record_rule import RecordRule

__all__ = ["Validators"]


class Validators:
    """A store's rules, by name, checked in the order they were added."""

    def __init__(self, rules: Iterable[RecordRule] = ()) -> None:
        self._rules: dict[str, RecordRule] = {}
        for rule in rules:
            self.add(rule)

    def add(self, rule: RecordRule) -> None:
        """Check every later write against ``rule``; a second rule of one name is refused."""
        if rule.name in self._rules:
            raise StateError(f"a record rule named {rule.name!r} is already registered")
        self._rules[rule.name] = rule

    def remove(self, name: str) -> bool:
        """Stop checking the rule named ``name``; False when there was none."""
        return self._rules.pop(name, None) is not None

    def rules(self) -> list[RecordRule]:
        return list(self._rules.values())

    def check(self, kind: str, key: str, before: Any, after: Any) -> None:
        """``RecordRejected`` naming the first rule the write breaks, if any."""
        for rule in list(self._rules.values()):
            if not rule.applies_to(kind):
                continue
            try:
                problem = rule.check(kind, key, before, after)
            except Exception as exc:  # a broken rule refuses: it may not let a write through
                problem = f"the rule failed: {type(exc).__name__}: {exc}"
            if problem is not None:
                raise RecordRejected(rule.name, kind, key, problem)
