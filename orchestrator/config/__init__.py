"""The run config: YAML in, validated pydantic models out, or a ``ConfigError`` naming the
file, line and field (``load``). Vocabulary: imports nothing of ours but errors, ids and
models."""
