"""The file backend's event log: ``events.jsonl`` appended and its subscribers (``event_log``),
rotated into compressed archives trimmed with old sessions (``event_archive``), and followed by
any process for the records' changes (``log_changes``), woken when it may have grown
(``log_wake``)."""
