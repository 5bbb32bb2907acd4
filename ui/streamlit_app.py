"""Smart Maintenance console (Streamlit): ``streamlit run ui/streamlit_app.py``.

The shell: page configuration and navigation. Pages live in ``ui/views/``, not ``ui/pages/``: Streamlit
auto-discovers a ``pages/`` folder beside the main script, and after a restart a first visit to a deep link
(``/alerts``) got that folder's raw navigation and a narrow layout instead of this one. Pages reach the platform
through ``ui.api_client`` only (the console reads no files and imports nothing from ``core`` or ``apps``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts ui/ on sys.path, not the project root: make the `ui` package importable.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402  (after the sys.path fix above)

TITLE = "Smart Maintenance"
PAGES_DIR = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title=TITLE, page_icon=":material/build:", layout="wide")

navigation = st.navigation(
    {
        "Operations": [
            st.Page(PAGES_DIR / "fleet.py", title="Fleet overview", icon=":material/factory:", default=True),
            st.Page(PAGES_DIR / "sensor_explorer.py", title="Sensor explorer", icon=":material/monitoring:"),
            st.Page(PAGES_DIR / "alerts.py", title="Alerts", icon=":material/notifications_active:"),
            st.Page(PAGES_DIR / "incidents.py", title="Incidents", icon=":material/crisis_alert:"),
            st.Page(PAGES_DIR / "work_orders.py", title="Work orders", icon=":material/build:"),
        ],
        "Machine learning": [
            st.Page(PAGES_DIR / "models.py", title="Models", icon=":material/model_training:"),
            st.Page(PAGES_DIR / "gauntlets.py", title="Gauntlets and experiments", icon=":material/science:"),
        ],
        "Data and platform": [
            st.Page(PAGES_DIR / "ingest.py", title="Ingest", icon=":material/upload:"),
            st.Page(PAGES_DIR / "master_dataset.py", title="Master dataset", icon=":material/table_chart:"),
            st.Page(PAGES_DIR / "admin.py", title="Admin", icon=":material/key:"),
            st.Page(PAGES_DIR / "overview.py", title="Platform status", icon=":material/health_and_safety:"),
        ],
    }
)
st.sidebar.caption(f"{TITLE} · console")
navigation.run()
