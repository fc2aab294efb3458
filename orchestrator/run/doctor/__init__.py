"""``council doctor``'s checks, below the command line: git (``git_checks``), the repository
(``repository_checks``), each CLI (``cli_checks``), the state store (``store_checks``), put
together by ``examine``. Each check is a ``Check``: what was looked at, a verdict, and for a
failure one line saying how to fix it. Nothing here changes the repository, and the store
only as any read of it does (a damaged record is recovered from its history, or set aside)."""
