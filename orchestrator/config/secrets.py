"""The run config's ``secrets:`` section: credentials let through the checks for credentials
nobody declared (``safety.secret_detect``: the landing gate, the forge's posts).

::

    secrets:
      allow:
        - {path: "tests/fixtures/*", kind: "AWS Access Key"}  # every AWS key under it
        - {path: "docs/example.netrc"}                      # any kind in that file
        - {fingerprint: "9f86d081884c7d65..."}               # this one value, anywhere

Each rule's fields must all match: ``path`` a shell-style glob on the path from the
repository's root (``*`` crosses ``/``), ``kind`` one of ``SECRET_KINDS`` (the name a
refusal gives), ``fingerprint`` the SHA-256 of the value (a refusal gives it). A line carrying
a ``pragma: allowlist secret`` comment needs no rule.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from orchestrator.config.fields import Section

__all__ = ["SECRET_KINDS", "SecretAllowConfig", "SecretsConfig"]

SECRET_KINDS: frozenset[str] = frozenset(
    {
        # detect-secrets' plugins (their secret_type)
        "AWS Access Key",
        "Artifactory Credentials",
        "Azure Storage Account access key",
        "Basic Auth Credentials",
        "Cloudant Credentials",
        "Discord Bot Token",
        "GitHub Token",
        "GitLab Token",
        "IBM COS HMAC Credentials",
        "IBM Cloud IAM Key",
        "JSON Web Token",
        "Mailchimp Access Key",
        "NPM tokens",
        "OpenAI Token",
        "Private Key",
        "PyPI Token",
        "Secret Keyword",
        "SendGrid API Key",
        "Slack Token",
        "SoftLayer Credentials",
        "Square OAuth Secret",
        "Stripe Access Key",
        "Telegram Bot Token",
        "Twilio API Key",
        # council's own shapes (safety.secret_shapes)
        "Anthropic or OpenAI Key",
        "Docker Hub Token",
        "GitHub Fine-grained Token",
        "Google API Key",
        "Hugging Face Token",
        "Netrc Password",
        "PostgreSQL Password File Line",
        "Terraform Cloud Token",
        "Vault Token",
        "crates.io Token",
    }
)
"""Every kind a hit of ``safety.secret_detect`` may name (a test holds the two equal)."""

Fingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class SecretAllowConfig(Section):
    """One rule of ``secrets.allow``: path and/or kind, or a fingerprint; every field given
    must match a hit for it to be let through."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    path: str | None = Field(
        default=None, min_length=1, description="a glob on the path from the repository's root"
    )
    kind: str | None = Field(default=None, description="the kind of credential, as named")
    fingerprint: Fingerprint | None = Field(
        default=None, description="the SHA-256 (64 lowercase hex digits) of the value"
    )

    @model_validator(mode="after")
    def _a_rule(self) -> Self:
        if self.path is None and self.kind is None and self.fingerprint is None:
            raise ValueError("an allow rule needs a path, a kind or a fingerprint")
        if self.kind is not None and self.kind not in SECRET_KINDS:
            known = ", ".join(sorted(SECRET_KINDS))
            raise ValueError(f"kind {self.kind!r} is none of the detector's kinds: {known}")
        return self

    def allows(self, path: str, kind: str, fingerprint: str) -> bool:
        return (
            (self.path is None or fnmatch.fnmatchcase(path, self.path))
            and (self.kind is None or self.kind == kind)
            and (self.fingerprint is None or self.fingerprint == fingerprint)
        )


class SecretsConfig(Section):
    """Credentials nobody declared (``safety.secret_detect``)."""

    allow: list[SecretAllowConfig] = Field(
        default_factory=list,
        description="what the checks for credentials nobody declared let through (landing "
        "and posts): {path, kind} or {fingerprint}",
    )
