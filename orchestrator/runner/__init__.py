"""One CLI invocation end to end: the phase's call (``phase``), the process run through its
adapter (``cli_run``, ``launch``, ``supervise``, ``reader``, ``event_tail``), the user's logins
and git identity (``logins``, ``identity``), and the CLIs still running (``cli_runs``,
``orphans``)."""
