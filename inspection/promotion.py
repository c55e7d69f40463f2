"""Promotion: a candidate bundle goes live only if it does no worse than the live one on the golden set.

**The golden set** is a dataset root whose ``test/`` split holds it (as ``inspection dataset export`` writes it),
or that ``test/`` folder itself. Both bundles judge it under the noise protocol of ``inspection evaluate``:
every photo clean and under each noise type, drawn with ``default_rng([seed, i, k])`` per photo ``i`` and type
``k``, so the candidate and the live bundle see the very same noisy photos. A photo's verdict is defective when
its P(defective) reaches the bundle's own threshold (its ``review`` band does not count here); a photo a bundle
refuses to judge counts as a wrong verdict. The share of photos a bundle decides itself (not sent to ``review``)
is gated too, so a candidate cannot pass by handing more parts to people.

**The gate.** The candidate is refused when any of these falls by more than the **live** bundle's
``policy.gate_tolerance`` (0.02 = 2 points) against the live bundle: accuracy, recall of defective parts, the
accuracy under any one noise type, the recall of any one defect kind (when the golden set names kinds), or the
share of photos decided without review. The
tolerance is the live bundle's, so a candidate cannot loosen its own gate. On a small golden set one photo is
several points, so a drop beyond the tolerance is forgiven when it is within chance: when the photos the
candidate lost against the live bundle, set against those it won, would show up at least 5% of the time if the
two were equally good (a one-sided sign test on the same photos). Balanced accuracy is reported, not
gated. With no live bundle yet, the candidate is promoted (a first promotion) and its numbers are recorded.

**Moving LIVE.** A promotion writes the golden numbers into the candidate's card and then points
``<models root>/LIVE`` at it (atomically); :func:`rollback` points it back. Every decision is recorded in the store
by the ``inspection models`` command.

**Pick-up.** :class:`LiveFollower` watches ``LIVE`` for ``serve`` and ``watch``: it loads a newly named bundle
on its own thread and hands it over only once fully loaded; a bundle that fails to load is logged and the old
one keeps scoring.
"""

from __future__ import annotations

import filecmp
import json
import logging
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
from tqdm import tqdm

from inspection import NOISE_TYPES
from inspection.bundle import (
    BUNDLES_DIR,
    CARD_FILE,
    CARD_MARKDOWN,
    LIVE_FILE,
    PIPELINE_FILE,
    Bundle,
    BundleError,
    load_bundle,
    read_live,
    render_card,
    write_live,
)
from inspection.data import RejectedPhoto, Sample, dataset_fingerprint, list_split
from inspection.fileio import exclusive_lock, write_text_atomic
from inspection.imageio import read_image
from inspection.noise import apply_spec, sample_spec
from inspection.results import InspectionResult, Rejection, percent_text

log = logging.getLogger(__name__)
T = TypeVar("T")
# Two equal shares computed over different sums can differ in the last bits; that is no drop.
EPSILON = 1e-9
CHANCE = 0.05  # a drop beyond the tolerance refuses unless a loss this large had at least this chance
# Retry a bundle that failed to load this often even when LIVE does not change (it may have been fixed in place).
RETRY_FAILED_S = 60.0


class PromotionError(ValueError):
    """A promotion or rollback that cannot be done as asked; the message says what to do instead."""


# --- the golden set under the noise protocol ----------------------------------------------------------------


