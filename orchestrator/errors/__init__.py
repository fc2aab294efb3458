"""The one exception tree of CLI Council, listed here: each family is a module of this
package (``base``, ``usage``, ``run``, ``workspace``, ``secret``, ``locks``, ``forge``, ``state``;
``stops``: which errors stop a run), and every name is imported from ``orchestrator.errors``.

Callers catch the level they can act on; outside libraries' and git's errors (git, portalocker,
PyYAML, pydantic) are translated into this tree at the wrapper that calls them, so no caller
ever needs to import an outside library to handle a failure::

    CouncilError                      anything CLI Council raises on purpose
    ├── ConfigError                   a run config (YAML) is unreadable or invalid; carries issues
    ├── PluginError                   a plugin failed to load or registered something bad
    │   └── AdapterError              an adapter is unknown, misconfigured or its binary is missing
    │       └── AdapterUnavailable    ...found by the check before a run writes anything (usage)
    ├── UsageError                    a value given on the command line names nothing there is
    ├── RunError                      a run cannot start or continue
    │   ├── CancelError               the task cannot be cancelled: it already ended
    │   ├── RequeueError              the task cannot be queued again as asked (retry, rebase)
    │   ├── WorkflowError             the workflow cannot go on as asked (no candidate to pick)
    │   ├── InvalidIdError            an id (task, session, adapter) fails the safe-id rule
    │   ├── OutOfSpace                a file system the run writes to is full: it stops, resumable
    │   └── RunLocked                 another orchestrator is running on the same repository
    ├── WorkspaceError                a worktree or path problem in the user's repository
    │   ├── PathEscapeError           a path resolves outside the root it must stay under
    │   ├── SecretInWork              a known key was in a CLI's files: masked, not landed
    │   ├── WorktreeBusy              processes still run inside a worktree that was to go
    │   ├── UnusableRepository        the repository or its .council cannot be used as it is
    │   ├── GitError                  a git command failed; carries argv and stderr
    │   │   └── RemotePushRefused     the shared remote refused a push (hook, protection,
    │   │                             access, unreachable); carries the server's message
    │   └── MergeContention           the base branch kept moving under the merge queue
    │       └── BaseLocked            a lock file of git's (a crash's leftover) blocks the base
    ├── LockError                     a lock could not be taken or released
    │   ├── LockTimeout               a lock stayed held by someone else until the timeout
    │   ├── LockUnusable              a lock file nobody holds cannot be used (a link, a full
    │   │                             directory in its place): a person must fix it first
    │   └── DeadlockError             waiting would close a cycle in the wait-for graph
    ├── ForgeError                    the forge (GitHub) refused or failed a request; carries the
    │   │                             status and the forge's own message, never the token
    │   ├── ForgeAuthError            no token, a wrong token (401) or one without the scope (403)
    │   ├── ForgeNotFound             the issue, pull request or repository is not there (404)
    │   ├── ForgeRefused              the forge refused the request as asked (422 validation)
    │   └── ForgeUnavailable          5xx or no connection after the retries, or a rate limit
    │                                 longer than the forge client may wait
    └── StateError                    the state store could not do what was asked
        ├── VersionConflict           `expected_version` did not match the stored version
        ├── StaleClaim                a write carried a fencing token that no longer holds
        ├── RecordNotFound            the record asked for does not exist
        ├── StateCorrupted            a record is damaged and no valid history could replace it
        ├── StateWriteError           the disk refused a state write (full, read-only, failing)
        └── StoreUnavailable          the state database cannot be reached (for now)
"""

from __future__ import annotations

from orchestrator.errors.base import (
    CouncilError,
)
from orchestrator.errors.forge import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgeRefused,
    ForgeUnavailable,
)
from orchestrator.errors.locks import (
    DeadlockError,
    LockError,
    LockTimeout,
    LockUnusable,
)
from orchestrator.errors.run import (
    CancelError,
    InvalidIdError,
    NothingToResume,
    OutOfSpace,
    RequeueError,
    RunError,
    RunLocked,
    WorkflowError,
)
from orchestrator.errors.secret import (
    CredentialInWork,
    SecretInHistory,
    SecretInWork,
    SecretScanLate,
)
from orchestrator.errors.state import (
    RecordNotFound,
    RecordRejected,
    StaleClaim,
    StateCorrupted,
    StateError,
    StateWriteError,
    StoreUnavailable,
    TaskInActiveSession,
    VersionConflict,
)
from orchestrator.errors.stops import (
    needs_repair,
    out_of_space,
    stops_the_run,
)
from orchestrator.errors.usage import (
    AdapterError,
    AdapterUnavailable,
    ConfigError,
    ConfigIssue,
    PlanRefused,
    PluginError,
    UsageError,
)
from orchestrator.errors.workspace import (
    BaseLocked,
    GitError,
    MergeContention,
    PathEscapeError,
    RemotePushRefused,
    UnusableRepository,
    WorkspaceError,
    WorktreeBusy,
)

__all__ = [
    "AdapterError",
    "AdapterUnavailable",
    "BaseLocked",
    "CancelError",
    "ConfigError",
    "ConfigIssue",
    "CouncilError",
    "CredentialInWork",
    "DeadlockError",
    "ForgeAuthError",
    "ForgeError",
    "ForgeNotFound",
    "ForgeRefused",
    "ForgeUnavailable",
    "GitError",
    "InvalidIdError",
    "LockError",
    "LockTimeout",
    "LockUnusable",
    "MergeContention",
    "NothingToResume",
    "OutOfSpace",
    "PathEscapeError",
    "PlanRefused",
    "PluginError",
    "RecordNotFound",
    "RecordRejected",
    "RemotePushRefused",
    "RequeueError",
    "RunError",
    "RunLocked",
    "SecretInHistory",
    "SecretInWork",
    "SecretScanLate",
    "StaleClaim",
    "StateCorrupted",
    "StateError",
    "StateWriteError",
    "StoreUnavailable",
    "TaskInActiveSession",
    "UnusableRepository",
    "UsageError",
    "VersionConflict",
    "WorkflowError",
    "WorkspaceError",
    "WorktreeBusy",
    "needs_repair",
    "out_of_space",
    "stops_the_run",
]
