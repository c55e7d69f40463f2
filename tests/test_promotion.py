"""Promotion: the golden-set gate under the noise protocol, installing candidates, rollback, following LIVE."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from inspection.bundle import BUNDLES_DIR, VerdictPolicy, load_bundle, read_live, write_bundle, write_live
from inspection.fileio import exclusive_lock
from inspection.imageio import read_image
from inspection.noise import apply_spec, sample_spec
from inspection.promotion import (
    PROMOTION_LOCK,
    GoldenMetrics,
    LiveFollower,
    Promotion,
    PromotionError,
    compare,
    evaluate_golden,
    golden_samples,
    install_candidate,
    previous_live,
    promote,
    protocol_photos,
    render_comparison,
    rollback,
)
from inspection.testing import write_tiny_checkpoints


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoints(tmp_path_factory.mktemp("parts"), seed=0)


def make_bundle(
    parts: Path,
    path: Path,
    *,
    threshold: float = 0.5,
    tolerance: float = 0.02,
    parent: str | None = None,
    review_band: tuple[float, float] | None = None,
) -> Path:
    write_bundle(
        path,
        {t: parts / t for t in ("noise", "denoiser", "defect")},
        policy=VerdictPolicy(threshold=threshold, gate_tolerance=tolerance, review_band=review_band),
        card={"parent": parent},
    )
    return path


def metrics(accuracy: float, recall: float, **by_noise: float) -> GoldenMetrics:
    return GoldenMetrics(
        threshold=0.5, accuracy=accuracy, recall=recall, balanced_accuracy=accuracy, by_noise=by_noise
    )


# --- the gate -------------------------------------------------------------------------------------------------


def test_the_gate_refuses_a_drop_beyond_the_tolerance_in_any_gated_metric() -> None:
    live = metrics(0.90, 0.90, clean=0.95, gaussian=0.85)
    assert compare(metrics(0.89, 0.90, clean=0.95, gaussian=0.84), live, 0.02).promote  # within 2 points
    assert compare(metrics(0.88, 0.88, clean=0.93, gaussian=0.83), live, 0.02).promote  # exactly 2: allowed
    worse_noise = compare(metrics(0.95, 0.95, clean=0.99, gaussian=0.80), live, 0.02)
    assert [r.metric for r in worse_noise.failed] == ["accuracy (gaussian)"]  # better overall is not enough
    assert compare(metrics(0.87, 0.90, clean=0.95, gaussian=0.85), live, 0.05).promote  # a looser tolerance
    assert not compare(metrics(0.87, 0.90, clean=0.95, gaussian=0.85), live, 0.02).promote


def test_the_gate_covers_every_kind_and_not_balanced_accuracy() -> None:
    live = GoldenMetrics(0.5, 0.9, 0.9, 0.9, {"clean": 0.9}, {"crack": 0.9, "burr": 0.9})
    worse_burr = GoldenMetrics(0.5, 0.9, 0.9, 0.5, {"clean": 0.9}, {"crack": 1.0, "burr": 0.8})
    decision = compare(worse_burr, live, 0.02)
    assert [r.metric for r in decision.failed] == ["recall (kind burr)"]
    table = render_comparison(decision, "v1", "v2")
    assert "recall (kind burr)" in table and "DROP" in table and "not gated" in table and "-10.0 pts" in table


def test_a_drop_on_few_photos_is_forgiven_only_within_chance() -> None:
    live = GoldenMetrics(0.5, 0.9, 0.9, 0.9, {"clean": 0.9}, {"crack": 1.0, "burr": 1.0})
    one_photo = GoldenMetrics(0.5, 0.9, 0.9, 0.9, {"clean": 0.9}, {"crack": 1.0, "burr": 0.8})  # 1 of 5 burrs
    pairs = {"recall (kind burr)": (1, 0), "accuracy": (3, 3)}
    decision = compare(one_photo, live, 0.02, pairs)
    assert decision.promote and decision.rows[-4].chance == 0.5  # one lost photo: a coin flip
    assert "ok (chance 0.50)" in render_comparison(decision, "v1", "v2")
    many = compare(one_photo, live, 0.02, {"recall (kind burr)": (6, 0)})  # 6 lost, none won: p = 1/64
    assert [r.metric for r in many.failed] == ["recall (kind burr)"]
    assert not compare(one_photo, live, 0.02).promote  # without the photo-by-photo pairs: the plain tolerance


def test_paired_changes_count_the_same_photos(synthetic_root: Path, parts: Path, tmp_path: Path) -> None:
    bundles = {
        "live": load_bundle(make_bundle(parts, tmp_path / "a", threshold=0.0)),
        "candidate": load_bundle(make_bundle(parts, tmp_path / "b", threshold=1.0)),
    }
    run = evaluate_golden(bundles, golden_samples(synthetic_root))
    lost, won = run.pairs["recall (defective)"]
    defective = sum(s.label for s in golden_samples(synthetic_root)) * 4
    assert (lost, won) == (defective, 0)  # every defective photo, under each of the 4 noise types
    assert run.pairs["accuracy"][1] == run.metrics["live"].judged - defective  # the ok ones it now gets right


def test_protocol_photos_are_the_evaluation_protocol(synthetic_root: Path) -> None:
    gray = read_image(golden_samples(synthetic_root)[0].path).gray
    photos = protocol_photos(gray, 3, 7)
    assert len(photos) == 4 and np.array_equal(photos[0], gray)
    expected = apply_spec(
        gray, sample_spec("gaussian", np.random.default_rng([7, 3, 1])), np.random.default_rng([7, 3, 101])
    )
    assert np.array_equal(photos[1], expected)  # as inspection evaluate draws photo 3 under gaussian noise
    assert all(np.array_equal(a, b) for a, b in zip(photos, protocol_photos(gray, 3, 7), strict=True))


def test_golden_set_is_a_dataset_root_or_its_test_folder(synthetic_root: Path, tmp_path: Path) -> None:
    assert golden_samples(synthetic_root) == golden_samples(synthetic_root / "test")
    with pytest.raises(FileNotFoundError, match="golden set"):
        golden_samples(tmp_path / "missing")


def test_recall_per_kind_when_the_golden_set_names_kinds(
    parts: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    golden = tmp_path / "golden"
    samples = golden_samples(synthetic_root)
    for i, s in enumerate(samples):
        folder = golden / "test" / ("ok" if not s.label else ("def_crack" if i % 2 else "def_burr"))
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(s.path, folder / s.path.name)
    bundle = load_bundle(make_bundle(parts, tmp_path / "b" / "v1", threshold=0.0))
    run = evaluate_golden({"v1": bundle}, golden_samples(golden), seed=0)
    m = run.metrics["v1"]
    assert set(m.by_kind) == {"crack", "burr"} and m.by_kind == {"crack": 1.0, "burr": 1.0}  # all defective
    assert set(m.by_noise) == {"clean", "gaussian", "salt_pepper", "periodic"}
    assert m.judged == 4 * run.photos == 4 * len(samples) and m.recall == 1.0


# --- promote -------------------------------------------------------------------------------------------------------


def test_a_first_promotion_needs_no_live_bundle(parts: Path, synthetic_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    candidate = make_bundle(parts, tmp_path / "cands" / "v1")
    result = promote(root, candidate, synthetic_root)
    assert result.action == "promote" and result.first and result.decision is None
    assert read_live(root) == "v1" and (root / BUNDLES_DIR / "v1" / "pipeline.json").is_file()
    golden = load_bundle(root / BUNDLES_DIR / "v1").card["golden"]
    assert golden["photos"] == 8 and "accuracy.gaussian" in golden and golden["seed"] == 0
    assert "## Golden set" in (root / BUNDLES_DIR / "v1" / "card.md").read_text()
    assert result.comparison()["candidate"]["version"] == "v1" and "live" not in result.comparison()


def test_a_degraded_candidate_is_refused_with_the_live_bundles_tolerance(
    parts: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    promote(root, make_bundle(parts, tmp_path / "v1", threshold=0.0, tolerance=0.02), synthetic_root)
    # never calls a part defective, and asks for the loosest gate: the live bundle's tolerance holds
    degraded = make_bundle(parts, tmp_path / "v2", threshold=1.0, tolerance=0.9)
    result = promote(root, degraded, synthetic_root)
    assert result.action == "refuse" and read_live(root) == "v1"
    assert result.decision is not None and result.decision.tolerance == 0.02
    assert "recall (defective)" in [r.metric for r in result.decision.failed]
    comparison = result.comparison()
    assert comparison["live"]["recall"] == 1.0 and comparison["candidate"]["recall"] == 0.0
    assert "recall (defective)" in comparison["failed"]
    assert not load_bundle(root / BUNDLES_DIR / "v2").card.get("golden")  # no golden numbers when refused


def test_a_candidate_that_hands_parts_to_people_is_refused(
    parts: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    promote(root, make_bundle(parts, tmp_path / "v1"), synthetic_root)
    # the same verdicts at the threshold, but every part goes to review: not better, only more work
    result = promote(root, make_bundle(parts, tmp_path / "v2", review_band=(0.0, 1.0)), synthetic_root)
    assert result.action == "refuse" and read_live(root) == "v1"
    assert [r.metric for r in result.decision.failed] == ["decided without review"]
    assert result.comparison()["candidate"]["decided"] == 0.0


def test_an_equal_candidate_is_promoted_and_the_same_noisy_photos_judge_both(
    parts: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    promote(root, make_bundle(parts, tmp_path / "v1"), synthetic_root)
    result = promote(root, make_bundle(parts, tmp_path / "v2", parent="v1"), synthetic_root, seed=3)
    assert result.action == "promote" and result.previous == "v1" and read_live(root) == "v2"
    assert result.run is not None
    assert result.run.metrics["candidate"] == result.run.metrics["live"]  # same weights, same photos
    assert all(r.change == 0 for r in result.decision.rows)
    assert promote(root, root / BUNDLES_DIR / "v2", synthetic_root).action == "unchanged"


def test_a_promotion_waits_while_another_holds_the_root_then_gates_against_the_bundle_live_then(
    parts: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    promote(root, make_bundle(parts, tmp_path / "v1"), synthetic_root)
    candidate = make_bundle(parts, tmp_path / "v3")
    done: list[Promotion] = []
    with exclusive_lock(root / PROMOTION_LOCK):  # as a concurrent promotion or rollback holds it
        second = threading.Thread(target=lambda: done.append(promote(root, candidate, synthetic_root)))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive() and not done and read_live(root) == "v1"  # waiting, nothing decided
        write_live(root, install_candidate(make_bundle(parts, tmp_path / "v2"), root).version)  # the other's
    second.join(timeout=60)
    (result,) = done
    assert result.action == "promote" and result.previous == "v2" and read_live(root) == "v3"


def test_promote_needs_a_golden_set_unless_it_is_the_first_bundle(
    parts: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    with pytest.raises(PromotionError, match="golden set"):
        promote(root, make_bundle(parts, tmp_path / "v1"), None)
    assert promote(root, tmp_path / "v1", None, force_first=True).action == "promote"
    with pytest.raises(PromotionError, match="only for a models root with no live bundle"):
        promote(root, make_bundle(parts, tmp_path / "v2"), None, force_first=True)


def test_a_candidate_is_copied_in_and_a_version_clash_is_refused(parts: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = install_candidate(make_bundle(parts, tmp_path / "a" / "v1"), root)
    assert first.path == root / BUNDLES_DIR / "v1"
    assert install_candidate(tmp_path / "a" / "v1", root).path == first.path  # the same bundle again: fine
    assert install_candidate("v1", root).path == first.path  # a version under the root
    clash = make_bundle(parts, tmp_path / "b" / "v1", threshold=0.3)
    with pytest.raises(PromotionError, match="different bundle of version 'v1'"):
        install_candidate(clash, root)
    with pytest.raises(PromotionError, match="not a bundle folder"):
        install_candidate(tmp_path / "nothing", root)


# --- rollback ------------------------------------------------------------------------------------------------------


def test_rollback_goes_to_the_bundle_live_before(parts: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    for v, parent in (("v1", None), ("v2", "v1"), ("v3", "v1")):
        install_candidate(make_bundle(parts, tmp_path / v, parent=parent), root)
    write_live(root, "v3")
    history = [  # newest first, as the store lists them
        {"action": "promote", "version": "v3", "previous": "v2"},
        {"action": "promote", "version": "v2", "previous": "v1"},
    ]
    assert previous_live("v3", history) == "v2"
    assert rollback(root, promotions=history) == ("v3", "v2") and read_live(root) == "v2"
    assert rollback(root, promotions=[]) == ("v2", "v1")  # no history: the card's parent
    assert rollback(root, to="v3") == ("v1", "v3")
    write_live(root, "v1")
    with pytest.raises(PromotionError, match="pass --to VERSION"):
        rollback(root, promotions=[])
    with pytest.raises(PromotionError, match="live already"):
        rollback(root, to="v1")


# --- following LIVE ------------------------------------------------------------------------------------------------


def test_the_follower_loads_a_new_bundle_and_retries_a_failed_one_later_not_every_poll(
    parts: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    for v in ("v1", "v2"):
        install_candidate(make_bundle(parts, tmp_path / v), root)
    write_live(root, "v1")
    loads: list[str] = []
    swapped: list[str] = []

    def load(bundle):
        loads.append(bundle.version)
        if bundle.version == "v2" and len(loads) == 1:
            raise RuntimeError("out of memory")
        return bundle.version

    follower = LiveFollower(root, "v1", load, lambda loaded, bundle: swapped.append(loaded))
    assert not follower.check()  # unchanged
    write_live(root, "v2")
    assert not follower.check(now=0.0) and follower.current == "v1" and follower.failed == ("v2", 0.0)
    assert not follower.check(now=1.0) and loads == ["v2"]  # not tried again every few seconds
    assert follower.check(now=1000.0) and follower.current == "v2" and swapped == ["v2"]
