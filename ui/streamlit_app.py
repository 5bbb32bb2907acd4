"""Smart Maintenance console (Streamlit): ``streamlit run ui/streamlit_app.py``.

The shell: page configuration and navigation. Pages live in ``ui/pages/``; they reach the platform through
``ui.api_client`` only (the UI never touches the database).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts ui/ on sys.path, not the project root: make `core` and `ui` importable.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st

TITLE = "Smart Maintenance"
PAGES_DIR = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title=TITLE, page_icon="🛠️", layout="wide")

navigation = st.navigation(
    {
        "Operations": [
            st.Page(PAGES_DIR / "fleet.py", title="Fleet overview", icon="🏭", default=True),
            st.Page(PAGES_DIR / "sensor_explorer.py", title="Sensor explorer", icon="📉"),
            st.Page(PAGES_DIR / "alerts.py", title="Alerts", icon="🚨"),
            st.Page(PAGES_DIR / "work_orders.py", title="Work orders", icon="🛠️"),
        ],
        "Machine learning": [
            st.Page(PAGES_DIR / "models.py", title="Models", icon="🧠"),
            st.Page(PAGES_DIR / "gauntlets.py", title="Gauntlets and experiments", icon="🏁"),
        ],
        "Data and platform": [
            st.Page(PAGES_DIR / "ingest.py", title="Ingest", icon="📥"),
            st.Page(PAGES_DIR / "master_dataset.py", title="Master dataset", icon="📈"),
            st.Page(PAGES_DIR / "admin.py", title="Admin", icon="🔑"),
            st.Page(PAGES_DIR / "overview.py", title="Platform status", icon="🩺"),
        ],
    }
)
st.sidebar.caption(f"{TITLE} · console")
navigation.run()
