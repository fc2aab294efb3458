"""``SafeId``: a pydantic field that must be a safe id (``ids``), the field named when it is not.

Apart from ``ids`` because it needs pydantic, and ``ids`` is read where pydantic is not loaded
(the records' layout under ``council status``'s quick look: ``tests/cli/test_cli_startup.py``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from orchestrator.errors import InvalidIdError
from orchestrator.ids import check_id

__all__ = ["SafeId"]


def _pydantic_check(value: str) -> str:
    try:
        return check_id(value)
    except InvalidIdError as exc:
        raise ValueError(str(exc)) from None


SafeId = Annotated[str, AfterValidator(_pydantic_check)]
"""A ``str`` field that must be a safe id (pydantic reports the field when it is not)."""
