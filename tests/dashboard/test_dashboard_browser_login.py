"""End to end: ``inspection dashboard --auth-config users.yaml`` in headless Chromium.

Before sign-in a page shows the login form and nothing else: no page title, no navigation, no data sources, no
metric, chart, table or photo. A wrong password is refused with a clear message and still shows nothing; the
right one shows the page. A deep link (``/part-lookup?part=ID``) opened before sign-in ends on that part once
signed in. The browser is that of ``test_dashboard_browser``; the server is this module's own, on the same
fixture data, with a login file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_dashboard_browser import (  # noqa: F401 - fixtures, used by name
    alerts,
    assert_no_exception,
    browser,
    dashboard_server,
    full_page_screenshot,
    periodic_part,
    pytestmark,
    wait_rendered,
)

from inspection.dashboard import auth

USER, NAME, PASSWORD = "alice", "Alice Example", "correct horse battery"
COOKIE = "inspection_browser_test"
FORM = "Sign in to the inspection dashboard"  # inspection.dashboard.ui.LOGIN_FIELDS
REFUSED = "Username or password is incorrect."
# Anything a signed-out visitor must not see: page content, navigation and where the data lives.
DATA = {
    "title": "h1",
    "navigation": '[data-testid="stSidebarNav"]',
    "metric": '[data-testid="stMetric"]',
    "chart": '[data-testid="stVegaLiteChart"]',
    "table": '[data-testid="stDataFrame"], [data-testid="stTable"]',
    "photo": '[data-testid="stImage"]',
}


@pytest.fixture(scope="module")
def login_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A login file in docs/dashboard.md's format: one user with a bcrypt hash, a re-login cookie for a day."""
    path = tmp_path_factory.mktemp("login") / "users.yaml"
    doc = {
        "credentials": {"usernames": {USER: {"name": NAME, "password": auth.hash_password(PASSWORD)}}},
        "cookie": {"name": COOKIE, "key": "k" * 40, "expiry_days": 1},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def login_server(
    data_env: dict[str, str], login_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with dashboard_server(data_env, tmp_path_factory, ["--auth-config", str(login_file)]) as base:
        yield base


def wait_login_form(driver, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Wait until the login form is drawn and Streamlit is idle."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        inputs = driver.find_elements(
            By.CSS_SELECTOR, 'input[aria-label="Username"], input[aria-label="Password"]'
        )
        running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        if FORM in body and len(inputs) == 2 and not running:
            return
        time.sleep(0.3)
    raise AssertionError(f"no login form: {driver.find_element(By.TAG_NAME, 'body').text[:500]!r}")


def assert_shows_nothing(driver, data_env: dict[str, str], where: str) -> None:  # type: ignore[no-untyped-def]
    """Only the login form: no page content, no navigation, no data source."""
    from selenium.webdriver.common.by import By

    shown = {what: len(driver.find_elements(By.CSS_SELECTOR, css)) for what, css in DATA.items()}
    assert not any(shown.values()), f"{where}: shown before sign-in: {shown}"
    body = driver.find_element(By.TAG_NAME, "body").text
    for secret in ("Data sources", "records.db", data_env["INSPECTION_REPORTS"], "Signed in as"):
        assert secret not in body, f"{where}: {secret!r} shown before sign-in"
    assert_no_exception(driver, where)


def sign_in(driver, user: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Type a user name and password into the login form and press its button."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for label, value in (("Username", user), ("Password", password)):
        box = driver.find_element(By.CSS_SELECTOR, f'input[aria-label="{label}"]')
        box.send_keys(Keys.CONTROL, "a")  # as a user replaces what is there (clear() bypasses React's state)
        box.send_keys(Keys.DELETE)
        box.send_keys(value)
    click_button(driver, "Login")


def click_button(driver, label: str) -> None:  # type: ignore[no-untyped-def]
    """Click the button labelled ``label`` once it can be clicked."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(
        EC.element_to_be_clickable((By.XPATH, f"//button[normalize-space()='{label}']"))
    ).click()


def wait_cookie(driver, present: bool, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Wait until the re-login cookie is set (``present``) or gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (driver.get_cookie(COOKIE) is not None) == present:
            return
        time.sleep(0.3)
    raise AssertionError(f"re-login cookie {'never set' if present else 'still set'}: {driver.get_cookies()}")


def wait_refused(driver, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if REFUSED in alerts(driver)["error"]:
            return
        time.sleep(0.3)
    raise AssertionError(f"no refusal shown: {alerts(driver)}")


def test_login_form_refuses_a_wrong_password_and_admits_the_right_one(
    login_server: str,
    browser,  # noqa: F811
    data_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    shots = tmp_path_factory.mktemp("screenshots")  # never docs/screenshots: those come from a real run
    print(f"screenshots in {shots}")
    t0 = time.monotonic()
    browser.get(f"{login_server}/")
    wait_login_form(browser)
    print(f"login form: rendered in {time.monotonic() - t0:.1f} s")
    assert_shows_nothing(browser, data_env, "login form")
    assert not alerts(browser)["error"], alerts(browser)  # no complaint before anything was typed
    full_page_screenshot(browser, shots / "login-form.png")

    sign_in(browser, USER, "not the password")
    wait_refused(browser)
    wait_login_form(browser)
    assert_shows_nothing(browser, data_env, "wrong password")
    full_page_screenshot(browser, shots / "login-refused.png")

    t0 = time.monotonic()
    sign_in(browser, USER, PASSWORD)
    overview = (
        ["Noisy, routed denoising", f"Signed in as {NAME}", "Sign out"],
        {'[data-testid="stMetric"]': 4, '[data-testid="stSidebarNav"] a': 6},
    )
    try:
        wait_rendered(browser, "Overview", *overview)
        print(f"signed in: Overview rendered in {time.monotonic() - t0:.1f} s")
        wait_cookie(browser, present=True)  # signed in for expiry_days, across reloads
        wait_rendered(browser, "Overview", *overview)  # the page reruns once the cookie is stored
    finally:
        browser.save_screenshot(str(shots / "login-after-right-password.png"))
    assert FORM not in browser.find_element(By.TAG_NAME, "body").text  # the form is gone once signed in
    assert not alerts(browser)["error"], alerts(browser)
    assert_no_exception(browser, "Overview")
    full_page_screenshot(browser, shots / "login-signed-in.png")

    # Signing out shows the form again, and nothing else, in this tab and on a reload (the cookie is gone).
    click_button(browser, "Sign out")
    wait_login_form(browser)
    assert_shows_nothing(browser, data_env, "signed out")
    wait_cookie(browser, present=False)
    browser.get(f"{login_server}/stations")
    wait_login_form(browser)
    assert_shows_nothing(browser, data_env, "reload after signing out")


def test_a_deep_link_opened_before_sign_in_ends_on_its_part(
    login_server: str,
    browser,  # noqa: F811
    data_env: dict[str, str],
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()  # signed out: no re-login cookie from the test before
    part_id, record_id = periodic_part(data_env["INSPECTION_DB"])
    browser.get(f"{login_server}/part-lookup?part={part_id}")
    wait_login_form(browser)
    assert_shows_nothing(browser, data_env, "deep link before sign-in")
    assert part_id not in browser.find_element(By.TAG_NAME, "body").text

    sign_in(browser, USER, PASSWORD)
    wait_rendered(
        browser, "Part lookup", [f"record #{record_id}", "1 matching record,", f"Signed in as {NAME}"], {}
    )
    box = browser.find_element(By.CSS_SELECTOR, '[data-testid="stTextInput"] input')
    assert box.get_attribute("value") == part_id  # the link's part id survived the sign-in
    assert f"part={part_id}" in browser.current_url
    assert_no_exception(browser, "Part lookup")
