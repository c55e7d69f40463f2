"""The dashboard app under test, and opening one of its pages in Streamlit's AppTest."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def open_page(page: str) -> AppTest:
    """Run the app, switch to ``views/<page>.py`` (``overview`` is the landing page) and check it raised nothing."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
