"""Helpers shared by the console's pages: API access with caching and error display, formatting, charts."""
