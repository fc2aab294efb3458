"""What one phase hands the next: the handoff document (``document``), assembled from what the
CLI said and what the orchestrator read from git (``assemble``, ``facts``), rendered into the
next phase's prompt (``prompts``), and review's verdict read back (``review``)."""
