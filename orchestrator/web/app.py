"""The routes of ``council web``: the page, its files, what it reads, the actions, the events.

``GET /`` the page (plain HTML, one JavaScript module and one style sheet from the package's
``web/static``, nothing from elsewhere), ``GET /api/view`` what it shows (``Board.view``: the
filter ``status``, the search ``q``, the window ``offset``/``limit``), ``GET /api/cost?by=``
``council cost``'s report (``web.cost``), ``GET /api/task/{id}`` one task's report, its CLI logs
and its diff against its base, ``GET /events`` the report's versions as server-sent events (one
at connect, one per rebuild, a comment every ``KEEPALIVE`` seconds), ``POST
/api/task/{id}/cancel`` and ``/retry``, ``POST /api/budget`` (``{"scope", "usd", "tokens"}``, or
``{"scope", "go_on": true}``: a spent budget's ask answered, ``web.budget_ask``),
``POST /api/resume`` (``council resume FILE``: ``web.resume``), and a goal's plan held before it
runs (``web.plan_view``; ``plan_app`` serves it alone while no run is recorded). Every route is
behind the ``Guard``. A refused action answers 400 with the command line's own message; every
answer is JSON the page puts in as text, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestrator.errors import CouncilError
from orchestrator.web.board import PAGE_ROWS, Board, task_row
from orchestrator.web.budget_ask import go_on
from orchestrator.web.cost import cost_of
from orchestrator.web.guard import Guard, Keys
from orchestrator.web.plan_view import plan_routes
from orchestrator.web.resume import Resumer

__all__ = ["KEEPALIVE", "make_app", "plan_app"]

KEEPALIVE = 15.0  # seconds between two comments on an idle event stream
_FILES = {"page.js": "text/javascript", "page.css": "text/css"}
_SAFE = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


def _static(name: str) -> bytes:
    return resources.files("orchestrator.web").joinpath("static", name).read_bytes()


def make_app(board: Board, keys: Keys) -> Guard:
    """The guarded ASGI application of ``board``; entering its lifespan follows the store."""
    return _guarded(board, keys, board.source.config.repo if board.source.config else None)


def plan_app(repo: Path, keys: Keys) -> Guard:
    """The page of a goal's plan held before any run of ``repo`` was recorded
    (``plan_view``): the page, its files and the plan's routes; the run's are 409."""

    async def no_run(request: Request) -> Response:
        return _error("no run has been recorded yet: the goal's plan waits to be accepted", 409)

    routes = [
        Route("/", _page(keys)),
        Route("/static/{name}", _file),
        *plan_routes(repo),
        Route("/api/{rest:path}", no_run, methods=["GET", "POST"]),
        Route("/events", no_run),
    ]
    return Guard(Starlette(routes=routes), keys)


def _page(keys: Keys) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        html = _static("index.html").decode().replace("{{csrf}}", keys.csrf)
        return Response(html, media_type="text/html", headers=_SAFE)

    return page


async def _file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _FILES:
        return JSONResponse({"error": f"no file {name!r}"}, 404)
    return Response(_static(name), media_type=_FILES[name], headers=_SAFE)


def _guarded(board: Board, keys: Keys, repo: Path | None) -> Guard:

    resumer = Resumer(board.source)
    groups: list[anyio.abc.TaskGroup] = []  # the lifespan's, where a resume is waited for
    costs: dict[tuple[int, str], dict[str, Any]] = {}  # the cost report of a version, by cut

    async def view(request: Request) -> Response:
        params = request.query_params
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", str(PAGE_ROWS)))
        except ValueError:
            return _error("offset and limit must be whole numbers")
        return JSONResponse(
            await board.view(params.get("status", ""), params.get("q", ""), offset, limit),
            headers=_SAFE,
        )

    async def task(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        try:
            logs = await board.source.log(task_id)
            diff = await board.source.diff(task_id)
        except (CouncilError, ValueError) as exc:
            return _error(str(exc), 404)
        report = await board.report()
        found = next((t for t in report.tasks if t.task_id == task_id), None)
        shown = found.model_dump(mode="json") if found is not None else {}
        row = task_row(found) if found is not None else {}
        parts = [{"name": p.name, "text": p.text, "clipped": p.clipped} for p in logs]
        answer = {"row": row, "report": shown, "logs": parts, "diff": diff}
        return JSONResponse(answer, headers=_SAFE)

    async def cost(request: Request) -> Response:
        by = request.query_params.get("by", "day")
        key = (board.version, by)
        if key not in costs:
            try:
                costs.clear()  # one version's, at most one per cut
                costs[key] = await cost_of(board.source, by)
            except (CouncilError, ValueError) as exc:
                return _error(str(exc))
        return JSONResponse(costs[key], headers=_SAFE)

    async def act(request: Request) -> Response:
        action, task_id = request.path_params["action"], request.path_params["task_id"]
        run = {"cancel": board.source.cancel, "retry": board.source.retry}.get(action)
        if run is None:
            return _error(f"no action {action!r} (cancel, retry)", 404)
        return await _done(board, run(task_id), {task_id})

    async def budget(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            scope = str(body["scope"])
            if body.get("go_on") is True:  # a spent budget's ask answered: web.budget_ask
                return await _done(board, go_on(board.source, scope), set())
            usd = None if body.get("usd") in (None, "") else float(body["usd"])
            tokens = None if body.get("tokens") in (None, "") else int(body["tokens"])
        except (ValueError, KeyError, TypeError) as exc:
            return _error(f"a budget raise takes JSON {{scope, usd, tokens}}: {exc}")
        return await _done(board, board.source.raise_budget(scope, usd, tokens), set())

    async def resume(request: Request) -> Response:
        if not groups:
            return _error("the server is not serving yet", 503)
        return await _done(board, resumer.resume(groups[0]), set())

    async def events(request: Request) -> Response:
        return StreamingResponse(_versions(board), media_type="text/event-stream", headers=_SAFE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            groups.append(group)
            group.start_soon(board.follow)
            yield
            group.cancel_scope.cancel()

    routes = [
        Route("/", _page(keys)),
        Route("/static/{name}", _file),
        *plan_routes(repo),
        Route("/api/view", view),
        Route("/api/cost", cost),
        Route("/api/task/{task_id}", task),
        Route("/api/task/{task_id}/{action}", act, methods=["POST"]),
        Route("/api/budget", budget, methods=["POST"]),
        Route("/api/resume", resume, methods=["POST"]),
        Route("/events", events),
    ]
    return Guard(Starlette(routes=routes, lifespan=lifespan), keys)


async def _done(board: Board, action: Any, touched: set[str]) -> Response:
    """The action's words (or its refusal's, 400), once the report shows what it did to the
    tasks it ``touched`` (the session and the records are read again in any case)."""
    try:
        said = await action
    except (CouncilError, ValueError) as exc:
        return _error(str(exc))
    await board.rebuild(touched)  # the page sees what it did at once
    return JSONResponse({"said": said, "version": board.version}, headers=_SAFE)


def _error(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status, headers=_SAFE)


async def _versions(board: Board) -> AsyncIterator[str]:
    seen = board.version
    yield f"retry: 2000\ndata: {seen}\n\n"
    while True:
        now = await board.moved_after(seen, KEEPALIVE)
        if now == seen:
            yield ": idle\n\n"
            continue
        seen = now
        yield f"data: {seen}\n\n"
