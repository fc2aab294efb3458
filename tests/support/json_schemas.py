"""A JSON Schema checked once, then used for many documents: ``jsonschema.validate`` checks the
schema against its metaschema again at every call, which for the run config's schema (an
``if``/``then`` per adapter type) is nearly all of the call's time."""

from __future__ import annotations

from typing import Any

from jsonschema import validators
from jsonschema.protocols import Validator

__all__ = ["checked_validator"]


def checked_validator(schema: dict[str, Any]) -> Validator:
    """The validator ``jsonschema.validate`` would use for ``schema`` (the one its
    ``$schema`` names, else the latest draft), after the same check of the schema itself
    (``SchemaError`` when it is not a valid schema); its ``validate`` raises
    ``ValidationError`` for a document the schema refuses."""
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
