"""The engineers' dashboard: ``inspection dashboard`` runs ``streamlit run dashboards/app.py``.

Sources come from the environment (INSPECTION_REPORTS, INSPECTION_DB, INSPECTION_MODELS, INSPECTION_PHOTOS),
and so does the login (INSPECTION_DASHBOARD_AUTH_CONFIG or INSPECTION_DASHBOARD_AUTH_HEADER); see
docs/dashboard.md. No page runs until the session has signed in.
"""

import sys
from pathlib import Path

import streamlit as st

try:
    import inspection  # noqa: F401
except ImportError:  # a checkout run without `pip install -e .`: the package sits beside dashboards/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inspection.dashboard import ui  # noqa: E402

st.set_page_config(
    page_title="Inspection dashboard", page_icon=":material/precision_manufacturing:", layout="wide"
)

PAGES = [
    # The default page is served at "/" whatever its url_path; the hidden second Overview makes /overview (a
    # bookmark, a link) open it too, not "Page not found". Page identity is the url_path, so the two differ.
    st.Page("views/overview.py", title="Overview", icon=":material/insights:", default=True, url_path="home"),
    st.Page("views/overview.py", title="Overview", url_path="overview", visibility="hidden"),
    st.Page("views/noise.py", title="Noise", icon=":material/grain:", url_path="noise"),
    st.Page("views/denoisers.py", title="Denoisers", icon=":material/auto_fix_high:", url_path="denoisers"),
    st.Page("views/stations.py", title="Stations", icon=":material/factory:", url_path="stations"),
    st.Page("views/part_lookup.py", title="Part lookup", icon=":material/search:", url_path="part-lookup"),
    st.Page("views/models.py", title="Models", icon=":material/model_training:", url_path="models"),
]

# Navigation comes first, so the requested page (a bookmark, a reload) survives the login form's reruns;
# the pages are listed only to a signed-in session, and none runs before require_login() lets it.
page = st.navigation(PAGES, position="sidebar" if ui.signed_in() else "hidden")
if ui.require_login():
    ui.start_counting(ui.sources().db_url)
    page.run()
