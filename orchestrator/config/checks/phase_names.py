"""The places a run config names a workflow phase outside ``workflow.phases``, and the phase
names that look like a misspelt built-in one.

A phase is named by a task's ``phases``, ``capacity.per_phase``, a service's ``phases`` and
the keys of a task's ``metadata.phase_instructions`` (also under
``metadata.candidates.<adapter>``, a council candidate's overrides): each must be a phase of
the workflow, or the setting is never used, so each that is not is an error with the closest
phase suggested (``phase_problems``). An instruction may also be for a built-in phase the
workflow lacks (one set of instructions written for the default phases, on a shorter
workflow) or for ``council``, a council task's comparison.

The workflow's own phase names are free, but four have a meaning of their own
(``DEFAULT_PHASES``): ``build`` runs the verify commands and is sent back by ``review``, each of
the four has its prompt and handoff. A phase one edit away from one of them, in a workflow that
lacks it (``biuld`` and no ``build``), is most likely that one misspelt: a warning, not an
error, since a custom phase is allowed (``phase_name_warnings``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from orchestrator.config.checks.problems import Problem, RunSections, names, unknown_phase
from orchestrator.config.fieldpath import Loc
from orchestrator.config.suggest import did_you_mean
from orchestrator.models import DEFAULT_PHASES

__all__ = ["COUNCIL_PHASE", "phase_name_warnings", "phase_problems"]

# The task metadata the workflow reads per phase (``workflow.handoffs.prompts``), and the
# per-adapter overrides of a council task (``scheduler.candidates``): both above this layer.
_INSTRUCTIONS = "phase_instructions"
_CANDIDATES = "candidates"
# The comparison of a council task's candidates reads its instructions under this name too,
# a phase of no workflow (``workflow.best_of.COUNCIL_PHASE``).
COUNCIL_PHASE = "council"

# What a built-in phase has that a phase of another name does not (``orchestrator.workflow``).
_MEANING = {
    "scout": "gets the scout prompt and hands its findings to the phases after it",
    "plan": "gets the plan prompt and locks the files its plan names",
    "build": "gets the build prompt, runs the verify commands and is sent back by review",
    "review": "gets the review prompt and can send the task back to build",
}


def phase_problems(config: RunSections) -> Iterator[Problem]:
    """Each phase name outside ``workflow.phases`` that names none of its phases."""
    known = {phase.name for phase in config.workflow.phases}
    for name in config.capacity.per_phase:
        if name not in known:
            yield ("capacity", "per_phase", name), unknown_phase(config, name)
    for service, settings in config.services.items():
        for position, name in enumerate(settings.phases):
            if name not in known:
                yield ("services", service, "phases", position), unknown_phase(config, name)
    for index, task in enumerate(config.tasks):
        for position, name in enumerate(task.phases or []):
            if name not in known:
                yield ("tasks", index, "phases", position), unknown_phase(config, name)
        where: Loc = ("tasks", index, "metadata")
        yield from _instructions(config, known, task.metadata, where)
        overrides = task.metadata.get(_CANDIDATES)
        if isinstance(overrides, Mapping):
            for adapter, metadata in overrides.items():
                if isinstance(metadata, Mapping):
                    place = (*where, _CANDIDATES, str(adapter))
                    yield from _instructions(config, known, metadata, place)


def _instructions(
    config: RunSections, known: set[str], metadata: Mapping[str, object], where: Loc
) -> Iterator[Problem]:
    table = metadata.get(_INSTRUCTIONS)
    if not isinstance(table, Mapping):
        return
    # Instructions for a built-in phase this workflow lacks are allowed (one set written for
    # the default phases, reused on shorter workflows): only a name of no phase is refused.
    allowed = {*known, *DEFAULT_PHASES, COUNCIL_PHASE}
    for name in map(str, table):
        if name not in allowed:
            yield (
                (*where, _INSTRUCTIONS, name),
                f"unknown phase {name!r}{did_you_mean(name, allowed)} (phases: {names(known)}; "
                f"or a built-in one, {', '.join(DEFAULT_PHASES)}; or {COUNCIL_PHASE!r}, a "
                "council task's comparison)",
            )


def phase_name_warnings(config: RunSections) -> Iterator[Problem]:
    """Each workflow phase whose name is one edit away from a built-in phase it lacks."""
    present = {phase.name for phase in config.workflow.phases}
    for index, phase in enumerate(config.workflow.phases):
        if phase.name in DEFAULT_PHASES:
            continue
        for builtin in DEFAULT_PHASES:
            if builtin not in present and _one_edit(phase.name, builtin):
                yield (
                    ("workflow", "phases", index, "name"),
                    f"phase {phase.name!r} is not a built-in phase (did you mean {builtin!r}?): "
                    f"only a phase named {builtin!r} {_MEANING[builtin]}; "
                    f"{phase.name!r} runs as a custom phase, on the generic prompt",
                )
                break


def _one_edit(word: str, target: str) -> bool:
    """``word`` and ``target`` differ by one letter added, removed, changed, or two
    neighbouring letters swapped."""
    if word == target or abs(len(word) - len(target)) > 1:
        return False
    if len(word) == len(target):
        diff = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        if len(diff) == 1:
            return True
        first = diff[0]
        return (
            diff == [first, first + 1]
            and word[first] == target[first + 1]
            and (word[first + 1] == target[first])
        )
    short, long = sorted((word, target), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
