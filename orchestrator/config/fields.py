"""The field types of the run config: ids, commands, repository paths, variable names, and the
``Section`` every part of it is built on. Each type refuses what it cannot safely mean (a shell
operator in a command, a path that climbs out of the repository) with a message naming why.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    WithJsonSchema,
)

from orchestrator.id_fields import CheckedId
from orchestrator.ids import ID_PATTERN

__all__ = [
    "ENV_NAME",
    "Command",
    "CommandList",
    "EnvName",
    "EnvNames",
    "Id",
    "NonBlank",
    "RepoPath",
    "Section",
    "UniqueIds",
    "branch_name",
    "no_duplicates",
    "resolve_path",
]

_SHELL_OPERATORS = frozenset({"&&", "||", "|", ";", "&", ">", ">>", "<", "<<", "2>", "2>&1"})
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class Section(BaseModel):
    """A part of the run config: unknown keys are refused, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Id = Annotated[CheckedId, WithJsonSchema({"type": "string", "pattern": ID_PATTERN})]
"""A safe id (task, phase, adapter name) that also shows its pattern in the JSON schema."""


def _split_command(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"cannot split command {value!r}: {exc}") from None
    operators = [word for word in argv if word in _SHELL_OPERATORS]
    if operators:
        raise ValueError(
            f"shell operator {operators[0]!r} in {value!r}: commands run without a shell; "
            "list each command separately"
        )
    return argv


def _check_argv(argv: list[str]) -> list[str]:
    if not argv or not argv[0]:
        raise ValueError("command is empty")
    if any("\0" in word for word in argv):
        raise ValueError("command contains a NUL character")
    return argv


_COMMAND_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1, "description": "split like a shell does (shlex)"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ],
}

Command = Annotated[
    list[str],
    BeforeValidator(_split_command),
    AfterValidator(_check_argv),
    WithJsonSchema(_COMMAND_SCHEMA, mode="validation"),
]
"""One command: a string split with ``shlex`` (never run by a shell) or an argument list."""


def _one_command_is_a_list(value: Any) -> Any:
    # `verify: pytest -q` means one command, not the characters of a string.
    return [value] if isinstance(value, str) else value


CommandList = Annotated[list[Command], BeforeValidator(_one_command_is_a_list)]


def _repo_path(value: str) -> str:
    if not value.strip():
        raise ValueError("path is empty")
    if "\0" in value:
        raise ValueError("path contains a NUL character")
    if "\\" in value:
        raise ValueError(f"{value!r}: use '/' to separate directories")
    path = PurePosixPath(value)
    if path.is_absolute() or re.match(r"[A-Za-z]:", value):
        raise ValueError(f"{value!r} is absolute; give a path relative to the repository root")
    if ".." in path.parts:
        raise ValueError(f"{value!r} climbs out with '..'; stay inside the repository")
    parts = [part for part in path.parts if part != "."]
    if not parts:
        raise ValueError(f"{value!r} names the repository root; name a file or directory")
    return "/".join(parts)


RepoPath = Annotated[str, AfterValidator(_repo_path)]
"""A repository-relative POSIX path, normalized (``./src//a.py`` becomes ``src/a.py``)."""


def no_duplicates(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ValueError(f"{value!r} is listed twice")
    return values


UniqueIds = Annotated[list[Id], AfterValidator(no_duplicates)]


def _env_name(name: str) -> str:
    if not ENV_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid environment variable name")
    return name


EnvName = Annotated[str, AfterValidator(_env_name)]
EnvNames = Annotated[list[EnvName], AfterValidator(no_duplicates)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


def branch_name(value: str) -> str:
    if (
        not value
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
        or _BAD_REF_CHARS.search(value)
        or any(part.startswith(".") or part.endswith(".lock") for part in value.split("/"))
    ):
        raise ValueError(f"{value!r} is not a valid git branch name")
    return value


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, dict) else {}
    base = Path(context.get("base_dir") or Path.cwd())
    return (base / path.expanduser()).resolve()
