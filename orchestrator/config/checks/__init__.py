"""The checks of a run config that span several fields (``run``, ``tasks``): names that must
refer to something, cycles. Each problem is a field path and a message (``problems``), which
the YAML loader puts on the line of that field; the checks that need more than the config
(plugin options, referenced variables) are ``orchestrator.config.adapter_checks``."""
