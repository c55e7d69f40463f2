"""The drift rule: a station against its own baseline."""

from __future__ import annotations

import pytest

from inspection.dashboard.drift import WindowStats, chi_square, detect_drift, total_variation

BASE = {"clean": 700, "gaussian": 150, "salt_pepper": 50, "periodic": 100}


def test_total_variation_bounds() -> None:
    assert total_variation([0.5, 0.5], [0.5, 0.5]) == 0
    assert total_variation([1.0, 0.0], [0.0, 1.0]) == 1


def test_chi_square_drops_empty_categories() -> None:
    stat, df = chi_square([10, 0, 10], [10, 0, 10])
    assert stat == pytest.approx(0.0) and df == 1


def test_same_mix_is_stable() -> None:
    f = detect_drift("s1", WindowStats(BASE, 0.95), WindowStats({k: v // 10 for k, v in BASE.items()}, 0.94))
    assert f.status == "stable" and not f.reasons
    assert f.tv_distance == pytest.approx(0.0, abs=0.01)


def test_periodic_rise_is_flagged_with_its_cause() -> None:
    recent = WindowStats({"clean": 40, "gaussian": 10, "salt_pepper": 5, "periodic": 45}, 0.94)
    f = detect_drift("line-3", WindowStats(BASE, 0.95), recent)
    assert f.drifted and f.rising_type == "periodic"
    assert "periodic noise rose from 10% to 45%" in f.reasons[0]
    assert "grounding" in f.reasons[0]


def test_confidence_drop_alone_is_flagged() -> None:
    f = detect_drift("s1", WindowStats(BASE, 0.95), WindowStats({k: v // 10 for k, v in BASE.items()}, 0.80))
    assert f.drifted and f.rising_type is None
    assert "confidence fell from 0.95 to 0.80" in f.reasons[0]


def test_small_windows_give_no_verdict() -> None:
    f = detect_drift("s1", WindowStats(BASE, 0.95), WindowStats({"periodic": 20}, 0.5))
    assert f.status == "insufficient" and f.recent_n == 20


def test_large_shift_in_a_small_sample_needs_significance() -> None:
    # 60 photos, a 17% shift: over the TV threshold but within chance for this size -> no alarm.
    recent = WindowStats({"clean": 32, "gaussian": 10, "salt_pepper": 5, "periodic": 13}, 0.95)
    f = detect_drift("s1", WindowStats(BASE, 0.95), recent, tv_threshold=0.1)
    assert f.tv_distance is not None and f.tv_distance >= 0.1
    assert f.status == "stable"
