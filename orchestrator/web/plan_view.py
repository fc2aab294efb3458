"""A goal's plan held before it runs (``council run -g GOAL --approve``), on the page.

``GET /api/plan`` the held plan of the run's repository (``run.goal_hold``): its goal, its
saved config, its status and each task's id, prompt, files and dependencies (``null`` when
none is held). ``POST /api/plan/accept`` (``{"tasks": [{"id", "prompt"}, ...]}``: the tasks
kept, each prompt as edited) and ``POST /api/plan/refuse`` answer it through the same
functions as ``council approve`` and ``council approve --refuse``; a refused answer is 400 with
their message (a bad edit: the config checks' problems, each at its line). Behind the
``Guard`` as every route; the plan's text (a planner CLI wrote it) is sent as JSON data the page
puts in as text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orchestrator.errors import CouncilError
from orchestrator.run.goal_hold import PENDING, accept_plan, read_plan, refuse_plan

__all__ = ["plan_pending", "plan_routes"]

_SHOWN = ("id", "prompt", "files", "depends_on")
_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def plan_pending(repo: Path) -> bool:
    """Does a plan wait to be accepted in ``repo`` (a damaged record: no)?"""
    try:
        held = read_plan(repo)
    except CouncilError:
        return False
    return held is not None and held.status == PENDING


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(body, status, headers=_HEADERS)


def plan_routes(repo: Path | None) -> list[Route]:
    """The plan's routes for the repository ``repo`` (None: a bare state directory, no plan)."""

    async def shown(request: Request) -> Response:
        if repo is None:
            return _answer({"plan": None})
        try:
            held = await anyio.to_thread.run_sync(read_plan, repo)
        except CouncilError as exc:
            return _answer({"error": str(exc)}, 400)
        if held is None:
            return _answer({"plan": None})
        tasks = [{key: task.get(key) for key in _SHOWN} for task in held.tasks]
        plan = {"goal": held.goal, "config": held.config, "status": held.status, "tasks": tasks}
        return _answer({"plan": plan})

    async def accept(request: Request) -> Response:
        if repo is None:
            return _answer({"error": "no run config: no plan to accept"}, 400)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            said = f"an accept takes JSON {{tasks: [{{id, prompt}}]}}: {exc}"
            return _answer({"error": said}, 400)
        edits = body.get("tasks") if isinstance(body, dict) else None
        if edits is not None and not isinstance(edits, list):
            return _answer({"error": "tasks: a list of {id, prompt}"}, 400)
        from orchestrator.plugins.host import default_plugins

        registry = (await anyio.to_thread.run_sync(default_plugins)).registry
        try:
            said = await accept_plan(repo, registry, os.environ, edits)
        except CouncilError as exc:
            return _answer({"error": str(exc)}, 400)
        return _answer({"said": said})

    async def refuse(request: Request) -> Response:
        if repo is None:
            return _answer({"error": "no run config: no plan to refuse"}, 400)
        try:
            said = await anyio.to_thread.run_sync(refuse_plan, repo)
        except CouncilError as exc:
            return _answer({"error": str(exc)}, 400)
        return _answer({"said": said})

    return [
        Route("/api/plan", shown),
        Route("/api/plan/accept", accept, methods=["POST"]),
        Route("/api/plan/refuse", refuse, methods=["POST"]),
    ]
