"""The API hosts of the model providers the multi-provider CLIs (aider, opencode) reach, by
the provider prefix of a model name (``anthropic/claude-sonnet-4-5``): what
``sandbox.network: model`` lets such a CLI reach. A model without a known prefix gets every
host of the table (the CLI picks its provider from the keys it finds)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PROVIDER_HOSTS", "provider_hosts"]

PROVIDER_HOSTS: Mapping[str, tuple[str, ...]] = {
    "anthropic": ("api.anthropic.com",),
    "openai": ("api.openai.com",),
    "google": ("generativelanguage.googleapis.com",),
    "gemini": ("generativelanguage.googleapis.com",),
    "openrouter": ("openrouter.ai",),
    "deepseek": ("api.deepseek.com",),
    "groq": ("api.groq.com",),
    "mistral": ("api.mistral.ai",),
    "xai": ("api.x.ai",),
}


def provider_hosts(model: str | None, provider: str | None = None) -> tuple[str, ...]:
    """The hosts of ``model``'s provider (``provider`` when given, else its prefix); all of
    the table's when neither names a known one."""
    name = provider or (model.split("/", 1)[0] if model and "/" in model else None)
    if name is not None and name.lower() in PROVIDER_HOSTS:
        return PROVIDER_HOSTS[name.lower()]
    return tuple(dict.fromkeys(host for hosts in PROVIDER_HOSTS.values() for host in hosts))
