import numpy as np
import pytest

from inspection.metrics import expected_calibration_error, reliability


def test_reliability_bins_count_every_photo_and_match_the_ece() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 5000)
    calibrated = reliability(p, rng.random(5000) < p)
    assert calibrated["n"] == 5000 and sum(b["n"] for b in calibrated["bins"]) == 5000
    assert calibrated["ece"] < 0.03
    for b in calibrated["bins"]:
        assert b["low"] <= b["mean_probability"] <= b["high"]
        assert abs(b["observed"] - b["mean_probability"]) < 0.06
    overconfident = reliability(np.full(1000, 0.95), np.arange(1000) < 700)  # 95% sure, right 70% of the time
    assert overconfident["bins"] == [
        {"low": 0.9, "high": 1.0, "n": 1000, "mean_probability": pytest.approx(0.95), "observed": 0.7}
    ]
    assert abs(overconfident["ece"] - 0.25) < 1e-9
    assert overconfident["ece"] == expected_calibration_error(np.full(1000, 0.95), np.arange(1000) < 700, 10)
