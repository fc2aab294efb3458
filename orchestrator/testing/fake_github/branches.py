"""A branch of the fake GitHub's repository deleted, as GitHub does it: the open pull requests
asking to land on it are retargeted to the base of the merged pull request whose head it was
(GitHub's behaviour since 2020, with or without ``delete_branch_on_merge``), or closed when
no pull request merged from it."""

from __future__ import annotations

from orchestrator.testing.fake_github.site import GitHubSite

__all__ = ["delete_branch"]


def delete_branch(site: GitHubSite, branch: str) -> None:
    """A person (or ``delete_branch_on_merge``) deletes ``branch`` (module doc)."""
    with site.lock:
        merged_into = next(
            (
                r.pull.base
                for r in site.issues.values()
                if r.pull is not None and r.pull.merged and r.pull.head == branch
            ),
            None,
        )
        for record in site.issues.values():
            if record.pull is None or record.state != "open" or record.pull.base != branch:
                continue
            if merged_into is not None:
                record.pull.base = merged_into
                record.updated = site.tick()
            else:
                site.close(record.number)
        site.git.delete(branch)
