"""Read-side query API (issue 4 point 6): schemas and the service behind ``apps/api/routers/queries.py``."""
