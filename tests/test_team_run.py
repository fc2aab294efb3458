from pathlib import Path

import pytest
from team_helpers import Team, team_task

pytestmark = pytest.mark.postgres


def test_two_workstations(pg_dsn: str, tmp_path: Path) -> None:
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n) for n in range(1, 11)]
    team.workstation("a", tasks)
    team.workstation("b", tasks)
    try:
        team.start("a")
        team.start("b")
        ca, ra, ea = team.finish("a", timeout=90)
        cb, rb, eb = team.finish("b", timeout=90)
        print("A", ea[-3000:])
        print("B", eb[-3000:])
        print(ra.get("totals"), rb.get("totals"))
        print(team.landed_tasks())
        assert ca == 0 and cb == 0
        assert sorted(team.landed_tasks()) == [t["id"] for t in tasks]
        assert len(team.base_files()) == 10
    finally:
        team.stop_all()
