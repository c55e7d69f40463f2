"""Run Streamlit with the pages' libraries already imported, so the first session does not wait for them.

    python -m inspection.dashboard.launch run dashboards/app.py --server.headless true ...

takes ``streamlit``'s own arguments. A fresh ``streamlit run`` imports the page scripts' libraries (pandas,
Altair, SQLAlchemy and Alembic, OpenCV, the package's store and dashboard modules) inside the first browser
session, and loads Altair's Vega-Lite schema at its first chart. Measured with
``python -m inspection.dashboard.bench --browser`` on the loaded 2-core development machine, the first page
opened on a fresh server took 4.0 s in a new tab through ``streamlit run`` and 2.5 s through this module (the
same page took 1.0 s once another had been opened). ``ui``, whose caches bind to the running server, is left to
the first session.
"""

from __future__ import annotations

import sys


def warm_imports() -> None:
    """Import what every page needs and build one chart, so that the Vega-Lite schema is loaded too."""
    import altair as alt
    import pandas as pd

    from inspection.dashboard import cards, charts, db, images, parts, reports, review, stations, versions  # noqa: F401

    alt.Chart(pd.DataFrame({"x": [0.0]})).mark_point().encode(x="x:Q").to_dict()


def main(argv: list[str] | None = None) -> None:
    """Warm the imports, then hand ``argv`` (default: this process's arguments) to Streamlit's command line."""
    warm_imports()
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    cli.main()  # exits with Streamlit's status


if __name__ == "__main__":
    main()
