"""What ``council status FILE`` reads of a run config: where its runs' state is, and which
file it is (``config.origin``), without building its tasks: a config of 10,000 tasks costs
the command their parse alone (``yaml_source.mapping_without``), not their validation.

Everything but ``tasks:`` is validated as ``load`` validates it; a config this cannot read so
(a syntax error, a refused value, the C parser missing) gives None, and the caller reads it
whole with ``load.load_config``, which says what is wrong at its line.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from orchestrator.config.origin import ConfigOrigin, set_origin
from orchestrator.config.run import DEFER_CHECKS, RunConfig
from orchestrator.config.yaml_source import mapping_without, read_config_text
from orchestrator.errors import ConfigError

__all__ = ["state_config"]


def state_config(path: Path) -> RunConfig | None:
    """The config at ``path`` with no task (its state's place, its origin), or None (module
    doc)."""
    try:
        text = read_config_text(path, str(path))
    except ConfigError:
        return None
    data = mapping_without(text, "tasks")
    if data is None:
        return None
    context = {"base_dir": path.absolute().parent, DEFER_CHECKS: True}
    try:
        config = RunConfig.model_validate({**data, "tasks": []}, context=context)
    except ValidationError:
        return None
    set_origin(config, ConfigOrigin.of(path, text))
    return config
