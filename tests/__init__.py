"""The test suite, laid out like the code: tests/<package>/ for the tests of orchestrator/<package>
(tests/e2e/ for whole runs under faults, tests/project/ for the repository as shipped),
tests/support/ for the helpers they share."""
