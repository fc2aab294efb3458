"""The offline demo's run config, shipped inside the package (``demo.yaml`` beside this module).

``council demo`` writes it to ``<directory>/demo.yaml`` and runs that file, so an installed
CLI Council needs no checkout for its demo, and ``council status``/``council resume`` can be
given the same file afterwards. Its ``repo: repo`` puts the sample repository beside it, in
``<directory>/repo``; ``configs/demo.yaml`` in a checkout is the same config with the repository
in ``../.council-demo/repo``.

A ``demo.yaml`` already in the directory is left as it is when it is the shipped one, and never
overwritten when it is not (edited, or written by another version): that is refused, with the
way to run it as it is.
"""

from __future__ import annotations

import shlex
from importlib import resources
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.safety.safe_write import write_atomic

__all__ = ["DEMO_CONFIG_NAME", "shipped_demo_config", "write_demo_config"]

DEMO_CONFIG_NAME = "demo.yaml"


def shipped_demo_config() -> bytes:
    """The demo config as shipped with this version of CLI Council."""
    return resources.files("orchestrator.run").joinpath(DEMO_CONFIG_NAME).read_bytes()


def write_demo_config(directory: Path) -> Path:
    """Write the shipped demo config to ``directory/demo.yaml`` (making ``directory``) and
    return that path; a different file already there raises ``UsageError``."""
    path = directory / DEMO_CONFIG_NAME
    shipped = shipped_demo_config()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make the demo's directory {directory}: {exc.strerror}") from None
    if path.is_symlink() or path.exists():
        if not path.is_symlink() and path.is_file() and path.read_bytes() == shipped:
            return path
        raise UsageError(
            f"{path} is not this version's demo config (edited, or written by another version):"
            f" run it as it is with `council run {shlex.quote(str(path))}`,"
            " or remove it and run `council demo`"
        )
    try:
        write_atomic(directory, path, shipped)
    except OSError as exc:
        raise UsageError(f"cannot write the demo config {path}: {exc.strerror}") from None
    return path
