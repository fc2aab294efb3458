"""A run as a whole, around the scheduler: what it checks before it writes anything
(``preflight``), its plan without running it (``plan``), its report (``reports``), the one run
per repository (``run_lock``), the offline demo's repository (``demo_repo``) and config
(``demo_config``), the doctor's checklist (``doctor``) and what ``council init`` finds and
writes (``setup``)."""
