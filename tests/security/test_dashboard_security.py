"""Security review, issue 9: the dashboard's findings, each pinned by the tests that failed before the fix.

* finding 11, no login: ``inspection dashboard`` refuses a network address without one; pages show only the
  login form (or need the proxy's header) until the session has signed in;
* finding 12, record text rendered as Markdown: planted links and images show as text;
* finding 13, photos decoded without a size check: a PNG bomb and an oversized file are refused, with a note;
* finding 4, unauthenticated attempts: never a station, never in a station's counts, one line of their own;
* low, password in the DB URL: query-string secrets are masked too;
* process cleanup: a SIGTERM to ``inspection dashboard`` stops the Streamlit server it started.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.photos import png_bomb
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from inspection import cli
from inspection.commands import dashboard
from inspection.dashboard import auth, config, fixtures, parts, stations, ui
from inspection.dashboard.drift import DriftFinding
from inspection.dashboard.text import WORD_JOINER, escape_markdown
from inspection.imageio import MAX_FILE_BYTES
from inspection.loadtest import free_port
from inspection.store.models import Inspection
from inspection.store.photos import LocalPhotoStore

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboards" / "app.py")
N_RECORDS = 400
USER, PASSWORD = "alice", "correct horse battery"
EVIL_LINK = "[click](http://evil.example/x)"
EVIL_IMAGE = "![x](http://evil.example/a.png)"
UNAUTHENTICATED = "(unauthenticated)"  # the service's station id for attempts without a valid API key
# What GFM turns into links after escapes are resolved: bare URLs and e-mail addresses.
AUTOLINK = re.compile(r"(?i)https?://|www\.|[-.\w+]+@[-\w]+(\.[-\w]+)+")


def text_nodes(markdown: str) -> str:
    """The text a Markdown parser keeps once backslash escapes are resolved (where autolinks are looked for)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def plain(markdown: str) -> str:
    """The text a reader sees: escapes resolved, invisible word joiners dropped."""
    return text_nodes(markdown).replace(WORD_JOINER, "")


def renders_as_text(markdown: str) -> bool:
    """No link or image syntax, and nothing an autolink pass would turn into a link."""
    return "](" not in markdown and "![" not in markdown and not AUTOLINK.search(text_nodes(markdown))


