"""The engineers' dashboard: data functions behind the Streamlit pages in ``dashboards/``.

Everything a page shows is computed here, in plain functions that take a path or an SQLAlchemy
engine and return data frames, typed records or images; the page scripts only lay them out.
Streamlit itself is imported only by :mod:`inspection.dashboard.ui`.
"""
