"""Spending: the cost ledger, budgets and quota admission (docs/architecture.md)."""
