"""Maintenance work orders: the scheduling policy, the task service, completion and labels (DESIGN.md §1 Act/Learn)."""