def add_records(url: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert records as the service would store them; returns their ids."""
    engine = fixtures.create_schema(url)
    with Session(engine) as session:
        objs = [Inspection(source="api", **row) for row in rows]
        session.add_all(objs)
        session.commit()
        ids = [o.id for o in objs]
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Records (with photos in a photo store) for four stations; no reports, no models."""
    root = tmp_path_factory.mktemp("security-data")
    photos = fixtures.write_fixture_photos(root / "photos", per_type=1, size=64)
    keys = fixtures.store_fixture_photos(photos, root / "photo-store")
    fixtures.fill_fixture_db(f"sqlite:///{root / 'records.db'}", N_RECORDS, photos=photos, photo_keys=keys)
    return root


@pytest.fixture
def data_env(monkeypatch: pytest.MonkeyPatch, data_root: Path, tmp_path: Path) -> dict[str, str]:
    env = {
        "INSPECTION_REPORTS": str(tmp_path / "reports"),
        "INSPECTION_DB": f"sqlite:///{data_root / 'records.db'}",
        "INSPECTION_MODELS": str(tmp_path / "models"),
        "INSPECTION_PHOTOS": str(data_root / "photo-store"),
        "INSPECTION_DASHBOARD_NO_MODELS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(config.ENV_AUTH_CONFIG, raising=False)
    monkeypatch.delenv(config.ENV_AUTH_HEADER, raising=False)
    return env


@pytest.fixture
def own_db(monkeypatch: pytest.MonkeyPatch, data_env: dict[str, str], tmp_path: Path) -> str:
    """A fresh copy of the fixture records in this test's own database (so caches never mix them up)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    photos = fixtures.write_fixture_photos(tmp_path / "photos", per_type=1, size=64)
    keys = fixtures.store_fixture_photos(photos, tmp_path / "photo-store")
    fixtures.fill_fixture_db(url, N_RECORDS, photos=photos, photo_keys=keys)
    monkeypatch.setenv("INSPECTION_DB", url)
    monkeypatch.setenv("INSPECTION_PHOTOS", str(tmp_path / "photo-store"))
    return url


@pytest.fixture(scope="module")
def login_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("login") / "users.yaml"
    doc = {
        "credentials": {
            "usernames": {USER: {"name": "Alice Example", "password": auth.hash_password(PASSWORD)}}
        },
        "cookie": {"name": "inspection_test", "key": "k" * 40, "expiry_days": 1},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def run_app(page: str | None = None, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown_texts(at: AppTest) -> list[str]:
    """Every string the page hands to a Markdown-rendering element, with metric labels and values."""
    texts: list[str] = []
    for kind in ("markdown", "caption", "warning", "info", "error", "success", "title", "subheader"):
        texts += [str(e.value) for e in getattr(at, kind)]
    for m in at.metric:
        texts += [str(m.label), str(m.value)]
    return texts


def shows_record_data(at: AppTest) -> bool:
    sidebar = [str(c.value) for c in at.sidebar.caption]
    return bool(
        at.dataframe
        or at.metric
        or at.get("vega_lite_chart")
        or at.get("imgs")
        or any("Records:" in s for s in sidebar)
    )


# --- finding 11: no login --------------------------------------------------------------------------------


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    """Record the Streamlit launches instead of starting a server."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(dashboard, "launch", lambda cmd, env: calls.append((cmd, env)) or 0)
    monkeypatch.delenv(config.ENV_AUTH_CONFIG, raising=False)
    monkeypatch.delenv(config.ENV_AUTH_HEADER, raising=False)
    return calls


def test_lan_host_without_a_login_is_refused(launches: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dashboard", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert (
        "refusing" in err and "--auth-config" in err and "--hash-password" in err and "--auth-header" in err
    )
    assert not launches


def test_insecure_no_auth_starts_with_a_warning(
    launches: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dashboard", "--host", "0.0.0.0", "--insecure-no-auth"]) == 0
    assert "WARNING" in capsys.readouterr().err and len(launches) == 1


def test_loopback_without_a_login_still_starts(launches: list[Any]) -> None:
    assert cli.main(["dashboard"]) == 0
    assert cli.main(["dashboard", "--host", "::1"]) == 0
    assert len(launches) == 2
    assert all(config.ENV_AUTH_CONFIG not in env and config.ENV_AUTH_HEADER not in env for _, env in launches)


def test_lan_host_with_a_login_file_starts_and_hands_it_to_the_pages(
    launches: list[Any], login_file: Path
) -> None:
    assert cli.main(["dashboard", "--host", "0.0.0.0", "--auth-config", str(login_file)]) == 0
    ((_, env),) = launches
    assert env[config.ENV_AUTH_CONFIG] == str(login_file.resolve())


def test_auth_header_is_only_trusted_on_loopback(
    launches: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dashboard", "--host", "0.0.0.0", "--auth-header", "X-Forwarded-User"]) == 2
    assert "loopback" in capsys.readouterr().err
    assert cli.main(["dashboard", "--auth-header", "X-Forwarded-User"]) == 0
    ((_, env),) = launches
    assert env[config.ENV_AUTH_HEADER] == "X-Forwarded-User"


def test_login_file_needs_hashed_passwords_and_a_real_cookie_key(
    launches: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"credentials": {"usernames": {"bob": {"password": "hunter2hunter2"}}},
                                     "cookie": {"key": "k" * 40}}))  # fmt: skip
    assert cli.main(["dashboard", "--host", "0.0.0.0", "--auth-config", str(plain)]) == 2
    assert "bcrypt" in capsys.readouterr().err
    weak = tmp_path / "weak.yaml"
    weak.write_text(yaml.safe_dump({"credentials": {"usernames": {"bob": {"password": auth.hash_password("x" * 8)}}},
                                    "cookie": {"key": "short"}}))  # fmt: skip
    with pytest.raises(auth.AuthConfigError, match="cookie.key"):
        auth.load_login_config(weak)
    assert not launches


def test_hash_password_reads_stdin_and_prints_a_bcrypt_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["dashboard", "--hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert auth.BCRYPT_RE.match(hashed) and auth.check_password(PASSWORD, hashed)
    assert not auth.check_password("wrong password", hashed)
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert cli.main(["dashboard", "--hash-password"]) == 2


def test_pages_show_only_the_login_form_until_signed_in(
    data_env: dict[str, str], login_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.ENV_AUTH_CONFIG, str(login_file))
    for page in (None, "part_lookup", "stations", "models"):
        at = run_app(page)
        assert [t.label for t in at.text_input] == ["Username", "Password"], page
        assert not shows_record_data(at), page
        assert not any("line-1" in t or "P1-" in t for t in markdown_texts(at)), page


def test_wrong_password_shows_nothing(
    data_env: dict[str, str], login_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.ENV_AUTH_CONFIG, str(login_file))
    at = run_app("part_lookup")
    at.text_input[0].set_value(USER)
    at.text_input[1].set_value("not the password")
    at.button[0].click()
    at.run()
    assert not at.exception
    assert any("incorrect" in e.value for e in at.error)
    assert not shows_record_data(at)


@pytest.fixture
def fresh_throttle() -> Iterator[None]:
    """The dashboard's count of failed sign-ins is per server process; start and leave it empty."""
    ui._sign_in_throttle.clear()
    yield
    ui._sign_in_throttle.clear()


def test_repeated_wrong_passwords_make_the_address_wait(
    data_env: dict[str, str], login_file: Path, monkeypatch: pytest.MonkeyPatch, fresh_throttle: None
) -> None:
    monkeypatch.setenv(config.ENV_AUTH_CONFIG, str(login_file))
    at = run_app("part_lookup")
    for attempt in range(auth.MAX_FAILED_SIGN_INS):
        at.text_input[0].set_value(USER)
        at.text_input[1].set_value(f"wrong password {attempt}")
        at.button[0].click()
        at.run()
        assert any("incorrect" in e.value for e in at.error), attempt
    at.run()  # a rerun without a new attempt counts nothing, and now the address must wait
    assert any("Too many failed sign-ins" in e.value for e in at.error)
    assert not at.text_input and not shows_record_data(at)
    fresh = run_app("part_lookup")  # another session from the same address waits too: no form to try
    assert not fresh.text_input and any("try again in 15 minute(s)" in e.value for e in fresh.error)


def test_sign_in_throttle_counts_failures_in_a_sliding_window() -> None:
    now = [1000.0]
    throttle = auth.SignInThrottle(limit=3, window_s=60.0, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("10.0.0.5")
        now[0] += 10
    assert throttle.wait_s("10.0.0.5") == 0.0, "two failures are allowed"
    throttle.failed("10.0.0.5")
    assert throttle.wait_s("10.0.0.5") == pytest.approx(40.0), "until the first failure is a minute old"
    assert throttle.wait_s("10.0.0.6") == 0.0, "other addresses are not held back"
    now[0] += 40
    assert throttle.wait_s("10.0.0.5") == 0.0
    now[0] += 60
    assert throttle.wait_s("10.0.0.5") == 0.0 and not throttle._failures, "old failures are forgotten"


def test_correct_credentials_show_the_pages(
    data_env: dict[str, str], login_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.ENV_AUTH_CONFIG, str(login_file))
    at = run_app("part_lookup")
    at.text_input[0].set_value(USER)
    at.text_input[1].set_value(PASSWORD)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Part lookup" and len(at.dataframe[0].value) == 200
    at.run()  # in a browser, storing the re-login cookie reruns the script: the form is gone then
    assert "Username" not in [t.label for t in at.text_input] and at.dataframe
    assert any("Signed in as Alice Example" in c.value for c in at.sidebar.caption)
    at.switch_page("views/stations.py")
    at.run()
    assert at.title[0].value == "Stations" and at.metric


def test_proxy_header_names_the_user_or_nothing_is_shown(
    data_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.ENV_AUTH_HEADER, "X-Forwarded-User")
    at = run_app("part_lookup")
    assert any("X-Forwarded-User" in e.value for e in at.error)
    assert not shows_record_data(at)
    monkeypatch.setattr(ui, "request_headers", lambda: {"x-forwarded-user": "bob"})
    at = run_app("part_lookup")
    assert at.dataframe and any("Signed in as bob" in c.value for c in at.sidebar.caption)


# --- finding 12: record text rendered as Markdown ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [EVIL_LINK, EVIL_IMAGE, "see http://evil.example and WWW.evil.example", "mail ops@evil.example",
     "<img src=x>", "**bold** _it_ `code`", ":red[alarm] :material/home: $x^2$", "line one\n# heading\n> quote"],
)  # fmt: skip
def test_escape_markdown_leaves_no_markdown_syntax(text: str) -> None:
    escaped = escape_markdown(text)
    assert renders_as_text(escaped) and "\n" not in escaped
    assert not re.search(r":[a-z]", text_nodes(escaped)), "no :directive or :emoji: can match"
    # Resolving the escapes and dropping the invisible joiners gives the text back as stored (on one line).
    assert plain(escaped) == " ".join(text.split())


def test_planted_record_text_shows_as_text_on_part_lookup(
    own_db: str, data_env: dict[str, str], tmp_path: Path
) -> None:
    (record_id,) = add_records(
        own_db,
        [{"station_id": EVIL_LINK, "part_id": EVIL_IMAGE, "status": "rejected", "reason": "[r](http://evil.example)",
          "message": f"{EVIL_IMAGE} then {EVIL_LINK}, www.evil.example, ops@evil.example", "image_path": "/tmp/[p](http://evil.example)",
          "created_at": fixtures.FIXTURE_END + timedelta(hours=1)}],
    )  # fmt: skip
    at = run_app("part_lookup")
    at.text_input(key="part_id").set_value(EVIL_IMAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="record").value == record_id
    texts = markdown_texts(at)
    assert any("Rejected" in t for t in texts) and any("record #" in t for t in texts)
    for text in texts:
        assert renders_as_text(text), text
    assert f"Station {escape_markdown(EVIL_LINK)}" in " ".join(texts)


def test_drift_warning_escapes_the_station_id() -> None:
    finding = DriftFinding(EVIL_LINK, "drift", 0.3, 40.0, -0.2, 100, 100, "periodic", ["periodic noise rose"])
    warning = stations.drift_warning(finding)
    assert renders_as_text(warning) and warning.startswith("**\\[click\\]")


# --- finding 13: photos decoded without a size check -------------------------------------------------------


@pytest.fixture(scope="module")
def bomb_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalPhotoStore, str, Path]:
    """A 12000x12000 PNG bomb (144 MB decoded) kept in a photo store and as a file."""
    root = tmp_path_factory.mktemp("bomb")
    data = png_bomb(12000)
    assert len(data) < 1_000_000
    store = LocalPhotoStore(root / "store")
    path = root / "bomb.png"
    path.write_bytes(data)
    return store, store.put(data), path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("where", ["store", "path"])
def test_png_bomb_is_refused_before_it_is_decoded(
    bomb_store: tuple[LocalPhotoStore, str, Path], where: str
) -> None:
    store, key, path = bomb_store
    record = {"image_key": key} if where == "store" else {"image_path": str(path)}
    tracemalloc.start()
    try:
        photo = parts.load_photo(record, store)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert photo.gray is None
    assert "photo not shown: image is 12000x12000; the limit is" in plain(photo.note)
    assert peak < 20_000_000, f"decoding allocated {peak:,} bytes"


class SpyStore(LocalPhotoStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fetched: list[str] = []

    def get(self, key: str) -> bytes:
        self.fetched.append(key)
        return super().get(key)


def test_oversized_photo_is_not_read(tmp_path: Path) -> None:
    store = SpyStore(tmp_path / "store")
    key = "ab/" + "ab" * 32 + ".png"
    (tmp_path / "store" / "ab").mkdir(parents=True)
    with open(tmp_path / "store" / key, "wb") as fh:  # sparse: no disk used
        fh.truncate(MAX_FILE_BYTES + 1)
    photo = parts.load_photo({"image_key": key}, store)
    assert photo.gray is None and f"{MAX_FILE_BYTES + 1:,} bytes" in plain(photo.note)
    assert store.fetched == []
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    photo = parts.load_photo({"image_path": str(big)}, None)
    assert photo.gray is None and "the limit is" in photo.note


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_part_lookup_shows_a_note_instead_of_a_bomb(
    own_db: str,
    data_env: dict[str, str],
    bomb_store: tuple[LocalPhotoStore, str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, key, path = bomb_store
    monkeypatch.setenv("INSPECTION_PHOTOS", str(store.root))
    add_records(own_db, [{"station_id": "line-1", "part_id": "BOMB-1", "status": "rejected", "reason": "too_large",
                          "message": "image is 12000x12000", "image_key": key, "image_path": str(path),
                          "created_at": fixtures.FIXTURE_END + timedelta(hours=1)}])  # fmt: skip
    at = run_app("part_lookup")
    at.text_input(key="part_id").set_value("BOMB-1")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    notes = [plain(i.value) for i in at.info]
    assert any("photo not shown: image is 12000x12000; the limit is" in n for n in notes), notes
    assert not at.get("imgs")


# --- finding 4: unauthenticated attempts -------------------------------------------------------------------


def test_unauthenticated_attempts_are_no_station(own_db: str, data_env: dict[str, str]) -> None:
    from inspection.dashboard import db

    before = stations.station_summary(db.open_engine(own_db))
    n = 60
    add_records(own_db, [{"station_id": UNAUTHENTICATED, "part_id": None, "status": "rejected",
                          "reason": "missing_api_key" if i % 2 else "unauthorized", "client_address": "10.0.0.66",
                          "message": "no valid API key", "created_at": fixtures.FIXTURE_END + timedelta(minutes=i)}
                         for i in range(n)])  # fmt: skip
    engine = db.open_engine(own_db)
    assert UNAUTHENTICATED not in stations.list_stations(engine)
    summary = stations.station_summary(engine)
    assert summary.equals(before) and int(summary["records"].sum()) == N_RECORDS
    span = stations.time_span(engine)
    assert span is not None and span.end <= fixtures.FIXTURE_END
    series = stations.station_timeseries(engine, 86400)
    mix = stations.noise_mix_timeseries(engine, 86400)
    drift = stations.station_drift(engine, min_records=1)
    for ids in (series["station_id"], mix["station_id"], [f.station_id for f in drift]):
        assert UNAUTHENTICATED not in set(ids)
    assert int(series["rejected"].sum()) == int(summary["rejected"].sum())
    assert stations.unauthenticated_attempts(engine) == n
    assert (
        stations.unauthenticated_attempts(engine, start=fixtures.FIXTURE_END + timedelta(minutes=30))
        == n - 30
    )

    at = run_app("stations")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stations"] == "4" and metrics["Records"] == f"{N_RECORDS:,}"
    assert f"{n} unauthenticated attempts in the window" in " ".join(c.value for c in at.caption)
    assert UNAUTHENTICATED not in set(at.dataframe[0].value["station_id"])


def test_unauthenticated_station_matches_the_service() -> None:
    ids = pytest.importorskip("inspection.ingest.ids")
    assert ids.UNAUTHENTICATED_STATION == stations.UNAUTHENTICATED_STATION == UNAUTHENTICATED


# --- low: password in the database URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql+psycopg://inspect:hunter2@db/inspection", "hunter2"),
        ("postgresql://inspect@db/inspection?password=hunter2&sslmode=require", "hunter2"),
        ("postgresql://db/inspection?PWD=hunter2", "hunter2"),
        ("postgresql://db/inspection?api_token=hunter2", "hunter2"),
        ("postgresql://db/inspection?Secret=hunter2&sslkey=/etc/k", "hunter2"),
        ("postgresql://inspect:hunter2@[::1/inspection", "hunter2"),
    ],
)
def test_redact_url_hides_every_password(url: str, secret: str) -> None:
    shown = config.redact_url(url)
    assert secret not in shown and "***" in shown


def test_redact_url_keeps_what_is_not_secret() -> None:
    assert config.redact_url("sqlite:////var/lib/records.db") == "sqlite:////var/lib/records.db"
    shown = config.redact_url("postgresql://inspect@db:5433/inspection?sslmode=require&password=x")
    assert shown.startswith("postgresql://inspect@db:5433/inspection?") and "sslmode=require" in shown


def test_sidebar_never_shows_the_query_password(
    data_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECTION_DB", "postgresql+psycopg://inspect@127.0.0.1:1/nowhere?password=hunter2")
    at = run_app("models")
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "Records:" in captions and "hunter2" not in captions and "password=***" in captions


# --- process cleanup ---------------------------------------------------------------------------------------


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def dashboard_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, set[int]]]:
    """``inspection dashboard`` on a free loopback port, in a session of its own; every group killed after."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to find the Streamlit child")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECTION_")}
    env.update(PYTHONPATH=str(REPO), INSPECTION_HOME=str(tmp_path), INSPECTION_DASHBOARD_NO_MODELS="1")
    log = open(tmp_path / "dashboard.log", "wb")  # noqa: SIM115 - closed in the finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspection.cli", "dashboard", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    groups = {proc.pid}
    try:
        yield proc, port, groups
    finally:
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()


def test_sigterm_to_the_command_stops_the_streamlit_server(
    dashboard_process: tuple[subprocess.Popen[bytes], int, set[int]], tmp_path: Path
) -> None:
    proc, port, groups = dashboard_process
    deadline = time.monotonic() + 90
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        log = (tmp_path / "dashboard.log").read_text(errors="replace")[-2000:]
        assert proc.poll() is None and time.monotonic() < deadline, f"dashboard did not start:\n{log}"
        time.sleep(0.5)
    servers = children(proc.pid)
    assert servers, "the command runs Streamlit as a child process"
    groups.update(os.getpgid(pid) for pid in servers)

    proc.send_signal(signal.SIGTERM)  # to the command only, as a service manager or `kill PID` would
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while (answers(port) or any(alive(pid) for pid in servers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not answers(port), "the Streamlit server still answers after its command was killed"
    assert not any(alive(pid) for pid in servers), "the Streamlit child outlived its command"


# --- low: two photos of one part with opposite verdicts ------------------------------------------------------


def test_part_lookup_warns_of_a_verdict_conflict(own_db: str, data_env: dict[str, str]) -> None:
    when = fixtures.FIXTURE_END + timedelta(hours=2)
    add_records(
        own_db,
        [{"station_id": "line-1", "part_id": "P-CONFLICT", "status": "ok", "verdict": verdict, "conflict": True,
          "defect_probability": p, "created_at": when} for verdict, p in (("ok", 0.1), ("defective", 0.9))],
    )  # fmt: skip
    at = run_app("part_lookup")
    at.text_input(key="part_id").set_value("P-CONFLICT")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(
        w.value.startswith(f"Conflict: another photo of part {escape_markdown('P-CONFLICT')} ")
        for w in at.warning
    )
