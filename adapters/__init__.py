"""The built-in CLI adapters, each a pluggy plugin (see DESIGN.md, "Adapters")."""
