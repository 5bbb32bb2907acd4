"""Streamlit console. It talks to the API only (``ui.api_client``), never to the database."""
