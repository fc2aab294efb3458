"""Processes: the one place that starts them (``command``), their environment (``env``), their
whole family and how to stop it (``tree``, ``stop``), who started them (``procid``), bounded
output (``output``), and who is using a path (``path_users``)."""
