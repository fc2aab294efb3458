"""The forge (GitHub) refused or failed a request: its status and its own message, never
the token."""

from __future__ import annotations

from orchestrator.errors.base import CouncilError

__all__ = ["ForgeAuthError", "ForgeError", "ForgeNotFound", "ForgeRefused", "ForgeUnavailable"]


class ForgeError(CouncilError):
    """The forge answered ``status`` (None: it was not reached) with ``message`` to ``request``
    (``METHOD /path``, no query, no credentials)."""

    def __init__(self, request: str, status: int | None, message: str) -> None:
        where = f"answered {status}" if status is not None else "could not be reached"
        super().__init__(f"GitHub {where} to {request}: {message}")
        self.request = request
        self.status = status
        self.message = message


class ForgeAuthError(ForgeError):
    """No token, a token the forge does not accept (401), or one without the scope (403)."""


class ForgeNotFound(ForgeError):
    """The issue, pull request, commit or repository asked for is not there (404)."""


class ForgeRefused(ForgeError):
    """The forge refused the request as it was asked (422: validation failed)."""


class ForgeUnavailable(ForgeError):
    """Server errors or no connection after the bounded retries, or a rate limit that lifts
    later than the forge client may wait."""