def golden_samples(path: str | Path) -> list[Sample]:
    """The golden set's photos: ``path/test/<class>/`` of a dataset root, or ``path/<class>/`` itself.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DatasetError: no defective class folder, or no photos.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"golden set {path} does not exist; pass a dataset root with test/<class>/ (as "
            "`inspection dataset export` writes it) or its test/ folder"
        )
    if (path / "test").is_dir():
        return list_split(path, "test")
    return list_split(path.parent, path.name)


def protocol_photos(gray: np.ndarray, index: int, seed: int) -> list[np.ndarray]:
    """Photo ``index`` clean and under each noise type (in ``NOISE_TYPES`` order), as ``inspection evaluate``
    draws them."""
    return [
        apply_spec(
            gray,
            sample_spec(kind, np.random.default_rng([seed, index, k])),
            np.random.default_rng([seed, index, 100 + k]),
        )
        for k, kind in enumerate(NOISE_TYPES)
    ]


@dataclass(frozen=True)
class GoldenMetrics:
    """How one bundle did on the golden set under the noise protocol.

    Attributes:
        threshold: the P(defective) threshold its verdicts used (the bundle's own).
        accuracy: share of right verdicts over every photo and noise type.
        recall: share of defective photos called defective; None when the set has none.
        balanced_accuracy: the mean of recall and specificity (over the classes present).
        by_noise: accuracy per noise type (``clean`` included).
        by_kind: recall per defect kind; empty when the golden set names no kinds.
        judged: verdicts counted (photos times noise types).
        refused: of those, photos the bundle refused to judge (counted as wrong).
        decided: share of the judged photos given ``ok`` or ``defective`` rather than ``review``.
    """

    threshold: float
    accuracy: float
    recall: float | None
    balanced_accuracy: float
    by_noise: dict[str, float]
    by_kind: dict[str, float] = field(default_factory=dict)
    judged: int = 0
    refused: int = 0
    decided: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "recall": self.recall,
            "balanced_accuracy": self.balanced_accuracy,
            "by_noise": dict(self.by_noise),
            "by_kind": dict(self.by_kind),
            "judged": self.judged,
            "refused": self.refused,
            "decided": self.decided,
        }

    def card_entries(self) -> dict[str, Any]:
        """Flat ``name: value`` entries for the card's ``golden`` section (one line each in card.md)."""
        out: dict[str, Any] = {
            "accuracy": self.accuracy,
            "recall": self.recall,
            "balanced_accuracy": self.balanced_accuracy,
            "threshold": self.threshold,
            "judged": self.judged,
            "refused": self.refused,
            "decided without review": self.decided,
        }
        out.update({f"accuracy.{noise}": v for noise, v in self.by_noise.items()})
        out.update({f"recall.kind.{kind}": v for kind, v in self.by_kind.items()})
        return out


class _Tally:
    """One bundle's verdicts, photo by photo, until :meth:`metrics` sums them up."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.labels: list[int] = []
        self.preds: list[int] = []
        self.noises: list[str] = []
        self.kinds: list[str] = []
        self.refused = 0
        self.reviewed = 0

    def add(
        self, outcomes: Sequence[InspectionResult | Rejection], samples: Sequence[Sample], noise: str
    ) -> None:
        for outcome, sample in zip(outcomes, samples, strict=True):
            if isinstance(outcome, InspectionResult):
                pred = int(outcome.defect_probability >= self.threshold)
                self.reviewed += outcome.verdict == "review"
            else:  # a photo it cannot judge is a wrong verdict, whichever the label
                pred = 1 - sample.label
                self.refused += 1
            self.labels.append(sample.label)
            self.preds.append(pred)
            self.noises.append(noise)
            self.kinds.append(sample.kind if sample.label else "")

    def metrics(self) -> GoldenMetrics:
        y, p = np.array(self.labels, int), np.array(self.preds, int)
        noises, kinds = np.array(self.noises), np.array(self.kinds)
        recall = _share(p[y == 1] == 1)
        specificity = _share(p[y == 0] == 0)
        present = [r for r in (recall, specificity) if r is not None]
        return GoldenMetrics(
            threshold=self.threshold,
            accuracy=_share(p == y) or 0.0,
            recall=recall,
            balanced_accuracy=float(np.mean(present)) if present else 0.0,
            by_noise={
                n: _share(p[noises == n] == y[noises == n]) or 0.0 for n in NOISE_TYPES if (noises == n).any()
            },
            by_kind={k: _share(p[kinds == k] == 1) or 0.0 for k in sorted(set(self.kinds) - {""})},
            judged=len(y),
            refused=self.refused,
            decided=1.0 - self.reviewed / len(y) if len(y) else 1.0,
        )


def _share(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


@dataclass(frozen=True)
class GoldenRun:
    """The golden set's evaluation of several bundles on the same noisy photos.

    Attributes:
        metrics: per bundle name (as passed in).
        photos: golden photos judged.
        unreadable: golden photos that could not be read (judged by no bundle).
        fingerprint: SHA-256 over the golden set's file names, sizes and labels.
        seed: the noise protocol's seed.
        pairs: per gated metric, ``(lost, won)``: verdicts the live bundle got right and the candidate wrong, and
            the other way round, on the very same photos (only when both a ``live`` and a ``candidate`` ran).
    """

    metrics: dict[str, GoldenMetrics]
    photos: int
    unreadable: list[RejectedPhoto]
    fingerprint: str
    seed: int
    pairs: dict[str, tuple[int, int]] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "unreadable": [f"{r.path.name}: {r.reason}" for r in self.unreadable],
            "sha256": self.fingerprint,
            "seed": self.seed,
            "protocol": list(NOISE_TYPES),
        }


def evaluate_golden(
    bundles: Mapping[str, Bundle],
    samples: Sequence[Sample],
    *,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> GoldenRun:
    """Judge the golden photos, clean and under each noise type, with every bundle in ``bundles``.

    Each noisy photo is made once and judged by every bundle, by its whole pipeline (routing, denoising, defect
    model) at the bundle's own threshold. An unreadable photo is left out for all and listed in the result.
    """
    from inspection.pipeline import InspectionPipeline

    pipelines = {name: InspectionPipeline.from_bundle(b) for name, b in bundles.items()}
    tallies = {name: _Tally(p.threshold) for name, p in pipelines.items()}
    unreadable: list[RejectedPhoto] = []
    photos = 0
    try:
        starts = range(0, len(samples), batch_size)
        for start in tqdm(starts, desc="golden set", unit="batch", disable=not progress):
            grays, kept = [], []
            for i, sample in enumerate(samples[start : start + batch_size], start=start):
                try:
                    gray = read_image(sample.path).gray
                except Rejection as e:
                    log.warning("golden photo %s is not used: %s (%s)", sample.path, e.message, e.reason)
                    unreadable.append(RejectedPhoto(sample.path, e.reason, e.message))
                    continue
                grays.append(protocol_photos(gray, i, seed))
                kept.append(sample)
            photos += len(kept)
            for k, noise in enumerate(NOISE_TYPES):
                noisy = [g[k] for g in grays]
                for name, pipeline in pipelines.items():
                    tallies[name].add(pipeline.inspect_batch(noisy) if noisy else [], kept, noise)
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
    return GoldenRun(
        metrics={name: t.metrics() for name, t in tallies.items()},
        photos=photos,
        unreadable=unreadable,
        fingerprint=str(dataset_fingerprint(list(samples))["sha256"]),
        seed=seed,
        pairs=paired_changes(tallies["live"], tallies["candidate"])
        if {"live", "candidate"} <= set(tallies)
        else {},
    )


def paired_changes(live: _Tally, candidate: _Tally) -> dict[str, tuple[int, int]]:
    """Per gated metric (named as in :func:`compare`), the verdicts lost and won by the candidate, photo by photo."""
    y = np.array(live.labels, int)
    was, now = np.array(live.preds, int) == y, np.array(candidate.preds, int) == y
    noises, kinds = np.array(live.noises), np.array(live.kinds)
    subsets = {"accuracy": np.ones(len(y), bool), "recall (defective)": y == 1}
    subsets |= {f"accuracy ({n})": noises == n for n in NOISE_TYPES}
    subsets |= {f"recall (kind {k})": kinds == k for k in sorted(set(live.kinds) - {""})}
    return {name: (int((was & ~now & m).sum()), int((~was & now & m).sum())) for name, m in subsets.items()}


# --- the gate -------------------------------------------------------------------------------------------------


class GateRow(NamedTuple):
    """One line of the comparison: a metric of the live bundle and of the candidate, and whether it is gated."""

    metric: str
    live: float | None
    candidate: float | None
    gated: bool = True
    lost: int = 0
    won: int = 0

    @property
    def change(self) -> float | None:
        if self.live is None or self.candidate is None:
            return None
        return self.candidate - self.live

    @property
    def chance(self) -> float | None:
        """How likely a loss this large is by chance alone, from the photos lost and won (one-sided sign test)."""
        n = self.lost + self.won
        if not n:
            return None
        return float(sum(math.comb(n, k) for k in range(self.lost, n + 1)) / 2**n)

    def passes(self, tolerance: float) -> bool:
        """Within the tolerance, or a drop that as few photos as these could show by chance (p >= 0.05)."""
        change = self.change
        if not self.gated or change is None or change >= -tolerance - EPSILON:
            return True
        chance = self.chance
        return chance is not None and chance >= CHANCE


@dataclass(frozen=True)
class GateDecision:
    """The candidate against the live bundle, row by row, under the live bundle's tolerance."""

    rows: tuple[GateRow, ...]
    tolerance: float

    @property
    def failed(self) -> list[GateRow]:
        return [r for r in self.rows if not r.passes(self.tolerance)]

    @property
    def promote(self) -> bool:
        return not self.failed


def compare(
    candidate: GoldenMetrics,
    live: GoldenMetrics,
    tolerance: float,
    pairs: Mapping[str, tuple[int, int]] | None = None,
) -> GateDecision:
    """Gate the candidate against the live bundle (module docstring): ``tolerance`` is the live bundle's.

    ``pairs`` (:func:`paired_changes`) lets a drop beyond the tolerance pass when it is within chance on so few
    photos (e.g. one photo of five); without them every drop beyond the tolerance refuses.
    """
    rows = [
        GateRow("accuracy", live.accuracy, candidate.accuracy),
        GateRow("recall (defective)", live.recall, candidate.recall),
    ]
    rows += [
        GateRow(f"accuracy ({noise})", live.by_noise.get(noise), candidate.by_noise.get(noise))
        for noise in NOISE_TYPES
        if noise in live.by_noise or noise in candidate.by_noise
    ]
    rows += [
        GateRow(f"recall (kind {kind})", live.by_kind.get(kind), candidate.by_kind.get(kind))
        for kind in sorted(set(live.by_kind) | set(candidate.by_kind))
    ]
    rows.append(GateRow("decided without review", live.decided, candidate.decided))
    rows.append(
        GateRow("balanced accuracy", live.balanced_accuracy, candidate.balanced_accuracy, gated=False)
    )
    pairs = pairs or {}
    rows = [
        r._replace(lost=pairs[r.metric][0], won=pairs[r.metric][1]) if r.metric in pairs else r for r in rows
    ]
    return GateDecision(tuple(rows), tolerance)


def render_comparison(decision: GateDecision, live: str, candidate: str) -> str:
    """The comparison table as the terminal shows it (fixed-width columns, one row per metric)."""
    header = ("metric", f"live {live}", f"candidate {candidate}", "change", "gate")
    lines: list[tuple[str, ...]] = [header]
    for row in decision.rows:
        change = row.change
        shown = "-" if change is None else f"{100 * change:+.1f} pts"
        verdict = "not gated" if not row.gated else ("ok" if row.passes(decision.tolerance) else "DROP")
        if verdict == "ok" and change is not None and change < -decision.tolerance - EPSILON:
            verdict = (
                f"ok (chance {row.chance:.2f})"  # beyond the tolerance, but within chance on so few photos
            )
        lines.append((row.metric, percent_text(row.live), percent_text(row.candidate), shown, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append(
        f"tolerance: {100 * decision.tolerance:.1f} points (the live bundle's gate_tolerance); a larger drop is "
        f"forgiven only when its chance on these photos is at least {CHANCE:.2f} (sign test)"
    )
    return "\n".join(text)


# --- candidates, the card and LIVE ------------------------------------------------------------------------------


def resolve_candidate(candidate: str | Path, root: Path) -> Path:
    """A candidate bundle folder, or the version of a bundle already under ``root/bundles/``."""
    path = Path(candidate).expanduser()
    if (path / PIPELINE_FILE).is_file():
        return path
    under_root = root / BUNDLES_DIR / str(candidate)
    if (under_root / PIPELINE_FILE).is_file():
        return under_root
    raise PromotionError(
        f"{candidate} is not a bundle folder (no {PIPELINE_FILE}) nor a bundle under "
        f"{root / BUNDLES_DIR}; make one with `inspection models create` or `inspection retrain`"
    )


def install_candidate(candidate: str | Path, root: Path) -> Bundle:
    """The candidate as a bundle of ``root``: copied into ``root/bundles/<version>/`` when it is elsewhere.

    Raises:
        PromotionError: ``root`` already holds a different bundle of the candidate's version.
        BundleError: the candidate is not a readable bundle.
    """
    source = resolve_candidate(candidate, root)
    bundle = load_bundle(source)
    target = root / BUNDLES_DIR / bundle.version
    if target.exists() and target.resolve() == source.resolve():
        return bundle
    if target.exists():
        if not same_bundle(source, target):
            raise PromotionError(
                f"{target} already holds a different bundle of version {bundle.version!r}; give the candidate "
                "a new version (write it to a folder of a new name) and promote that"
            )
        return load_bundle(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{bundle.version}.", suffix=".partial"))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("copied candidate %s to %s", source, target)
    return load_bundle(target)


def same_bundle(a: Path, b: Path) -> bool:
    """Whether two bundle folders hold the same models and settings (their cards may differ)."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {
        p.relative_to(b) for p in b.rglob("*") if p.is_file()
    }
    names -= {Path(CARD_FILE), Path(CARD_MARKDOWN)}
    return all(
        (a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False) for n in names
    )


def write_golden_card(bundle: Bundle, metrics: GoldenMetrics, run: GoldenRun, golden: str | Path) -> None:
    """Put the golden-set numbers into the bundle's ``card.json`` and ``card.md`` (each written atomically)."""
    card = {**bundle.card, "version": bundle.card.get("version", bundle.version)}
    card["golden"] = {
        **metrics.card_entries(),
        "photos": run.photos,
        "set": str(Path(golden).expanduser().resolve()),
        "set_sha256": run.fingerprint,
        "seed": run.seed,
        "evaluated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_text_atomic(bundle.path / CARD_FILE, json.dumps(card, indent=2, sort_keys=True) + "\n")
    write_text_atomic(bundle.path / CARD_MARKDOWN, render_card(card))


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` decided, and the facts it decided on.

    Attributes:
        action: ``promote`` (the candidate is live now), ``refuse`` (LIVE unchanged) or ``unchanged`` (the
            candidate was live already; nothing to record).
        candidate: the candidate, installed under the models root.
        previous: the bundle live before (None on a first promotion).
        decision: the gate's rows; None on a first promotion or with ``force_first``.
        run: the golden-set evaluation; None with ``force_first``.
    """

    action: str
    candidate: Bundle
    previous: str | None
    decision: GateDecision | None = None
    run: GoldenRun | None = None

    @property
    def first(self) -> bool:
        return self.previous is None

    def comparison(self) -> dict[str, Any] | None:
        """The decision as JSON for the store: the golden set, each bundle's metrics and the gate's rows."""
        if self.run is None:
            return None
        out: dict[str, Any] = {
            "golden": self.run.describe(),
            "candidate": {"version": self.candidate.version, **self.run.metrics["candidate"].to_dict()},
        }
        if "live" in self.run.metrics:
            out["live"] = {"version": self.previous, **self.run.metrics["live"].to_dict()}
        if self.decision is not None:
            out["tolerance"] = self.decision.tolerance
            out["rows"] = [
                {**r._asdict(), "change": r.change, "passed": r.passes(self.decision.tolerance)}
                for r in self.decision.rows
            ]
            out["failed"] = [r.metric for r in self.decision.failed]
        return out


def promote(
    root: str | Path,
    candidate: str | Path,
    golden: str | Path | None,
    *,
    seed: int = 0,
    force_first: bool = False,
    progress: bool = False,
) -> Promotion:
    """Install the candidate under ``root``, gate it against the live bundle on the golden set, and on success
    write its golden numbers to its card and point ``LIVE`` at it.

    ``force_first`` makes a first bundle live without a golden set; it is refused while a bundle is live.

    Raises:
        PromotionError: no golden set where one is needed, ``force_first`` with a live bundle, a version clash.
        BundleError: the candidate or the live bundle cannot be read.
    """
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    with _live_lock(root):
        return _promote(root, candidate, golden, seed=seed, force_first=force_first, progress=progress)


PROMOTION_LOCK = "LIVE.lock"  # beside LIVE: held while a promotion or a rollback decides what goes live


def _live_lock(root: Path) -> Any:
    """One promotion or rollback of ``root`` at a time: a second waits, so its gate compares the candidate
    with the bundle live when it decides, not with one a concurrent promotion has since replaced."""
    return exclusive_lock(root / PROMOTION_LOCK, f"waiting for another promotion or rollback of {root}")


def _promote(
    root: Path,
    candidate: str | Path,
    golden: str | Path | None,
    *,
    seed: int,
    force_first: bool,
    progress: bool,
) -> Promotion:
    previous = read_live(root)
    if force_first and previous is not None:
        raise PromotionError(
            f"--force-first is only for a models root with no live bundle; {root} has {previous!r} live: "
            "pass --golden DIR so the candidate is compared with it"
        )
    if golden is None and not force_first:
        raise PromotionError(
            "a promotion needs the golden set (--golden DIR, a dataset root with test/<class>/); only a "
            "first bundle of a new models root may go live without one (--force-first)"
        )
    bundle = install_candidate(candidate, root)
    if previous == bundle.version:
        return Promotion("unchanged", bundle, previous)
    if golden is None:
        write_live(root, bundle.version)
        return Promotion("promote", bundle, previous)
    samples = golden_samples(golden)
    bundles = {"candidate": bundle}
    if previous is not None:
        bundles["live"] = load_bundle(root / BUNDLES_DIR / previous)
    run = evaluate_golden(bundles, samples, seed=seed, progress=progress)
    decision = None
    if previous is not None:
        decision = compare(
            run.metrics["candidate"], run.metrics["live"], bundles["live"].policy.gate_tolerance, run.pairs
        )
        if not decision.promote:
            return Promotion("refuse", bundle, previous, decision, run)
    write_golden_card(bundle, run.metrics["candidate"], run, golden)
    write_live(root, bundle.version)
    return Promotion("promote", load_bundle(bundle.path), previous, decision, run)


def previous_live(current: str, promotions: Iterable[Mapping[str, Any]]) -> str | None:
    """The bundle that was live before ``current`` was promoted, from the store's decisions (newest first)."""
    for row in promotions:
        if row.get("action") == "promote" and row.get("version") == current and row.get("previous"):
            return str(row["previous"])
    return None


def rollback(
    root: str | Path, *, to: str | None = None, promotions: Iterable[Mapping[str, Any]] = ()
) -> tuple[str, str]:
    """Point ``LIVE`` back: at ``to``, else the bundle live before the current one was promoted (from
    ``promotions``, the store's decisions newest first), else the current bundle's parent. Returns
    ``(from, to)``.

    Raises:
        PromotionError: nothing is live, or no earlier bundle is known (pass ``to``), or it is live already.
        BundleError: the bundle to go back to is missing or cannot be read.
    """
    root = Path(root).expanduser()
    if not root.is_dir():  # no lock file can go there; and with no LIVE there is nothing to roll back
        raise _nothing_live(root)
    with _live_lock(root):
        return _rollback(root, to, promotions)


def _nothing_live(root: Path) -> PromotionError:
    return PromotionError(
        f"{root} has no {LIVE_FILE} file: no bundle is live, so there is nothing to roll back"
    )


def _rollback(root: Path, to: str | None, promotions: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    current = read_live(root)
    if current is None:
        raise _nothing_live(root)
    target = to or previous_live(current, promotions)
    if target is None:
        try:
            target = load_bundle(root / BUNDLES_DIR / current).parent
        except BundleError:
            target = None
    if not target:
        raise PromotionError(
            f"no bundle is known to have been live before {current!r} (no promotion on record, no parent in its "
            "card); pass --to VERSION"
        )
    if target == current:
        raise PromotionError(f"{target!r} is live already")
    if not to and not (root / BUNDLES_DIR / target).is_dir():
        raise PromotionError(
            f"the bundle live before {current!r} was {target!r}, which is not under {root / BUNDLES_DIR}; "
            "pass --to VERSION"
        )
    load_bundle(root / BUNDLES_DIR / target)  # refuse a bundle that cannot be read before it goes live
    write_live(root, target)
    return current, target


# --- listing ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleSummary:
    """One bundle of a models root, as ``inspection models list`` shows it."""

    version: str
    live: bool
    parent: str | None
    created: str
    golden: dict[str, Any]
    problem: str = ""


def list_bundles(root: str | Path) -> list[BundleSummary]:
    """The bundles under ``root/bundles/``, oldest first; one that cannot be read is listed with the reason."""
    root = Path(root).expanduser()
    live = read_live(root)
    folders = sorted(p for p in (root / BUNDLES_DIR).glob("*") if p.is_dir() and not p.name.startswith("."))
    out = []
    for folder in folders:
        try:
            b = load_bundle(folder)
        except BundleError as e:
            out.append(BundleSummary(folder.name, folder.name == live, None, "", {}, problem=str(e)))
            continue
        card = b.card
        out.append(
            BundleSummary(
                b.version,
                b.version == live,
                b.parent,
                str(card.get("created", "")),
                dict(card.get("golden") or {}),
            )
        )
    return sorted(out, key=lambda s: (s.created, s.version))


def live_root(models: str | Path | None) -> Path | None:
    """The models root whose ``LIVE`` a server should follow: ``models`` (or the default models) when it is a
    root with a ``LIVE`` file; None for a pinned bundle folder or a root from before bundles."""
    from inspection.paths import default_models_dir

    root = Path(models).expanduser() if models else default_models_dir()
    if (root / PIPELINE_FILE).is_file() or not (root / LIVE_FILE).is_file():
        return None
    return root


# --- pick-up ------------------------------------------------------------------------------------------------------


class LiveFollower(Generic[T]):
    """Follows ``<root>/LIVE``: when it names another bundle, loads that bundle and hands it over.

    Every ``interval_s`` the follower reads ``LIVE``. A new name is loaded with ``load(bundle)`` on the
    follower's thread, so scoring goes on meanwhile, and only a fully loaded result is passed to
    ``swap(loaded, bundle)``, which puts it in service between batches. A bundle that fails to load (or whose
    ``swap`` fails) is logged and the old one keeps scoring; it is tried again when ``LIVE`` changes, or after
    ``RETRY_FAILED_S``.

    Args:
        root: the models root.
        current: the version in service now.
        load: makes what scores photos from a bundle (a pipeline, or a list of them).
        swap: puts a loaded one in service.
        interval_s: seconds between reads of ``LIVE``.
    """

    def __init__(
        self,
        root: str | Path,
        current: str,
        load: Callable[[Bundle], T],
        swap: Callable[[T, Bundle], None],
        *,
        interval_s: float = 2.0,
    ) -> None:
        self.root = Path(root)
        self.current = current
        self.load = load
        self.swap = swap
        self.interval_s = interval_s
        self.failed: tuple[str, float] | None = None  # (version, when) of the last bundle that failed to load
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, now: float | None = None) -> bool:
        """Read ``LIVE`` once and pick up the bundle it names if that is new; True when one was swapped in."""
        now = time.monotonic() if now is None else now
        try:
            version = read_live(self.root)
        except (BundleError, OSError) as e:
            log.error(
                "cannot read %s (%s); still scoring with bundle %s", self.root / LIVE_FILE, e, self.current
            )
            return False
        if version is None or version == self.current:
            return False
        if self.failed is not None and self.failed[0] == version and now - self.failed[1] < RETRY_FAILED_S:
            return False
        log.info(
            "%s names bundle %s; loading it (still scoring with %s meanwhile)",
            self.root / LIVE_FILE,
            version,
            self.current,
        )
        try:
            bundle = load_bundle(self.root / BUNDLES_DIR / version)
            self.swap(self.load(bundle), bundle)
        except Exception:  # noqa: BLE001 - any failure to load keeps the old bundle scoring; it is logged
            log.exception(
                "bundle %s could not be loaded; still scoring with %s (tried again when LIVE changes or in %.0f s)",
                version,
                self.current,
                RETRY_FAILED_S,
            )
            self.failed = (version, now)
            return False
        log.info("picked up bundle %s (was %s)", version, self.current)
        self.current, self.failed = version, None
        return True

    def start(self) -> LiveFollower[T]:
        """Follow on a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-follower", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop following (a bundle being loaded now is still handed to ``swap``, which must cope with a
        server that is shutting down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
