"""Council mode (best of N) in the scheduler: the candidates' records (``members``), the
step that compares them and merges the winner (``step``) and what follows its end
(``closing``); what candidates are called is
``orchestrator.scheduler.candidates``."""
