"""Composition root: what the API, the CLI and the tests build to run the platform (bus, handlers, agents, workers)."""
