"""The state store's own commands: ``council state`` (``state_cmd``: conflicts, resolve,
verify, history; ``state_health_cmd``: health and import-legacy) and ``council db``
(``db_cmd``: a throwaway local PostgreSQL server for team mode)."""
