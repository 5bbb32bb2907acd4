"""Maintenance work orders: the scheduling agent, the task service, completion and labels (DESIGN.md §1 Act/Learn);
their tables and policy are ``core.workorders``."""
