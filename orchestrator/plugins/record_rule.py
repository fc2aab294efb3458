"""``RecordRule``: a check every write of a state record must pass, from a plugin
(``register_record_rules``) or a caller (``store.validators.add``).

A rule sees the record as it is (None for a new one) and as the write would make it, both
validated models, and returns None when the write is fine or a sentence saying what is wrong:
the write is then refused with that sentence and the rule's name, and nothing is written. A
rule raising instead refuses the write too (a broken rule must never let a write through).
Rules run inside the store's write, under the record's lock or in its database transaction:
they must be quick and do no I/O.

``kinds`` names the kinds of record the rule is for: ``tasks``, ``sessions``, ``counters``, or
``records/<namespace>`` for the keyed records of another layer (``records/handoffs``). A rule
with no kinds is a global constraint, checked on every write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordCheck", "RecordRule"]

RecordCheck = Callable[[str, str, Any, Any], "str | None"]
"""``check(kind, key, before, after)``: None when the write may go ahead, else why not."""


@dataclass(frozen=True)
class RecordRule:
    name: str  # says what the rule keeps true: "workflow.one-phase-running"
    check: RecordCheck
    kinds: frozenset[str] = frozenset()  # empty: every kind (a global constraint)

    def applies_to(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds
