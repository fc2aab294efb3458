"""The run config's ``forge:`` section: where issues come from and pull requests go
(``orchestrator.forge``). Each setting has a default found at run time: the repository from the
``origin`` remote, the API beside its host, the token from ``GH_TOKEN``, ``GITHUB_TOKEN`` or
``gh auth token``; whose reviews count, people with write access (``trusted``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

from orchestrator.config.fields import Id, NonBlank, Section

__all__ = ["ForgeConfig"]

_PART = re.compile(r"^[A-Za-z0-9_.-]+$")


def _owner_name(value: str) -> str:
    owner, slash, name = value.partition("/")
    if not slash or not _PART.match(owner) or not _PART.match(name) or name in (".", ".."):
        raise ValueError(f"{value!r} is not OWNER/NAME (such as octo-org/widgets)")
    return value


_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:\[bot\])?$")
_TEAM = re.compile(r"^@[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/[A-Za-z0-9_.-]+$")
TRUSTED_WORDS = ("anyone", "collaborators")


def _trusted(value: list[str]) -> list[str]:
    for entry in value:
        if entry not in TRUSTED_WORDS and not _LOGIN.match(entry) and not _TEAM.match(entry):
            raise ValueError(
                f"{entry!r} is neither a GitHub login (letters, digits, single hyphens, at most "
                "39, such as octocat or ci-helper[bot]), a team (@org/team-slug, such as "
                "@octo-org/core) nor one of the words collaborators, anyone"
            )
    if "anyone" in value and len(value) > 1:
        raise ValueError("'anyone' trusts everybody: list it alone")
    return value


def _api_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            f"{value!r} is not an http(s) URL: https://api.github.com, or "
            "https://HOST/api/v3 for GitHub Enterprise Server"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{value!r}: the API URL carries no credentials, query or fragment")
    return value.rstrip("/")


class ForgeConfig(Section):
    """Issues in, pull requests out: the forge the run's tasks come from and land on."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    type: Id = Field(
        default="github",
        description="the forge: github (built in), or a type a plugin registers "
        "(`register_forges`)",
    )
    repo: Annotated[str, AfterValidator(_owner_name)] | None = Field(
        default=None,
        description="OWNER/NAME on the forge; default: what the origin remote's URL names",
    )
    api_url: Annotated[str, AfterValidator(_api_url)] | None = Field(
        default=None,
        description="the REST API: https://api.github.com, or https://HOST/api/v3 for GitHub "
        "Enterprise Server; default: the one beside the origin remote's host",
    )
    token: NonBlank | None = Field(
        default=None,
        description="the token, best as a reference such as ${GITHUB_TOKEN}; default: "
        "GH_TOKEN, then GITHUB_TOKEN, then `gh auth token`; masked in everything stored",
    )
    trusted: Annotated[list[str], AfterValidator(_trusted)] = Field(
        default_factory=list,
        description="whose word counts (reviews and review comments gate a merge, start a "
        "feedback round, reach a prompt; comments steer; issues and labels become tasks): GitHub "
        "logins, teams as @org/team-slug (their active members; the token needs read:org), and "
        "`collaborators` for everyone with write access to the repository, or `anyone` alone (a "
        "private repository that wants it); empty (the default): `collaborators`",
    )
    authors: Literal["trusted", "anyone"] = Field(
        default="trusted",
        description="whose issues a source takes: `trusted` (the default: only issues opened by "
        "people `trusted` names; the label says someone chose the issue, but its text is its "
        "author's and reaches a CLI's prompt) or `anyone` (a private repository that wants it)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="settings of a plugin's forge type, handed to its factory as they are "
        "(github takes none)",
    )

    @field_validator("options")
    @classmethod
    def _options_for_plugins(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if options and info.data.get("type", "github") == "github":
            raise ValueError("github takes none (they are for a plugin's forge type)")
        return options
