"""What a CLI must not change outside its worktree: looked at before its session, checked
after (``guard``); git's shared files byte for byte (``files``), the shared refs and the base
checkout (``refs``); whose doing each change is, so only that session fails (``blame``)."""
