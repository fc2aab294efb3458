"""CLI Council: run several AI coding CLIs in parallel on one git repository, losing nothing."""
