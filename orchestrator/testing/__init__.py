"""Test helpers shipped with the package so backend and plugin authors can reuse them."""
