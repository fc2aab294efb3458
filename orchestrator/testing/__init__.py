"""Test tooling shipped with CLI Council, for its own tests and for plugin authors.

- ``orchestrator.testing.fake_model``: a local HTTP model server that speaks the wire protocols
  of the AI coding CLIs (Anthropic Messages, OpenAI Responses, OpenAI Chat Completions, Gemini)
  and answers from a script, so a real CLI can be driven offline and deterministically.
- ``orchestrator.testing.live_scenarios``: runs a real CLI through the real ``council run``
  against that server and says what landed.
"""
