"""What ``council init`` and ``council doctor`` find on this machine and write: the repository
a command stands in (``repo_here``), the CLIs installed here with their versions and logins
(``cli_detect``), how to install or log in one (``cli_fixes``), and the commented starter config
(``starter_config``) checked and written without replacing a file (``init_config``)."""
