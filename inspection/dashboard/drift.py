"""Drift of a station against its own baseline: noise-type mix and mean noise confidence.

The rule (documented in ``docs/dashboard.md``):

* Each station is compared with itself: its *recent* window (default the last 24 hours of data) against
  its *baseline* window (the 7 days before that).
* **Noise mix drift** when the total variation distance between the two noise-type distributions,
  ``0.5 * sum(|p_recent - p_baseline|)``, is at least ``tv_threshold`` (0.15: 15% of photos moved to another
  type) **and** a chi-square test of homogeneity on the two count vectors is significant at 0.1%, so a small
  window's sampling noise does not raise an alarm.
* **Confidence drift** when the mean noise-classifier confidence fell by at least ``confidence_drop``
  (0.10) from baseline to recent: the photos no longer look like what the classifier was trained on.
* Either window with fewer than ``min_records`` (50) scored photos gives no verdict.

A rise of one noise type points at a cause on the line rather than at the parts; :data:`CAUSES` names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Chi-square critical values at alpha = 0.001 by degrees of freedom (types present - 1).
CHI2_CRITICAL_001: dict[int, float] = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515}
CAUSES: dict[str, str] = {
    "periodic": "electrical interference: check the camera's cabling, grounding and nearby drives",
    "gaussian": "low light or high sensor gain: check the lighting and the camera's exposure settings",
    "salt_pepper": "transmission faults or dead pixels: check the camera link and the sensor",
    "clean": "less noise than usual: fine for scoring, but check that the camera setup was not changed",
}


@dataclass(frozen=True)
class WindowStats:
    """One window of one station: photos per noise type and the mean noise confidence."""

    counts: dict[str, int]
    mean_confidence: float | None = None

    @property
    def n(self) -> int:
        return int(sum(self.counts.values()))

    def shares(self, types: list[str]) -> list[float]:
        n = self.n or 1
        return [self.counts.get(t, 0) / n for t in types]


@dataclass(frozen=True)
class DriftFinding:
    """The verdict for one station; ``reasons`` are sentences ready for the screen."""

    station_id: str
    status: str  # "drift", "stable" or "insufficient"
    tv_distance: float | None
    chi2: float | None
    confidence_change: float | None
    baseline_n: int
    recent_n: int
    rising_type: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return self.status == "drift"


def total_variation(p: list[float], q: list[float]) -> float:
    """Half the L1 distance between two distributions over the same categories (0 = same, 1 = disjoint)."""
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True))


def chi_square(a: list[int], b: list[int]) -> tuple[float, int]:
    """Chi-square statistic of homogeneity for two count vectors, and its degrees of freedom.

    Categories empty in both windows are dropped; returns (0, 0) when fewer than two categories remain.
    """
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x + y > 0]
    na, nb = sum(x for x, _ in pairs), sum(y for _, y in pairs)
    if len(pairs) < 2 or na == 0 or nb == 0:
        return 0.0, 0
    n = na + nb
    stat = 0.0
    for x, y in pairs:
        col = x + y
        ea, eb = na * col / n, nb * col / n
        stat += (x - ea) ** 2 / ea + (y - eb) ** 2 / eb
    return stat, len(pairs) - 1


def detect_drift(
    station_id: str,
    baseline: WindowStats,
    recent: WindowStats,
    *,
    tv_threshold: float = 0.15,
    confidence_drop: float = 0.10,
    min_records: int = 50,
) -> DriftFinding:
    """Compare a station's recent window with its own baseline (see the module docstring for the rule)."""
    if baseline.n < min_records or recent.n < min_records:
        return DriftFinding(
            station_id,
            "insufficient",
            None,
            None,
            None,
            baseline.n,
            recent.n,
            reasons=[
                f"needs {min_records} scored photos in each window (baseline {baseline.n}, recent {recent.n})"
            ],
        )
    types = sorted(set(baseline.counts) | set(recent.counts))
    p, q = baseline.shares(types), recent.shares(types)
    tv = total_variation(p, q)
    stat, df = chi_square(
        [baseline.counts.get(t, 0) for t in types], [recent.counts.get(t, 0) for t in types]
    )
    significant = df > 0 and stat >= CHI2_CRITICAL_001.get(df, CHI2_CRITICAL_001[5])
    reasons: list[str] = []
    rising: str | None = None
    if tv >= tv_threshold and significant:
        deltas = {t: b - a for t, a, b in zip(types, p, q, strict=True)}
        rising = max(deltas, key=lambda t: deltas[t])
        i = types.index(rising)
        cause = CAUSES.get(rising, "check the station's camera")
        reasons.append(
            f"{rising} noise rose from {p[i]:.0%} to {q[i]:.0%} of photos "
            f"(noise mix moved by {tv:.0%}); likely {cause}, not bad parts"
        )
    change = None
    if baseline.mean_confidence is not None and recent.mean_confidence is not None:
        change = recent.mean_confidence - baseline.mean_confidence
        if -change >= confidence_drop:
            reasons.append(
                f"mean noise-classifier confidence fell from {baseline.mean_confidence:.2f} to "
                f"{recent.mean_confidence:.2f}: the photos look unlike the training data"
            )
    return DriftFinding(
        station_id,
        "drift" if reasons else "stable",
        tv,
        stat,
        change,
        baseline.n,
        recent.n,
        rising_type=rising,
        reasons=reasons,
    )
