"""Screenshots of every dashboard page from a real run, as in docs/dashboard.md (Screenshots).

    python docs/screenshots/take_screenshots.py OUT_DIR HOME

HOME holds ``reports/`` (``INSPECTION_HOME=HOME inspection demo``) and ``serve/`` (``inspection load --workdir
HOME/serve``). Starts ``inspection dashboard`` on them in its own process group (stopped at the end), opens each
page in headless Chromium (Debian's chromium and chromium-driver) and writes the PNGs to OUT_DIR.
"""

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from inspection.dashboard.bench import _chromium, running_dashboard

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
home = Path(sys.argv[2])
db = home / "serve" / "records.db"
con = sqlite3.connect(db)
defective = (
    con.execute(
        "select id from inspections where verdict='defective' and noise_type='periodic' order by id desc limit 1"
    ).fetchone()
    or con.execute("select id from inspections where verdict='defective' order by id desc limit 1").fetchone()
)
rid = defective[0]
print("record", rid)
# The page bench's launcher: inspection dashboard in its own process group, stopped with it on the way out.
env = {
    "INSPECTION_REPORTS": str(home / "reports"),
    "INSPECTION_DB": f"sqlite:///{db}",
    "INSPECTION_PHOTOS": str(home / "serve" / "photos"),
}


def idle(d, title, timeout=120):
    t = time.time()
    while time.time() - t < timeout:
        h1 = [h.text for h in d.find_elements(By.TAG_NAME, "h1")]
        if (
            title in h1
            and not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
            and not d.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
        ):
            time.sleep(1.5)
            if not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
                return
        time.sleep(0.3)
    raise RuntimeError(f"{title} not idle")


def shoot(d, path, full=True):
    if full:
        h = d.execute_script(
            "const m = document.querySelector('[data-testid=\"stMain\"]') || document.body; return Math.max(m.scrollHeight, document.body.scrollHeight);"
        )
        d.set_window_size(1400, min(max(int(h) + 40, 900), 4000))
        time.sleep(1.5)
    d.save_screenshot(str(path))
    d.set_window_size(1400, 1100)
    body = d.find_element(By.TAG_NAME, "body").text
    errs = d.find_elements(
        By.CSS_SELECTOR, '[data-testid="stException"], [data-testid="stAlertContentError"]'
    )
    print(path.name, "errors:", len(errs), "Traceback" in body)


with running_dashboard(env, home / "dashboard.log") as base:
    chromium, chromedriver = _chromium()
    o = webdriver.ChromeOptions()
    o.binary_location = chromium
    for a in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1400,1100",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service(chromedriver), options=o)
    d.set_page_load_timeout(120)
    try:
        for name, path, title in [
            ("1-overview", "", "Overview"),
            ("2-noise", "noise", "Noise"),
            ("3-denoisers", "denoisers", "Denoisers"),
            ("4-stations", "stations", "Stations"),
            ("5-part-lookup", f"part-lookup?record={rid}", "Part lookup"),
            ("part_lookup_heat_map", f"part-lookup?record={rid}&heat=1", "Part lookup"),
            ("review-queue", "part-lookup?view=Review+queue", "Part lookup"),
            ("6-models", "models", "Models"),
        ]:
            d.get(f"{base}/{path}")
            idle(d, title)
            if name == "part_lookup_heat_map":
                time.sleep(3)
                idle(d, title)
            if name == "review-queue":
                d.set_window_size(1400, 1800)
                time.sleep(1.5)
                shoot(d, out / f"{name}.png", full=False)
                continue
            shoot(d, out / f"{name}.png")
            if name == "6-models":
                d.get(f"{base}/{path}")
                idle(d, title)
                shoot(d, out / "models_cards.png", full=False)
    finally:
        d.quit()
print("log tracebacks:", "Traceback" in (home / "dashboard.log").read_text())
