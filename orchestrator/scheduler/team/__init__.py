"""Team mode as a part of the run: several workstations on one queue in a shared database.

- ``join``: joining the team's run or starting it; ``presence``: each workstation's heartbeat;
- ``definitions``: the team's definition of each task, what a joiner runs;
- ``work``: an attempt's git work in a team (a fresh base, the branch published at each
  phase's end, files owned team-wide, another workstation's work taken over);
- ``outside_push``: commits a CLI pushed onto the team's base outside the merge queue.


The ``Team`` value itself (the run's key, the remote, this workstation's id) is
``state.team``: the shared store and remote it names are below the scheduler.
"""
