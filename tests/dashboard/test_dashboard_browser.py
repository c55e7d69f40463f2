"""End to end: ``inspection dashboard`` on fixture data, every page opened in headless Chromium.

Screenshots go to a temporary folder: the pages' screenshots in docs/screenshots come from a real run
(docs/screenshots/take_screenshots.py), not from these fixtures. ``screenshot_dir`` sends the OOD browser test's
``stations-drift.png`` there with ``INSPECTION_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = next(
    (
        p
        for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
        if p and Path(p).exists()
    ),
    None,
)
CHROMEDRIVER = next(
    (p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).exists()), None
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
    ),
]

# url path, page title, texts that must be on the page, CSS selector -> minimum count
PAGES: list[tuple[str, str, list[str], dict[str, int]]] = [
    ("", "Overview", ["Noisy, routed denoising", "Gain from denoising", "reference VGG16", "Compare with an earlier report"],
     {'[data-testid="stMetric"]': 4, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg': 2}),
    ("noise", "Noise", ["Confusion matrix", "Accuracy against noise level", "Noise-type accuracy"],
     {'[data-testid="stImage"] img': 8, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg': 2}),
    ("denoisers", "Denoisers", ["Before, denoised, clean", "PSNR (dB)", "notch"],
     {'[data-testid="stImage"] img': 6, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg': 1}),
    ("stations", "Stations", ["line-3 drifts from its baseline", "periodic noise rose", "Noise-type mix"],
     {'[data-testid="stMetric"]': 4, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg': 1,
      '[data-testid="stDataFrame"]': 1}),
    ("part-lookup", "Part lookup", ["Verdict", "Noise probabilities", "Judged by", "record #"],
     {'[data-testid="stImage"] img': 2, '[data-testid="stMetric"]': 4, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg': 1}),
    ("models", "Models", ["In use: noise", "noise-2026.10.1", "Metrics by version"],
     {'[data-testid="stMetric"]': 3, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg': 1}),
]  # fmt: skip


@contextmanager
def dashboard_server(
    sources: dict[str, str], tmp_path_factory: pytest.TempPathFactory, args: Sequence[str] = ()
) -> Iterator[str]:
    """``inspection dashboard [args]`` on ``sources`` (INSPECTION_REPORTS, _DB, _PHOTOS, _MODELS) on a free
    loopback port, through the page bench's own launcher, which stops its whole process group on the way out;
    yields its base URL. The server's log must hold no traceback."""
    from inspection.dashboard.bench import running_dashboard

    log = tmp_path_factory.mktemp("dashboard-log") / "streamlit.log"
    # Loading models costs a torch import in the server; the pipeline path has its own tests.
    env = {
        **{
            k: sources[k]
            for k in ("INSPECTION_REPORTS", "INSPECTION_DB", "INSPECTION_PHOTOS", "INSPECTION_MODELS")
        },
        "PYTHONPATH": str(REPO),
        "INSPECTION_DASHBOARD_NO_MODELS": "1",
    }
    with running_dashboard(env, log, args) as base:
        yield base
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def server(data_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``inspection dashboard`` on the fixture data; yields its base URL."""
    with dashboard_server(data_env, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--window-size=1500,1100", "--force-device-scale-factor=1",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("INSPECTION_UPDATE_SCREENSHOTS") == "1":
        out = REPO / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")


def wait_rendered(
    driver, title: str, texts: list[str], selectors: dict[str, int], timeout: float = 60
) -> None:  # type: ignore[no-untyped-def]
    """Wait until the page shows its title, every text and enough of each element, and Streamlit is idle.

    An element that a rerun replaces while it is read (stale) only means: not yet.
    """
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    missing: list[str] = []
    while time.monotonic() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        try:
            titles = [h.text for h in driver.find_elements(By.TAG_NAME, "h1")]
        except StaleElementReferenceException:
            time.sleep(0.3)
            continue
        missing = [f"title {title!r}"] if title not in titles else []
        missing += [f"text {t!r}" for t in texts if t not in body]
        missing += [
            f"{n}x {sel}"
            for sel, n in selectors.items()
            if len(driver.find_elements(By.CSS_SELECTOR, sel)) < n
        ]
        running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        if not missing and not running:
            return
        time.sleep(0.3)
    raise AssertionError(f"page {title!r} is missing {missing}")


ALERT_KINDS = ("Success", "Info", "Warning", "Error")


def alerts(driver) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """The texts of the alerts on the page by kind (``success``, ``info``, ``warning``, ``error``), without the
    icon's name (a Material icon is a ligature: its name is text in the page)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):  # an alert a rerun replaces while it is read: read them all again
        try:
            return {
                kind.lower(): [
                    a.text
                    for a in driver.find_elements(
                        By.CSS_SELECTOR,
                        f'[data-testid="stAlertContent{kind}"] [data-testid="stMarkdownContainer"]',
                    )
                ]
                for kind in ALERT_KINDS
            }
        except StaleElementReferenceException:
            time.sleep(0.3)
    raise AssertionError("the page's alerts kept changing while they were read")


def assert_no_exception(driver, where: str) -> None:  # type: ignore[no-untyped-def]
    """No traceback and no Streamlit exception box on the page."""
    from selenium.webdriver.common.by import By

    assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text, f"{where}: traceback shown"
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), (
        f"{where}: exception shown"
    )


