"""The ADW workflow: one attempt at one task, phase by phase, with structured handoffs, the
orchestrator's own checks (verify, facts read from git), and council mode's comparison of
candidates (``best_of``)."""
