"""Getting a machine and a config ready for a run: ``council init`` (``init_cmd``: a starter
config from the CLIs found here), ``council doctor`` (``doctor_cmd``: the checklist, a fix for
each failure), ``council adapters`` (``adapters_cmd``; ``adapters_live``: each installed CLI run
for real against the local fake model) and ``council config`` (``config_cmd``: validate a run
config, print its schema). The work itself is in ``orchestrator.run``; these parse and print."""
