"""Landing through pull requests (``landing.via: pull_request``) as a part of the run.

- ``landing``: an attempt's work opened as a pull request instead of merged;
- ``follower``: each open pull request followed on the forge (reviews, checks, merges, feedback
  rounds) until it lands or closes;
- ``part``: the loop beside the tick, its nudge and its say in the run's end.
"""
