"""How a CLI is confined: a kernel-enforced sandbox around each CLI process.

A CLI runs as the user, and without a sandbox it can reach everything the user can: git's
shared setup, its neighbours' worktrees and branches, the user's checkout, ``~/.ssh``. With
one, it reaches only its own work, by construction rather than by a check after the fact:

- ``plan``: what one CLI may see and write (``Confinement``), built from the session's
  worktree and the parts of git a commit on its own branch needs (``GitReach``, from the
  worktree layer), its private HOME, the user's logins (read-only) and the run config's
  ``sandbox:`` section (``SandboxSettings``);
- ``bubblewrap``: that plan as a ``bwrap`` command line (Linux: a user namespace with no
  capability, root too, and the plan's resource limits), and finding ``bwrap``;
- ``choice``: which sandbox a run uses (``auto``: bubblewrap where it works, else none, said
  by ``council doctor`` and at the start of the run), probed once per process;
- ``network``, ``relay``, ``proxy``: the CLI's network: a namespace of its own whose way out
  is the public network (``open``), single ports of the machine relayed in (its model on the
  machine's loopback), or no route but an allow-list proxy to its model's API (``model``);
- ``commands``: the one path for a command run on a session's work (verify and setup
  commands: code a CLI wrote), confined as the session's CLI is, with the session's private
  HOME, its output masked;
- ``escape_check``: a real escape attempt inside that command line, for ``council doctor``.
"""
