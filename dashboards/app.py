"""The engineers' dashboard: ``inspection dashboard`` runs ``streamlit run dashboards/app.py``.

Sources come from the environment (INSPECTION_REPORTS, INSPECTION_DB, INSPECTION_MODELS); see docs/dashboard.md.
"""

import sys
from pathlib import Path

import streamlit as st

try:
    import inspection  # noqa: F401
except ImportError:  # a checkout run without `pip install -e .`: the package sits beside dashboards/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

st.set_page_config(
    page_title="Inspection dashboard", page_icon=":material/precision_manufacturing:", layout="wide"
)

PAGES = [
    st.Page(
        "views/overview.py", title="Overview", icon=":material/insights:", default=True, url_path="overview"
    ),
    st.Page("views/noise.py", title="Noise", icon=":material/grain:", url_path="noise"),
    st.Page("views/denoisers.py", title="Denoisers", icon=":material/auto_fix_high:", url_path="denoisers"),
    st.Page("views/stations.py", title="Stations", icon=":material/factory:", url_path="stations"),
    st.Page("views/part_lookup.py", title="Part lookup", icon=":material/search:", url_path="part-lookup"),
    st.Page("views/models.py", title="Models", icon=":material/model_training:", url_path="models"),
]

st.navigation(PAGES).run()
