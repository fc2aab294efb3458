"""The merge queue: finished session branches land on the base branch one at a time, computed
without a working tree (``queue``); the checkout of the base branch (``checkout``), git's own
lock files (``git_locks``), what already landed (``history``)."""
