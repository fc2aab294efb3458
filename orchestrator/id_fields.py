"""``SafeId``: a pydantic field that must be a safe id (``ids``), the field named when it is not.

Apart from ``ids`` because it needs pydantic, and ``ids`` is read where pydantic is not loaded
(the records' layout under ``council status``'s quick look: ``tests/cli/test_cli_startup.py``).

``SafeId`` is checked inside pydantic's own core, by a pattern and a length that are the same
rule as ``ids.is_safe_id`` (a record holds several ids, and reading a run's 10,000 task records
back, as a stop's checkpoint does, called a Python validator 40,000 times): the pattern has no
look-ahead (the core's engine has none), so the rule's two refusals are spelled out in it. Every
``.`` is followed by a segment of one or more other characters (so no ``..`` and no ``.`` at the
end), and the last segment after a dot is anything but ``lock``.
``tests/models/test_safe_id_field.py`` proves the two agree on every id over a small alphabet
and on many generated ones. A refused id reads ``safe_id`` with the rule; pydantic adds the
field and the value. ``CheckedId`` is the same rule through ``ids.check_id``, for the run
config, whose errors quote the id itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from orchestrator.errors import InvalidIdError
from orchestrator.ids import check_id

__all__ = ["SAFE_ID_CORE_PATTERN", "CheckedId", "SafeId"]

_CHAR = "[a-z0-9_-]"
_NOT_LOCK = (  # one or more _CHARs, anything but exactly "lock"
    f"(?:[a-km-z0-9_-]{_CHAR}*|l|l[a-np-z0-9_-]{_CHAR}*|lo|lo[abd-z0-9_-]{_CHAR}*"
    f"|loc|loc[a-jl-z0-9_-]{_CHAR}*|lock{_CHAR}+)"
)
SAFE_ID_CORE_PATTERN = rf"^[a-z0-9]{_CHAR}*(?:(?:\.{_CHAR}+)*\.{_NOT_LOCK})?$"
"""``ids.is_safe_id`` without look-ahead, with ``max_length=64`` beside it."""

_RULE = (
    "not a safe id: use 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or "
    "digit, with no '..' and not ending in '.' or '.lock' (git's rules for a ref name)"
)


class _SafeIdRule:
    """The ``SafeId`` check as a core schema: a pattern and a length, the error named."""

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.custom_error_schema(
            core_schema.str_schema(pattern=SAFE_ID_CORE_PATTERN, max_length=64),
            custom_error_type="safe_id",
            custom_error_message=_RULE,
        )


SafeId = Annotated[str, _SafeIdRule()]
"""A ``str`` field that must be a safe id (pydantic reports the field when it is not)."""


def _pydantic_check(value: str) -> str:
    try:
        return check_id(value)
    except InvalidIdError as exc:
        raise ValueError(str(exc)) from None


CheckedId = Annotated[str, AfterValidator(_pydantic_check)]
"""``SafeId`` through ``ids.check_id``: the refused id quoted in the error (the run config's)."""
