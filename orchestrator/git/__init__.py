"""Git: every git command the orchestrator starts (``repo``, with git's own environment,
``environment``, after the run's seal is checked, ``seal``), readers of git's machine output
(``parse``), the working-tree-free merge steps (``merge_tree``), a sandboxed CLI's objects
taken in (``objects``), and the book of refs the orchestrator itself moved (``ref_book``)."""
