"""Rules about records that every backend applies the same way: which fields only the store
writes, how new ids look. The rules of claims: ``state.claim_rules``."""

from __future__ import annotations

import secrets

from orchestrator.models import utcnow

__all__ = ["STORE_OWNED", "new_id"]

STORE_OWNED = frozenset({"version", "updated_at"})  # fields only the store writes


def new_id(prefix: str) -> str:
    stamp = utcnow().strftime("%Y%m%dt%H%M%S%f")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"
