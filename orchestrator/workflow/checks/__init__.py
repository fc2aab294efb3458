"""Verified completion: the task's verify commands (``verify``) and the orchestrator's own
check of a build and of the attempt's end (``build``): a commit, a non-empty diff, passing
verify commands. Exit code 0 proves nothing."""
