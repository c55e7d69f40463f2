"""The review queue on the Part lookup page: order, counts, labelling, who labels, and escaping."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers.dashboard import APP
from sqlalchemy.orm import Session
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from inspection.dashboard import auth, config, db, fixtures, review, ui
from inspection.dashboard.text import escape_markdown
from inspection.store.models import Inspection
from inspection.store.records import RecordStore

END = fixtures.FIXTURE_END
EVIL_PART = "[x](http://evil.example/a.png)"

# name -> (station, part, hours before END, verdict, conflict, extra fields)
QUEUED: dict[str, tuple[str, str, float, str, bool, dict[str, Any]]] = {
    "r_new": ("line-2", "R-NEW", 1.0, "review", False, {"kind": "crack", "review_reason": "uncertain"}),
    "r_evil": ("line-2", EVIL_PART, 2.0, "review", False, {"review_reason": "ood"}),
    "r_old": ("line-1", "R-OLD", 3.0, "review", False, {"review_reason": "uncertain"}),
    "r_done": ("line-1", "R-DONE", 0.5, "review", False, {"review_reason": "uncertain"}),  # labelled below
    # Part C-A at line-1: ok, defective, and a review photo (which queues with the review verdicts).
    "ca_ok": ("line-1", "C-A", 5.0, "ok", True, {}),
    "ca_def": ("line-1", "C-A", 4.0, "defective", True, {"kind": "inclusion"}),
    "ca_review": ("line-1", "C-A", 4.2, "review", True, {"review_reason": "uncertain"}),
    # Part C-B at line-3 has the newest conflicting photo, so its group comes first although its other photo is
    # the oldest of all.
    "cb_ok": ("line-3", "C-B", 6.0, "ok", True, {}),
    "cb_def": ("line-3", "C-B", 3.5, "defective", True, {}),
    # Not queued: the same part id at another station agrees with itself; a plain ok record.
    "other_station": ("line-4", "C-B", 3.0, "ok", False, {}),
}
REVIEW_ORDER = ["r_new", "r_evil", "r_old", "ca_review"]
CONFLICT_ORDER = ["cb_def", "cb_ok", "ca_def", "ca_ok"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A small records database (plus photos) with the queued records above and one label."""
    root = tmp_path_factory.mktemp("review-queue")
    photos = fixtures.write_fixture_photos(root / "photos", per_type=1, size=64)
    keys = fixtures.store_fixture_photos(photos, root / "photo-store")
    url = f"sqlite:///{root / 'records.db'}"
    fixtures.fill_fixture_db(url, 60, photos=photos, photo_keys=keys)
    paths = [p for ps in photos.values() for p in ps]
    engine = fixtures.create_schema(url)
    with Session(engine) as session:
        rows = {}
        for i, (name, (station, part, hours, verdict, conflict, extra)) in enumerate(QUEUED.items()):
            p = 0.5 if verdict == "review" else (0.9 if verdict == "defective" else 0.1)
            rows[name] = Inspection(
                source="api", status="ok", station_id=station, part_id=part, verdict=verdict,
                conflict=conflict, created_at=END - timedelta(hours=hours), defect_probability=p,
                threshold=0.5, noise_type="periodic", noise_probability=0.93, denoiser="notch",
                image_path=str(paths[i % len(paths)]), image_key=keys[str(paths[i % len(paths)])], **extra,
            )  # fmt: skip
        session.add_all(rows.values())
        session.commit()
        ids = {name: row.id for name, row in rows.items()}
    engine.dispose()
    with RecordStore(url, migrate=False) as store:
        store.add_label(ids["r_done"], verdict="ok", labelled_by="carol", note="checked by hand")
    return root, ids


