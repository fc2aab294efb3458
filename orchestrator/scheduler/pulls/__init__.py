"""Landing through pull requests (``landing.via: pull_request``) as a part of the run.

- ``landing``: an attempt's work opened as a pull request instead of merged;
- ``follower``: each open pull request followed on the forge (reviews, checks, merges, feedback
  rounds) until it lands or closes, composed of ``outcomes`` (what a merged, closed or not
  merged pull request writes, the resolve round, what it waits for), ``feedback`` (a feedback
  round: what trusted reviewers and checks said, answered by a build on the task's branch) and
  ``cancelled`` (a cancelled task's pull request closed, by ``council cancel`` or the follower);
- ``part``: the loop beside the tick, its nudge and its say in the run's end;
- ``recorded``: what a task's record says of its pull request, read without the forge (an
  attempt's feedback round, a landing through the forge); ``leftovers``: the part's follower in
  a run that lands by merge, answering for an earlier run's pull requests from the records
  alone, so that such a run never imports the forge's modules.
"""
