"""Who may look and who may act: the token, its cookie, the CSRF check.

The server makes one random token when it starts (``secrets.token_urlsafe``) and prints it in
its URL, as Jupyter does. A request carrying it (``?token=``, or ``Authorization: token ...``
for a script) gets a cookie in exchange (HttpOnly, SameSite=Strict) holding another random
value; a page then needs neither in its URL. Every other request is refused 403, the page and
its files included. An action (a POST, the only method that changes anything) needs the
cookie or the token and, besides, the page's CSRF value in the ``X-Council-CSRF`` header (the
page holds it, another site cannot read it) and, when the browser says where it came from, an
``Origin`` that is this server. Values are compared in constant time.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

__all__ = ["COOKIE", "CSRF_HEADER", "Guard", "Keys"]

COOKIE = "council_web"
CSRF_HEADER = "x-council-csrf"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Keys:
    """The server's three secrets: the printed token, the cookie's value, the CSRF value."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(32)
        self.cookie = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)


def _same(given: str | None, secret: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


class Guard:
    """ASGI middleware: refuses what the module doc refuses, exchanges the token."""

    def __init__(self, app: App, keys: Keys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [None])[0]
        auth = headers.get("authorization", "")
        if auth.lower().startswith("token "):
            given = auth[6:].strip()
        by_token = _same(given, self.keys.token)
        by_cookie = _same(_cookie(headers.get("cookie", "")), self.keys.cookie)
        if not (by_token or by_cookie):
            await _refuse(send, "a token is needed: open the URL `council web` printed")
            return
        if scope["method"] not in ("GET", "HEAD"):
            problem = self._csrf_problem(headers, scope)
            if problem is not None:
                await _refuse(send, problem)
                return
        elif by_token and "token" in query:
            await self._exchange(scope, query, send)  # the token leaves the address bar
            return
        await self.app(scope, receive, send)

    def _csrf_problem(self, headers: dict[str, str], scope: Scope) -> str | None:
        if scope["method"] != "POST":
            return f"method {scope['method']} is not allowed"
        if not _same(headers.get(CSRF_HEADER), self.keys.csrf):
            return f"an action needs the page's {CSRF_HEADER} header"
        origin = headers.get("origin")
        if origin is not None and origin != f"{scope.get('scheme', 'http')}://{headers['host']}":
            return f"an action from another origin ({origin}) is refused"
        return None

    async def _exchange(self, scope: Scope, query: dict[str, list[str]], send: Send) -> None:
        rest = {k: v for k, v in query.items() if k != "token"}
        where = scope["path"] + (f"?{urlencode(rest, doseq=True)}" if rest else "")
        cookie = f"{COOKIE}={self.keys.cookie}; HttpOnly; SameSite=Strict; Path=/"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", where.encode("latin-1")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _cookie(header: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed cookie header: no cookie of ours
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


async def _refuse(send: Send, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})