@pytest.fixture
def queue_db(
    template: tuple[Path, dict[str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, int]]:
    """A fresh copy of the template database for this test, and the sources pointing at it."""
    root, ids = template
    shutil.copy(root / "records.db", tmp_path / "records.db")
    url = f"sqlite:///{tmp_path / 'records.db'}"
    monkeypatch.setenv("INSPECTION_DB", url)
    monkeypatch.setenv("INSPECTION_PHOTOS", str(root / "photo-store"))
    monkeypatch.setenv("INSPECTION_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("INSPECTION_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("INSPECTION_DASHBOARD_NO_MODELS", "1")
    return url, ids


@pytest.fixture
def host() -> Iterator[None]:
    """The server listens on loopback, as ``inspection dashboard`` does by default."""
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")
    yield
    st_config.set_option("server.address", before)


def open_queue(at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/part_lookup.py")
    at.run()
    at.session_state["view"] = "Review queue"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def titles(at: AppTest) -> list[str]:
    """The card title of each queued record shown, in page order."""
    return [m.value for m in at.markdown if " · record #" in str(m.value)]


def labels_of(url: str, record_id: int) -> list[dict[str, Any]]:
    with RecordStore(url, migrate=False) as store:
        return store.list_labels(record_id)


def form_of(at: AppTest, record_id: int) -> tuple[Any, Any]:
    """The Confirm ok and Confirm defective buttons of one record's form."""
    buttons = {b.label: b for b in at.button if b.form_id == f"label-{record_id}"}
    return buttons["Confirm ok"], buttons["Confirm defective"]


# --- the query -------------------------------------------------------------------------------------------


def test_queue_order_and_counts(queue_db: tuple[str, dict[str, int]]) -> None:
    url, ids = queue_db
    engine = db.open_engine(url)
    queue = review.review_queue(engine, limit=50)
    by_id = {v: k for k, v in ids.items()}
    assert [by_id[i] for i in queue["id"]] == REVIEW_ORDER + CONFLICT_ORDER
    assert list(queue["section"]) == ["review"] * 4 + ["conflict"] * 4
    assert review.count_queue(engine) == review.QueueCounts(review=4, conflict=4, conflict_parts=2)
    # Paging keeps the order.
    assert list(review.review_queue(engine, limit=3, offset=3)["id"]) == list(queue["id"][3:6])
    # Conflicting photos of one part are one card; each review record is its own.
    groups = review.group_queue(queue)
    assert [(g.section, g.part_id, len(g.items)) for g in groups] == [
        ("review", "R-NEW", 1), ("review", EVIL_PART, 1), ("review", "R-OLD", 1), ("review", "C-A", 1),
        ("conflict", "C-B", 2), ("conflict", "C-A", 2),
    ]  # fmt: skip


def test_labelled_records_and_station_filter(queue_db: tuple[str, dict[str, int]]) -> None:
    url, ids = queue_db
    engine = db.open_engine(url)
    assert ids["r_done"] not in set(review.review_queue(engine, limit=50)["id"])
    everything = review.review_queue(engine, include_labelled=True, limit=50)
    done = everything.set_index("id").loc[ids["r_done"]]
    assert (done["label_verdict"], done["labelled_by"]) == ("ok", "carol")
    assert everything["id"].iloc[0] == ids["r_done"]  # the newest review verdict
    assert review.count_queue(engine, include_labelled=True).review == 5
    line3 = review.review_queue(engine, stations=["line-3"], limit=50)
    assert list(line3["id"]) == [ids["cb_def"], ids["cb_ok"]]
    assert review.count_queue(engine, stations=["line-3"]) == review.QueueCounts(0, 2, 1)
    assert review.kinds_seen(engine) == ["crack", "inclusion"]


# --- who may label ---------------------------------------------------------------------------------------


def test_labeller_follows_the_login() -> None:
    form = config.AuthSettings(config_path=Path("users.yaml"))
    signed = review.labeller(form, user="alice", host="0.0.0.0")
    assert (signed.name, signed.attributed) == ("alice", True)
    assert not review.labeller(form, user=None, host="127.0.0.1").can_label
    assert not review.labeller(form, user="x" * 65, host="127.0.0.1").can_label
    proxy = review.labeller(config.AuthSettings(header="X-Forwarded-User"), user="bob", host="127.0.0.1")
    assert proxy.name == "bob"
    none = config.AuthSettings()
    local = review.labeller(none, user=None, host="::1")
    assert (local.name, local.attributed) == (review.NO_LOGIN_NAME, False) and "not attributed" in local.note
    # --insecure-no-auth on the network, or a bare `streamlit run` (listening everywhere): nobody labels.
    for host in ("0.0.0.0", "10.1.2.3", None):
        assert not review.labeller(none, user=None, host=host).can_label


def test_save_label_checks_what_it_stores(queue_db: tuple[str, dict[str, int]]) -> None:
    url, ids = queue_db
    alice = review.Labeller("alice", True, "")
    with RecordStore(url, migrate=False) as store:
        saved = review.save_label(
            store, ids["r_old"], verdict="defective", labeller=alice, kind=" Cold Shut ", note=" gate "
        )
        assert (saved["kind"], saved["note"], saved["labelled_by"]) == ("cold_shut", "gate", "alice")
        # An ok part has no defect kind.
        assert (
            review.save_label(store, ids["r_new"], verdict="ok", labeller=alice, kind="crack")["kind"] is None
        )
        with pytest.raises(review.LabelRefused, match="kind"):
            review.save_label(store, ids["r_new"], verdict="defective", labeller=alice, kind="***")
        with pytest.raises(review.LabelRefused, match="verdict"):
            review.save_label(store, ids["r_new"], verdict="review", labeller=alice)
        with pytest.raises(review.LabelRefused, match="gone"):
            review.save_label(store, 10**9, verdict="ok", labeller=alice)
        nobody = review.labeller(config.AuthSettings(), user=None, host="0.0.0.0")
        with pytest.raises(review.LabelRefused, match="may not label"):
            review.save_label(store, ids["r_new"], verdict="ok", labeller=nobody)
        assert [lab["verdict"] for lab in store.list_labels(ids["r_new"])] == ["ok"]


# --- the page --------------------------------------------------------------------------------------------


def test_page_shows_the_queue_in_order(queue_db: tuple[str, dict[str, int]], host: None) -> None:
    _, ids = queue_db
    at = open_queue()
    captions = [c.value for c in at.caption]
    assert "8 records to review: 4 with the review verdict, 4 photos of 2 parts that disagree." in captions
    shown = [int(t.rstrip("*").rsplit("#", 1)[1]) for t in titles(at)]
    assert shown == [ids[name] for name in REVIEW_ORDER + CONFLICT_ORDER]
    assert titles(at)[1].startswith(f"**Part {escape_markdown(EVIL_PART)} · station line\\-2 · ")
    groups = [m.value for m in at.markdown if "opposite verdicts" in str(m.value)]
    assert [g.split(" at station")[0] for g in groups] == ["**Part C\\-B", "**Part C\\-A"]
    assert [s.value for s in at.subheader] == list(review.SECTION_TITLES.values())
    images = [e for e in at.main if type(e).__name__ == "Image"]
    assert len(images) == 8, [i.value for i in at.info]  # every queued photo, none missing
    # What the model said, for the newest review record.
    facts = dict(at.dataframe[0].value.values)
    assert facts["Model verdict"] == "review" and facts["P(defective)"] == "50.0%"
    assert facts["Threshold"] == "0.50" and facts["Kind"] == "crack" and facts["Review reason"] == "uncertain"
    assert facts["Noise type"] == "periodic (93%)"
    # Without a login, on loopback: labels are allowed and say they are not attributed.
    assert any("not attributed" in w.value for w in at.warning)


def test_labelling_stores_who_and_what_and_the_item_leaves(
    queue_db: tuple[str, dict[str, int]], host: None
) -> None:
    url, ids = queue_db
    at = open_queue()
    rid = ids["r_old"]
    at.text_input(key=f"new-kind-{rid}").input("Porosity")
    at.text_input(key=f"note-{rid}").input("pores at the gate")
    form_of(at, rid)[1].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (label,) = labels_of(url, rid)
    assert label["verdict"] == "defective" and label["kind"] == "porosity"
    assert label["note"] == "pores at the gate" and label["labelled_by"] == review.NO_LOGIN_NAME
    assert any(f"Record #{rid}" in s.value and "labelled defective" in s.value for s in at.success)
    assert "7 records to review" in " ".join(c.value for c in at.caption)
    assert not any("R\\-OLD" in t for t in titles(at))
    # A kind seen in the records, picked from the list; the model's own kind is preselected.
    rid = ids["cb_def"]
    assert at.selectbox(key=f"kind-{rid}").value == ""
    at.selectbox(key=f"kind-{rid}").set_value("inclusion")
    form_of(at, rid)[1].click()
    at.run()
    assert labels_of(url, rid)[0]["kind"] == "inclusion"
    assert at.selectbox(key=f"kind-{ids['r_new']}").value == "crack"
    # Confirm ok keeps no kind.
    rid = ids["r_new"]
    form_of(at, rid)[0].click()
    at.run()
    assert [(lab["verdict"], lab["kind"]) for lab in labels_of(url, rid)] == [("ok", None)]
    assert "5 records to review" in " ".join(c.value for c in at.caption)


def test_labelled_records_can_be_shown(queue_db: tuple[str, dict[str, int]], host: None) -> None:
    at = open_queue()
    at.toggle(key="review_labelled").set_value(True)
    at.run()
    assert "9 records in the queue, labelled ones included" in " ".join(c.value for c in at.caption)
    assert any("Labelled ok by carol" in c.value for c in at.caption)


def test_signed_in_user_labels_under_their_name(
    queue_db: tuple[str, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ids = queue_db
    monkeypatch.setenv(config.ENV_AUTH_HEADER, "X-Forwarded-User")
    monkeypatch.setattr(ui, "request_headers", lambda: {"x-forwarded-user": "bob"})
    at = open_queue()
    assert any("Labels are stored as **bob**" in c.value for c in at.caption)
    assert not any("not attributed" in w.value for w in at.warning)
    form_of(at, ids["ca_ok"])[0].click()
    at.run()
    assert labels_of(url, ids["ca_ok"])[0]["labelled_by"] == "bob"


def test_login_file_user_labels_under_their_user_name(
    queue_db: tuple[str, dict[str, int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import yaml

    url, ids = queue_db
    users = tmp_path / "users.yaml"
    users.write_text(
        yaml.safe_dump(
            {
                "credentials": {"usernames": {"alice": {"name": "Alice Example", "password": auth.hash_password("correct horse")}}},
                "cookie": {"key": "k" * 40, "expiry_days": 0},
            }
        )
    )  # fmt: skip
    monkeypatch.setenv(config.ENV_AUTH_CONFIG, str(users))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input[0].set_value("alice")
    at.text_input[1].set_value("correct horse")
    at.button[0].click()
    at.run()
    at = open_queue(at)
    form_of(at, ids["r_evil"])[0].click()
    at.run()
    assert labels_of(url, ids["r_evil"])[0]["labelled_by"] == "alice"


def test_no_login_off_loopback_cannot_label(queue_db: tuple[str, dict[str, int]]) -> None:
    """--insecure-no-auth (or a bare streamlit run): the queue shows, its forms are off."""
    at = open_queue()  # server.address unset: Streamlit listens on every interface
    assert any("Labelling is off" in w.value for w in at.warning)
    assert at.button and all(b.disabled for b in at.button if b.label.startswith("Confirm"))


def test_record_text_is_escaped(queue_db: tuple[str, dict[str, int]], host: None) -> None:
    url, ids = queue_db
    at = open_queue()
    texts = [str(e.value) for kind in ("markdown", "caption", "warning", "success", "subheader")
             for e in getattr(at, kind)]  # fmt: skip
    assert not any("](" in t or "![" in t for t in texts)
    assert any(escape_markdown(EVIL_PART) in t for t in texts)
    form_of(at, ids["r_evil"])[0].click()
    at.run()
    (message,) = [s.value for s in at.success]
    assert "](" not in message and escape_markdown(EVIL_PART) in message


def test_empty_queue(monkeypatch: pytest.MonkeyPatch, dashboard_env: dict[str, str], host: None) -> None:
    at = open_queue()  # the fixture records have no review verdict and no conflict
    assert any("Nothing to review" in i.value for i in at.info)
