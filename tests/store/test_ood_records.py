"""Out-of-distribution flags on records: kept from the result, NULL when not known, and a station's share."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from inspection.results import InspectionResult
from inspection.store import RecordStore
from inspection.store.records import ood_fields

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def result(ood: bool = False, ood_score: float | None = None, verdict: str = "ok") -> InspectionResult:
    return InspectionResult(
        noise_type="clean",
        noise_probability=0.97,
        noise_probabilities={"clean": 0.97, "gaussian": 0.01, "salt_pepper": 0.01, "periodic": 0.01},
        denoiser="identity",
        defect_probability=0.2,
        threshold=0.5,
        verdict=verdict,
        timings_ms={"total": 5.0},
        model_versions={"defect": "defect-v3"},
        conversion="gray8",
        height=64,
        width=64,
        review_reason="ood" if verdict == "review" else "",
        ood=ood,
        ood_score=ood_score,
    )


@pytest.fixture
def store(db_url: str):
    with RecordStore(db_url) as s:
        yield s


def save(store: RecordStore, station: str, i: int, res: InspectionResult | None, minutes: float) -> int:
    return store.add_inspection(
        station_id=station,
        part_id=f"P-{i:04d}",
        image_sha256=f"{i:064x}",
        image_path=None,
        result=res,
        status="ok" if res is not None else "rejected",
        reason=None if res is not None else "corrupt",
        created_at=T0 + timedelta(minutes=minutes),
    )


def test_ood_fields_round_trip_and_unknown_stays_null(store: RecordStore) -> None:
    flagged = save(store, "s1", 1, result(True, 4.25, verdict="review"), 0)
    in_range = save(store, "s1", 2, result(False, 0.31), 1)
    no_ood_model = save(store, "s1", 3, result(False, None), 2)
    rejected = save(store, "s1", 4, None, 3)

    rec = store.get_inspection(flagged)
    assert rec is not None
    assert rec["ood"] is True and rec["ood_score"] == pytest.approx(4.25)
    assert rec["verdict"] == "review" and rec["review_reason"] == "ood"
    rec = store.get_inspection(in_range)
    assert rec is not None and rec["ood"] is False and rec["ood_score"] == pytest.approx(0.31)
    for rid in (no_ood_model, rejected):  # not checked: unknown, not "in range"
        rec = store.get_inspection(rid)
        assert rec is not None and rec["ood"] is None and rec["ood_score"] is None


def test_ood_fields_of_a_result() -> None:
    assert ood_fields(result(True, 2.0)) == (True, 2.0)
    assert ood_fields(result(False, 0.5)) == (False, 0.5)
    assert ood_fields(result(False, None)) == (None, None)
    assert ood_fields(dataclasses.replace(result(), ood=True)) == (True, None)


def test_ood_share_counts_the_newest_known_flags_of_one_station(store: RecordStore) -> None:
    assert store.ood_share("s1") == (0, 0)
    # 10 old photos in range, then 6 new ones of which 4 out of range; an unknown flag and a rejection between
    for i in range(10):
        save(store, "s1", i, result(False, 0.2), i)
    for i in range(10, 16):
        save(store, "s1", i, result(i % 3 != 0, 2.0 if i % 3 else 0.4), i)
    save(store, "s1", 16, result(False, None), 16)
    save(store, "s1", 17, None, 17)
    for i in range(100, 120):  # another station, all flagged: never counted for s1
        save(store, "s2", i, result(True, 3.0), i)

    assert store.ood_share("s1") == (4, 16)
    assert store.ood_share("s1", last=6) == (4, 6)
    assert store.ood_share("s1", last=3) == (2, 3)  # P-0015 (in range), P-0014, P-0013
    assert store.ood_share("s2") == (20, 20)
    assert store.ood_share("s2", last=0) == (0, 0)

    # "newest" is by the time stored, not by id: a late-written old record does not count as new
    save(store, "s1", 50, result(False, 0.1), -60)
    assert store.ood_share("s1", last=3) == (2, 3)


def test_ood_share_defaults_to_the_warning_window(store: RecordStore) -> None:
    from inspection.ood import WARN_WINDOW

    for i in range(WARN_WINDOW + 5):
        save(store, "s1", i, result(i < 5, 2.0 if i < 5 else 0.1), i)  # the 5 oldest are flagged
    assert store.ood_share("s1") == (0, WARN_WINDOW)
