"""End to end: the Stations page in headless Chromium warns about the station whose photos left the models' range.

With ``INSPECTION_UPDATE_SCREENSHOTS=1`` the shot replaces ``docs/screenshots/stations-drift.png``. The server and
browser are those of ``test_dashboard_browser`` (``inspection dashboard`` on the fixture data).
"""

from __future__ import annotations

import time

import pytest
from test_dashboard_browser import (  # noqa: F401 - fixtures, used by name
    browser,
    full_page_screenshot,
    pytestmark,
    screenshot_dir,
    server,
    wait_rendered,
)

from inspection.dashboard import fixtures
from inspection.ood import WARN_WINDOW


def test_stations_page_shows_the_out_of_range_warning(
    server: str,  # noqa: F811
    browser,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    t0 = time.monotonic()
    browser.get(f"{server}/stations")
    warning = f"{fixtures.OOD_STATION}: these models were trained on"
    wait_rendered(
        browser,
        "Stations",
        [warning, f"of this station's last {WARN_WINDOW} photos are out of their range", "line-3 drifts"],
        {'[data-testid="stAlertContentWarning"]': 2, '[data-testid="stDataFrame"]': 1},
    )
    print(f"Stations: rendered in {time.monotonic() - t0:.1f} s")
    alerts = [a.text for a in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentWarning"]')]
    assert [a for a in alerts if warning in a], alerts
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    shot = screenshot_dir(tmp_path_factory) / "stations-drift.png"
    full_page_screenshot(browser, shot)
    assert shot.stat().st_size > 20_000
