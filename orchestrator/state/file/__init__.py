"""The file backend of the state store: versioned JSON records under ``.council/state/``,
written atomically (``fsops``), with history, checkpoints and the event log."""
