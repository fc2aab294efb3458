"""The scheduler: fills capacity with attempts from the task queue until every task is settled.
A small ``Scheduler`` composed of parts that each own their state."""
