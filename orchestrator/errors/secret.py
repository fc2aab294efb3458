"""A secret in the work: a known key in a CLI's files or in what a task would land, a
credential nobody declared, a check that ran out of time. None of them lands."""

from __future__ import annotations

from orchestrator.errors.workspace import WorkspaceError

__all__ = ["CredentialInWork", "SecretInHistory", "SecretInWork", "SecretScanLate"]


class SecretInWork(WorkspaceError):
    """A secret of this environment was in files a CLI wrote: masked, then committed."""

    def __init__(self, branch: str, paths: list[str]) -> None:
        self.branch = branch
        self.paths = paths
        shown = ", ".join(paths[:10]) + (" ..." if len(paths) > 10 else "")
        super().__init__(
            f"the work held the value of a secret this run knows in {shown}: "
            f"replaced by *** before it was committed (branch {branch}); not landed, so a "
            "person can look (a CLI should read keys from the environment, never write them)"
        )


class SecretInHistory(WorkspaceError):
    """A commit a task would land holds the value of a secret the run knows (in its message,
    its author or committer, a path name or a file's content, as is or encoded): not landed,
    and not retried. ``findings`` name where and which secret (by its name, never its
    value); ``masked`` says whether the refs that held it now hold a masked rewrite."""

    outcome = "secret_in_work"  # the task's ``metadata.outcome``

    def __init__(self, branch: str, findings: list[str], masked: bool) -> None:
        self.branch = branch
        self.findings = findings
        self.masked = masked
        shown = "; ".join(findings[:10]) + (" ..." if len(findings) > 10 else "")
        kept = (
            f"the branch {branch} and every ref that held it now hold the work with each such "
            "value replaced by ***"
            if masked
            else f"the branch {branch} is kept as it is"
        )
        super().__init__(
            f"not landed: the work holds the value of a secret the run knows: {shown}; {kept} "
            "(a CLI should read keys from the environment, never write them)"
        )


class CredentialInWork(SecretInHistory):
    """The lines a task would land add what looks like a credential nobody declared
    (``safety.secret_detect``: detect-secrets' plugins and council's own shapes): not landed,
    not retried, the branch kept as it is (what to mask is not known). ``findings`` name each
    file, line and kind (and the value's SHA-256 fingerprint, never the value); ``late``, the
    file being read when the check's time ran out (it fails as a hit does)."""

    outcome = "credential_in_work"

    def __init__(
        self, branch: str, findings: list[str], late: str | None = None, budget: float = 0.0
    ) -> None:
        super().__init__(branch, findings, False)
        self.late = late
        shown = "; ".join(findings[:10]) + (" ..." if len(findings) > 10 else "")
        if late is not None:
            what = (
                f"{late} too large to check in time for credentials (the {budget:g} s a check "
                "may take, COUNCIL_SECRET_SCAN_SECONDS, ran out)"
                + (f"; found before it: {shown}" if findings else "")
            )
        else:
            what = f"the work adds what looks like a credential nobody declared: {shown}"
        self.args = (
            f"not landed: {what}; the branch {branch} is kept as it is. A value that is no "
            "credential may be allowed by a `pragma: allowlist secret` comment on its line, "
            "or in the run config's `secrets: allow:` by path and kind "
            '(`{path: "tests/fixtures/*", kind: "AWS Access Key"}`) or by its fingerprint '
            "(`{fingerprint: <sha256>}`)",
        )


class SecretScanLate(SecretInHistory):
    """What a task would land could not be read for secrets within the check's time budget
    (``merge.secret_gate``): it fails as a hit does, never passes. ``late`` names the file
    being read when the time ran out, then those never reached; ``findings`` what was found
    before."""

    def __init__(
        self,
        branch: str,
        late: list[str],
        unread: int,
        budget: float,
        findings: list[str],
        masked: bool,
    ) -> None:
        super().__init__(branch, findings, masked)
        self.late = late
        self.unread = unread
        shown = ", ".join(late[:10]) + (" ..." if len(late) > 10 else "")
        found = f"; found before it: {'; '.join(findings[:10])}" if findings else ""
        more = f" ({unread} more objects never read)" if unread else ""
        self.args = (
            f"not landed: {shown} too large to check in time for secrets the run knows (the "
            f"{budget:g} s a check may take, COUNCIL_SECRET_SCAN_SECONDS, ran out){more}"
            f"{found}; the branch {branch} is kept"
            + (" with each value found replaced by ***" if masked else " as it is"),
        )
