"""The three protection layers of DESIGN.md behind one ``LockManager`` (``manager``): OS file
locks (``orchestrator.filelock``), the ownership registry and wait-for graph (``registry``), and
the merge lock (``merge_lock``)."""
