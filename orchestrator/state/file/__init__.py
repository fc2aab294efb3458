"""The file backend of the state store: versioned JSON records under ``.council/state/``,
written atomically (``fsops``), with history, checkpoints and the event log; a record's files
(``record_files``) and the event log (``log``) each in a room of their own."""
