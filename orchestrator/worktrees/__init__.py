"""Session worktrees: one git worktree per CLI session, created fast, reused from a pool, and
never removed while it holds work that is not safe elsewhere; the tamper guard of what a CLI
must not change outside its worktree (``tamper``)."""
