"""How a run is shown: ``council status`` (``status_cmd``) and its ``--watch``
(``status_watch``), which run it means when given no config (``run_finder``), the summary table
``run``, ``resume`` and ``status`` print and how a run's command ends (``summary``), and the live
board of ``council run`` on a terminal (``live_board``). Light on purpose: ``council status``
imports this room and must not import the run machinery."""
