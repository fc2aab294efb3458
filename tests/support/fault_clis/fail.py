"""Always fails: an error on stderr, exit code 1."""

import sys

print("thinking...", flush=True)
print("Error: the model refused to cooperate", file=sys.stderr, flush=True)
sys.exit(1)
