"""What retraining keeps in the store: kinds and review verdicts, labelled photos, the golden set, promotions."""

from __future__ import annotations

import pytest

from inspection.results import InspectionResult
from inspection.store import RecordStore

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def make_result(verdict: str, kind: str = "", review_reason: str = "", p: float = 0.5) -> InspectionResult:
    return InspectionResult(
        noise_type="clean",
        noise_probability=0.9,
        noise_probabilities={"clean": 0.9, "gaussian": 0.1},
        denoiser="identity",
        defect_probability=p,
        threshold=0.5,
        verdict=verdict,
        kind=kind,
        kind_probability=0.8 if kind else 0.0,
        review_reason=review_reason,
    )


@pytest.fixture
def store(db_url: str):
    with RecordStore(db_url) as s:
        yield s


def save(store: RecordStore, part: str, sha: str, result: InspectionResult, station: str = "s1") -> int:
    key = f"{sha[:2]}/{sha}.png"
    return store.add_inspection(
        station_id=station, part_id=part, image_sha256=sha, image_path=None, result=result, image_key=key
    )


def test_kind_and_review_reason_are_stored_and_read_back(store: RecordStore) -> None:
    crack = save(store, "p1", SHA_A, make_result("defective", kind="crack", p=0.9))
    review = save(store, "p2", SHA_B, make_result("review", review_reason="uncertain", p=0.5))
    ok = save(store, "p3", SHA_C, make_result("ok", p=0.1))

    assert {k: store.get_inspection(crack)[k] for k in ("verdict", "kind", "review_reason")} == {
        "verdict": "defective",
        "kind": "crack",
        "review_reason": None,
    }
    assert {k: store.get_inspection(review)[k] for k in ("verdict", "kind", "review_reason")} == {
        "verdict": "review",
        "kind": None,
        "review_reason": "uncertain",
    }
    assert store.get_inspection(ok)["kind"] is None  # "" from the model is stored as no kind
    listed = store.list_inspections(verdict="review")
    assert [r["id"] for r in listed] == [review] and listed[0]["review_reason"] == "uncertain"
    assert store.count_inspections(verdict="review") == 1


def test_a_review_verdict_is_no_conflict_but_opposite_verdicts_are(store: RecordStore) -> None:
    save(store, "p1", SHA_A, make_result("ok", p=0.1))
    second = save(store, "p1", SHA_B, make_result("review", review_reason="uncertain"))
    assert store.get_inspection(second)["conflict"] is False
    third = save(store, "p1", SHA_C, make_result("defective", kind="crack", p=0.9))
    assert store.count_inspections(part_id="p1", conflict=True) == 3
    assert store.get_inspection(third)["conflict"] is True


def test_labelled_photos_give_the_newest_label_per_record(store: RecordStore) -> None:
    first = save(store, "p1", SHA_A, make_result("ok", p=0.1))
    second = save(store, "p2", SHA_B, make_result("ok", p=0.2))
    save(store, "p3", SHA_C, make_result("ok", p=0.3))  # never labelled
    store.add_label(first, verdict="ok", labelled_by="alice")
    store.add_label(first, verdict="defective", kind="crack", labelled_by="bob")
    store.add_label(second, verdict="ok", labelled_by="alice")

    photos = store.labelled_photos()
    assert [(p.inspection_id, p.verdict, p.kind, p.labelled_by) for p in photos] == [
        (first, "defective", "crack", "bob"),
        (second, "ok", None, "alice"),
    ]
    assert photos[0].image_sha256 == SHA_A and photos[0].image_key == f"aa/{SHA_A}.png"
    assert photos[0].labelled_at.tzinfo is not None
    with pytest.raises(ValueError, match="must be one of"):  # a person's verdict is never "review"
        store.add_label(first, verdict="review", labelled_by="alice")


def test_golden_set_only_grows_and_keeps_its_first_label(store: RecordStore) -> None:
    rid = save(store, "p1", SHA_A, make_result("ok", p=0.1))
    assert store.golden_hashes() == set()
    added = store.add_golden(
        [
            {"sha256": SHA_A, "label": "ok", "inspection_id": rid},
            {"sha256": SHA_B.upper(), "label": "defective", "kind": "crack"},
        ],
        added_by="alice",
    )
    assert added == 2 and store.golden_hashes() == {SHA_A, SHA_B}
    again = store.add_golden(
        [{"sha256": SHA_A, "label": "defective"}, {"sha256": SHA_C, "label": "ok"}], added_by="bob"
    )
    assert again == 1
    rows = {r["sha256"]: r for r in store.list_golden()}
    assert rows[SHA_A]["label"] == "ok" and rows[SHA_A]["added_by"] == "alice"  # frozen: not overwritten
    assert rows[SHA_A]["inspection_id"] == rid and rows[SHA_B]["kind"] == "crack"
    assert store.add_golden([], added_by="alice") == 0

    with pytest.raises(ValueError, match="64-hex-digit"):
        store.add_golden([{"sha256": "not-a-hash", "label": "ok"}], added_by="alice")
    with pytest.raises(ValueError, match="label must be one of"):
        store.add_golden([{"sha256": "d" * 64, "label": "review"}], added_by="alice")
    assert store.golden_hashes() == {SHA_A, SHA_B, SHA_C}  # a refused batch adds nothing


def test_promotions_are_recorded_and_listed_newest_first(store: RecordStore) -> None:
    comparison = {"accuracy": {"live": 0.95, "candidate": 0.97}, "kinds": {"crack": {"recall": [0.9, 0.93]}}}
    first = store.record_promotion("/models", "v2", "v1", "promote", "alice", comparison)
    store.record_promotion(
        "/models", "v3", "v2", "refuse", "alice", {"accuracy": {"drop": 0.04}}, note="worse"
    )
    store.record_promotion("/other", "v9", None, "promote", "bob", None)
    last = store.record_promotion("/models", "v1", "v2", "rollback", "carol", None, note="line 3 complaints")

    assert first["comparison"] == comparison and first["decided_at"].endswith("+00:00")
    listed = store.list_promotions("/models")
    assert [(p["version"], p["previous"], p["action"]) for p in listed] == [
        ("v1", "v2", "rollback"),
        ("v3", "v2", "refuse"),
        ("v2", "v1", "promote"),
    ]
    assert listed[0] == last and listed[1]["note"] == "worse"
    assert len(store.list_promotions()) == 4 and len(store.list_promotions(limit=1)) == 1
    assert store.list_promotions("/other")[0]["previous"] is None
    with pytest.raises(ValueError, match="must be one of"):
        store.record_promotion("/models", "v4", "v1", "approve", "alice", None)
