"""The fake model's parts: the script (``steps``), what it means for a given CLI (``answers``),
and one module per wire protocol (``anthropic``, ``responses``, ``chat``, ``gemini``).
``orchestrator.testing.fake_model`` puts them behind an HTTP server."""
