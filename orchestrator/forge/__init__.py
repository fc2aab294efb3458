"""The forge: issues in, pull requests out (``base`` the protocol and its values, ``github``
GitHub's REST API through githubkit, ``identity`` the token and the repository, ``pacing`` the
ETag cache and the bounded waits)."""
