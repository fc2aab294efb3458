"""One call of GitHub's REST API, without the client library: remembered, paced, paged, parsed.

``orchestrator.forge.github`` sends each request through githubkit (the only module that
imports it) and hands this module what came back: an ``Answer`` (any object with a status
code, headers and a body) or a ``Failure`` (an error status, or no answer at all).
``GitHubCalls.call`` does the rest:

- an ETag per URL and query (``pacing.ETagCache``): a GET asks ``If-None-Match`` and a 304
  gives the remembered body back, counted apart (``RequestCount.not_modified``);
- rate limits and server errors waited out, bounded (``pacing.Pacing``), each retry counted;
  what cannot be waited out is the forge's error for it (``error``: 401/403 auth, 404 not
  found, 422 refused, 5xx or no answer unavailable), carrying the method, the path and
  GitHub's own message, masked (``message``), never the request (which holds the token);
- the body parsed into the model asked for (pydantic, one ``TypeAdapter`` a model), an answer
  not in its shape a ``ForgeError`` naming the field; an empty body is an empty list or object;
- ``pages``: a listing read 100 at a time until a short page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from orchestrator.errors import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgeRefused,
    ForgeUnavailable,
)
from orchestrator.forge.base import RequestCount
from orchestrator.forge.pacing import ETagCache, Pacing, RequestCounter
from orchestrator.safety import secret_mask

__all__ = ["PAGE", "Answer", "Failure", "GitHubCalls", "Method", "Send"]

_log = logging.getLogger("orchestrator.forge.github")
PAGE = 100

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
M = TypeVar("M")
_adapters: dict[Any, TypeAdapter[Any]] = {}


class Answer(Protocol):
    """A response the client library got (githubkit's ``Response``)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


@dataclass(frozen=True)
class Failure:
    """A request that got no good answer: ``status`` None when none came at all."""

    status: int | None
    headers: Mapping[str, str]
    message: str


# method, URL, query, JSON body, headers -> what came back
Send = Callable[
    [str, str, Mapping[str, str] | None, Mapping[str, Any] | None, dict[str, str]],
    Awaitable[Answer | Failure],
]


class GitHubCalls:
    """The requests of one forge: ``send`` puts one on the wire, the rest is done here."""

    def __init__(self, prefix: str, send: Send, pacing: Pacing) -> None:
        self._prefix = prefix  # the repository's path, ``/repos/<owner>/<name>``
        self._send = send
        self._pacing = pacing
        self._cache = ETagCache()
        self._counter = RequestCounter()

    def requests(self) -> RequestCount:
        return self._counter.snapshot()

    async def pages(
        self, path: str, model: type[M], params: Mapping[str, str] | None = None
    ) -> list[M]:
        found: list[M] = []
        page = 1
        while True:
            asked = {**(params or {}), "per_page": str(PAGE), "page": str(page)}
            batch = await self.call("GET", path, list[model], params=asked)  # type: ignore[valid-type]
            found += batch
            if len(batch) < PAGE:
                return found
            page += 1

    async def call(
        self,
        method: Method,
        path: str,
        model: Any,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        root: bool = False,
    ) -> Any:
        url = path if root else self._prefix + path  # ``root``: not under the repository
        where = f"{method} {url}"
        key = url + "?" + "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        tries, rate_waited = 0, 0.0
        while True:
            headers = {}
            etag = self._cache.etag(key) if method == "GET" else None
            if etag is not None:
                headers["If-None-Match"] = etag
            answer = await self._send(method, url, params, body, headers)
            if isinstance(answer, Failure):
                # Raised here, outside the client's exception: nothing chains to its request,
                # which holds the Authorization header.
                wait = self._pacing.rate_wait(
                    answer.status or 0, answer.headers, answer.message, rate_waited
                )
                if wait is not None:
                    _log.info("GitHub rate limit on %s: waiting %.0f s", where, wait)
                    self._counter.retried += 1
                    rate_waited += wait
                    await self._pacing.pause(wait)
                    continue
                if answer.status is None or answer.status >= 500:
                    backoff = self._pacing.server_wait(tries)
                    if backoff is not None:
                        _log.info("GitHub answered %s to %s: trying again", answer.status, where)
                        tries += 1
                        self._counter.retried += 1
                        await self._pacing.pause(backoff)
                        continue
                raise error(where, answer, self._pacing)
            if answer.status_code == 304:
                cached = self._cache.body(key)
                if cached is None:
                    raise ForgeError(where, 304, "not modified, but nothing was remembered")
                self._counter.not_modified += 1
                return parse(where, model, cached)
            self._counter.full += 1
            content = answer.content
            if method == "GET":
                self._cache.store(key, answer.headers.get("etag"), content)
            if not content.strip():
                content = b"[]" if _is_list(model) else b"{}"
            return parse(where, model, content)


def parse(where: str, model: Any, content: bytes) -> Any:
    """``content`` (JSON) as ``model``; not in its shape, a ``ForgeError`` naming the field."""
    try:
        return _adapter(model).validate_json(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(part) for part in first["loc"])
        raise ForgeError(
            where, None, f"answer not in GitHub's shape: {at}: {first['msg']}"
        ) from None


def message(raw: bytes) -> str:
    """GitHub's message in an error's body (its details after it), masked."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        text = raw.decode("utf-8", "replace").strip()[:200]
        return secret_mask.mask()(text) or "no message"
    said = str(data.get("message") or "no message")
    details = [
        str(error.get("message") or error.get("code"))
        for error in data.get("errors") or []
        if isinstance(error, dict) and (error.get("message") or error.get("code"))
    ]
    if details:
        said += ": " + "; ".join(details)
    return secret_mask.mask()(said)


def error(where: str, failure: Failure, pacing: Pacing) -> ForgeError:
    """The forge's error for a request that failed for good."""
    status, said = failure.status, failure.message
    if status is None:
        return ForgeUnavailable(where, None, said)
    if status in (403, 429) and pacing.announced_wait(status, failure.headers, said) is not None:
        return ForgeUnavailable(
            where, status, f"{said} (rate limited for longer than the client may wait)"
        )
    if status in (401, 403):
        return ForgeAuthError(where, status, said)
    if status == 404:
        return ForgeNotFound(where, status, said)
    if status == 422:
        return ForgeRefused(where, status, said)
    if status >= 500:
        return ForgeUnavailable(where, status, said)
    return ForgeError(where, status, said)


def _adapter(model: type[M] | Any) -> TypeAdapter[Any]:
    adapter = _adapters.get(model)
    if adapter is None:
        adapter = _adapters[model] = TypeAdapter(model)
    return adapter


def _is_list(model: Any) -> bool:
    return getattr(model, "__origin__", None) is list
