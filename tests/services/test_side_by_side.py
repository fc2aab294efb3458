"""Sessions that do not collide at run time (``orchestrator.services``), on real processes:
two sessions whose services listen on the same port and whose checks bind the same port at the
same time, each seeing only its own data, as root and as a user who is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.side_by_side import side_by_side
from tests.support.spare_user import as_users, hand_over, spare_uid, user_dir
from tests.support.timing import patience

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]


def _run(uid: int | None, base: Path) -> dict[str, object]:
    if uid is None:
        import anyio

        return anyio.run(side_by_side, base)
    hand_over(base, uid)
    switch = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    done = subprocess.run(
        [*switch, sys.executable, "-m", "tests.services.side_by_side", str(base)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(base)},
        timeout=patience(120),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("uid", as_users())
def test_same_ports_side_by_side_each_sees_its_own(uid: int | None, tmp_path: Path) -> None:
    if uid is not None:
        uid = spare_uid()
    with user_dir(uid, tmp_path) as base:
        result = _run(uid, base)
    assert result["isolated"] is True
    assert result["states"] == {"alpha": {"web": "ready"}, "beta": {"web": "ready"}}
    checks = result["checks"]
    assert isinstance(checks, dict)
    for name in ("alpha", "beta"):
        assert checks[name]["code"] == 0, checks[name]["output"]
        assert checks[name]["output"].strip() == f"data of {name}"
