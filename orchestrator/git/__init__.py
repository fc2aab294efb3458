"""Git: the one wrapper around GitPython (``repo``), readers of git's machine output
(``parse``), the working-tree-free merge steps (``merge_tree``), and the book of refs the
orchestrator itself moved (``ref_book``)."""
