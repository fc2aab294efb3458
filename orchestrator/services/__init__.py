"""Each session's own network and services (``orchestrator.services``): a network namespace
held for the session's life (``session_net``), the ``services:`` of the run config started in
it (``service``), and a session's set of them (``session``)."""
