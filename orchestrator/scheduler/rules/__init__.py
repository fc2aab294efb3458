"""The scheduler's rules, pure functions of configuration and state: the queue's order and
readiness (``queue``), capacity slots (``capacity``), and how long a rate-limited task is
parked (``parks``)."""
