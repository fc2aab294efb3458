"""Does each phase's prompt fit the way its adapter passes it to the CLI?

A prompt on the command line can be at most 128 KiB on Linux (``arg_limits``). The built-in
adapters pass a longer one through stdin or a file; an adapter that cannot (a ``command``
preset without ``stdin_prompt``, a plugin's) refuses it, or builds a command ``exec`` would
refuse. Either way the run could never start that phase, so it is found before the run
starts: each phase's prompt is rendered as the workflow renders it (the task, its template,
its constraints; the handoffs the phases add are not known yet and are checked again when
each CLI starts), and each adapter of its chain builds its command, which is pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from orchestrator.adapter import Adapter, AdapterRequest
from orchestrator.adapter.arg_limits import command_too_long, utf8_size
from orchestrator.config.run import RunConfig
from orchestrator.errors import AdapterError
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.adapter_uses import PhaseUse, adapter_uses
from orchestrator.run.plan import plan_paths
from orchestrator.workflow.handoffs.prompts import PromptContext, render_prompt, template_for

__all__ = ["prompt_problems"]

_SHORT = "x"  # a prompt every adapter can pass, to tell a prompt's problem from another


def prompt_problems(
    config: RunConfig, registry: AdapterRegistry, *, skip: Collection[str] = ()
) -> Iterator[tuple[int, str]]:
    """(task index, one line) for each task and adapter that cannot be given the prompt of
    one or more of the task's phases, which the line names (``skip``: adapters whose entry is
    known bad)."""
    adapters: dict[str, Adapter | None] = {}
    found: dict[tuple[int, str], tuple[list[str], str]] = {}  # one line per task and adapter
    homes = plan_paths(config)[1]  # once: 10,000 tasks' phases would work it out each
    for use in adapter_uses(config).phases:
        prompt = _rendered(config, use)
        for name in use.chain:
            if name in skip:
                continue
            if name not in adapters:
                adapters[name] = _created(registry, config, name)
            adapter = adapters[name]
            if adapter is None:
                continue  # an adapter that cannot be created is a problem of its own
            problem = _problem(config, use, name, adapter, prompt, homes)
            if problem is not None:
                phases, _ = found.setdefault((use.index, name), ([], problem))
                phases.append(use.phase.name)
    for (index, name), (phases, problem) in found.items():
        which = "phase" if len(phases) == 1 else "phases"
        where = f"task {config.tasks[index].id!r}, {which} {', '.join(phases)}"
        yield index, f"{where}: adapter {name!r} cannot be given the prompt: {problem}"


def _rendered(config: RunConfig, use: PhaseUse) -> str:
    rounds = config.workflow.max_review_rounds + 1
    verify = config.verify_for(use.task)
    context = PromptContext(use.task, use.phase.name, 1, rounds, verify)
    return render_prompt(template_for(use.phase.name, use.phase.prompt_template), context)


def _created(registry: AdapterRegistry, config: RunConfig, name: str) -> Adapter | None:
    try:
        return registry.create(name, config.adapters.get(name))
    except AdapterError:
        return None


def _problem(
    config: RunConfig, use: PhaseUse, name: str, adapter: Adapter, prompt: str, homes: Path
) -> str | None:
    try:
        spec = adapter.build_command(_request(config, use, name, prompt, homes))
    except AdapterError as exc:
        try:
            adapter.build_command(_request(config, use, name, _SHORT, homes))
        except AdapterError:
            return None  # not the prompt: the phase fails for its own reason at run time
        return _without_name(str(exc), adapter)
    too_long = command_too_long(spec.argv, spec.env)
    if too_long is None:
        return None
    return (
        f"a prompt of {_size(prompt)} makes its command too long ({too_long}); an adapter "
        "must pass a prompt that long through stdin or a file"
    )


def _request(
    config: RunConfig, use: PhaseUse, name: str, prompt: str, homes: Path
) -> AdapterRequest:
    configured = config.adapters.get(name)
    return AdapterRequest(
        prompt=prompt,
        workdir=config.repo,
        home=homes / use.task.id / name / use.phase.name,  # a name only: nothing is written
        model=use.phase.model or (configured.model if configured else None),
        phase=use.phase.name,
        task_id=use.task.id,
        env=dict(configured.env) if configured else {},
    )


def _without_name(message: str, adapter: Adapter) -> str:
    """The adapter's own words, without the "adapter 'command': " it starts them with (the
    line already names the adapter by its name in the config)."""
    prefix = f"adapter {adapter.name!r}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _size(text: str) -> str:
    return f"{utf8_size(text) / 1024:.0f} KiB"
