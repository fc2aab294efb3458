"""``config.load.state_config``: ``council status FILE`` reads where FILE's runs keep their
state and which file it is, as ``load_config`` does, without building its tasks; what it
cannot read so is left to ``load_config``."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.load import load_config, state_config
from orchestrator.config.origin import origin_of
from orchestrator.config.yaml_source import mapping_without
from orchestrator.errors import ConfigError

_HEAD = """\
repo: ./repo
base_branch: main
adapters: {a: {type: scripted}}
default_adapter: a
state: {path: ./kept}
"""


def _config(tmp_path: Path, tasks: int, head: str = _HEAD, tail: str = "") -> Path:
    lines = [head.rstrip("\n"), "tasks:"]
    lines += [f'  - {{id: t{n}, prompt: "p {n}", files: [n{n}.txt]}}' for n in range(tasks)]
    path = tmp_path / "run.yaml"
    path.write_text("\n".join(lines) + "\n" + tail)
    (tmp_path / "repo").mkdir(exist_ok=True)
    return path


def test_the_state_of_a_config_is_read_without_building_a_task(tmp_path: Path) -> None:
    path = _config(tmp_path, 2_000, tail="capacity: {sessions: 3}\n")
    whole = load_config(path)
    light = state_config(path)
    assert light is not None and light.tasks == []
    assert light.state_dir == whole.state_dir == tmp_path / "kept"
    assert light.repo == whole.repo and light.capacity.sessions == 3  # keys after the tasks
    assert origin_of(light) == origin_of(whole) is not None
    # No task is built: one the whole read refuses is not even looked at.
    broken = _config(tmp_path, 3, tail="  - {id: 'not an id!', prompt: p}\n")
    with pytest.raises(ConfigError):
        load_config(broken)
    assert state_config(broken) is not None


@pytest.mark.parametrize(
    "text",
    [
        "repo: ./repo\ntasks: [{id: a, prompt: p}\n",  # a syntax error
        "- repo\n- tasks\n",  # not a mapping
        "tasks: [&one {id: a, prompt: p}]\nrepo: *one\n",  # an alias into what is left out
        "repo: ./repo\nstate: {backend: nowhere}\ntasks: []\n",  # a value refused
    ],
)
def test_what_it_cannot_read_so_is_left_to_the_whole_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert state_config(path) is None


def test_only_the_top_level_key_is_left_out() -> None:
    text = "a: {tasks: [1, 2]}\ntasks:\n  - {id: x, tasks: 3}\nb: [tasks, 4]\nc: 5\n"
    assert mapping_without(text, "tasks") == {"a": {"tasks": [1, 2]}, "b": ["tasks", 4], "c": 5}
    assert mapping_without("tasks: 1\nd: 2\n", "tasks") == {"d": 2}