def full_page_screenshot(driver, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Grow the window to the app's scroll height (Streamlit scrolls inside its main container), then shoot."""
    height = driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        "return Math.max(m.scrollHeight, document.body.scrollHeight);"
    )
    driver.set_window_size(1500, min(max(int(height) + 40, 900), 4000))
    time.sleep(1.0)  # let charts re-layout to the new size
    driver.save_screenshot(str(path))
    driver.set_window_size(1500, 1100)


def periodic_part(db_url: str) -> tuple[str, int]:
    """The newest scored part at the drifting station whose photo had periodic noise."""
    from inspection.dashboard import db, parts

    found = parts.find_parts(db.open_engine(db_url), stations=["line-3"], limit=100)
    row = found[(found["noise_type"] == "periodic") & (found["status"] == "ok")].iloc[0]
    return str(row["part_id"]), int(row["id"])


def test_every_page_in_chromium(
    server: str, browser, data_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path_factory.mktemp("screenshots")  # docs/screenshots holds a real run's (take_screenshots.py)
    part_id, record_id = periodic_part(data_env["INSPECTION_DB"])
    for i, (path, title, texts, selectors) in enumerate(PAGES, start=1):
        t0 = time.monotonic()
        browser.get(f"{server}/{path}")
        wait_rendered(browser, title, texts, selectors)
        print(f"{title}: rendered in {time.monotonic() - t0:.1f} s")
        if path == "part-lookup":  # look one part up by its id, as an engineer would
            box = WebDriverWait(browser, 30).until(
                EC.element_to_be_clickable((By.CSS_SELECTOR, '[data-testid="stTextInput"] input'))
            )
            box.click()
            box.send_keys(part_id, Keys.ENTER)
            wait_rendered(browser, title, [f"record #{record_id}", "Denoise this photo"], selectors)
            browser.find_element(By.XPATH, "//label[.//p[text()='Denoise this photo']]").click()
            wait_rendered(
                browser,
                title,
                [
                    f"record #{record_id}",
                    "1 matching record,",
                    "recomputed with the notch denoiser",
                    "periodic",
                ],
                selectors,
            )
        body = browser.find_element(By.TAG_NAME, "body").text
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDialog"]'), (
            f"{title}: a dialog is open"
        )
        assert "Traceback" not in body and not browser.find_elements(
            By.CSS_SELECTOR, '[data-testid="stException"]'
        )
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]'), (
            f"{title}: error shown"
        )
        shot = out / f"{i}-{path or 'overview'}.png"
        full_page_screenshot(browser, shot)
        assert shot.stat().st_size > 20_000

    # /overview is the landing page's own path (it once opened "Page not found").
    browser.get(f"{server}/overview")
    wait_rendered(browser, "Overview", ["Gain from denoising"], {})
    assert "Page not found" not in browser.find_element(By.TAG_NAME, "body").text
    # The sidebar navigation works too, not only direct URLs.
    browser.get(f"{server}/")
    wait_rendered(browser, "Overview", [], {})
    link = next(
        a
        for a in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
        if "Stations" in a.text
    )
    browser.execute_script("arguments[0].click();", link)
    wait_rendered(browser, "Stations", ["periodic noise rose"], {})


def test_a_deep_link_opens_only_the_linked_part(server: str, browser, data_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    part_id, record_id = periodic_part(data_env["INSPECTION_DB"])
    browser.get(f"{server}/part-lookup?part={part_id}")
    search_box = '[data-testid="stTextInput"] input'
    # the box too: on a busy machine the records' text can render before the search box does
    wait_rendered(browser, "Part lookup", [f"record #{record_id}", "1 matching record,"], {search_box: 1})
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    box = browser.find_element(By.CSS_SELECTOR, search_box)
    assert box.get_attribute("value") == part_id  # the link filled the part id in
