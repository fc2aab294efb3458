"""The PostgreSQL backend of the state store: several workstations, one queue (``store``),
and a throwaway local cluster to try it on one machine (``cluster``)."""
