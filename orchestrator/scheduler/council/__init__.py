"""Council mode (best of N) in the scheduler: the candidates' records (``members``) and the
step that compares them and merges the winner (``step``); what candidates are called is
``orchestrator.scheduler.candidates``."""
