"""The run's session from its start to its end, beside the tick.

- ``opening``: the session a run works in: a new one recorded, a team's joined, an interrupted
  one resumed (over ``resume``: claims recovered, landed work recognised, worktrees retired;
  ``liveness``: a session whose orchestrator still runs is not taken up);
- ``recording``: the run's task records written in batches while the first ones already run;
- ``reading``: the task records each tick reads, and a state found gone;
- ``finish``: the run's end recorded, as ``scheduler.ending`` decides it.
"""
