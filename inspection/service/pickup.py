"""Pick-up: the service follows its models root's ``LIVE`` pointer and scores with a newly promoted bundle, with
no restart, no request failed and none scored twice.

A :class:`inspection.promotion.LiveFollower` reads ``LIVE`` every few seconds. A new bundle's pipelines are
loaded in full first (for ``inspection serve``: new scoring processes), while the old ones keep scoring; then
:meth:`inspection.service.BatchScorer.replace_pipelines` swaps them in between batches: batches in flight
finish on the old bundle, every later batch is scored by the new one, and the old processes are stopped. A
bundle that fails to load is logged and the old one keeps serving; readiness is not affected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from inspection.bundle import Bundle
from inspection.promotion import LiveFollower
from inspection.service.scoring import BatchScorer, Pipeline
from inspection.store import RecordStore

log = logging.getLogger("inspection.service")


@dataclass(frozen=True)
class Pickup:
    """Where newly promoted bundles come from, and how the service loads one.

    Attributes:
        root: the models root whose ``LIVE`` file is followed.
        load: the scoring pipelines of a bundle, as many as the scorer has workers.
        interval_s: seconds between reads of ``LIVE``.
    """

    root: Path
    load: Callable[[Bundle], Sequence[Pipeline]]
    interval_s: float = 2.0


def follow_live(pickup: Pickup, scorer: BatchScorer, store: RecordStore) -> LiveFollower[Sequence[Pipeline]]:
    """A follower (not started) that swaps a newly live bundle into ``scorer`` and records its model versions."""

    def swap(pipelines: Sequence[Pipeline], bundle: Bundle) -> None:
        if not scorer.replace_pipelines(pipelines):
            return  # shutting down: the new pipelines were closed
        try:
            store.register_models(pipelines[0])
        except SQLAlchemyError as e:  # the records still name the bundle; only the models table lags
            log.warning(
                "bundle %s is scoring, but its model versions could not be recorded: %s", bundle.version, e
            )

    return LiveFollower(pickup.root, scorer.bundle_version, pickup.load, swap, interval_s=pickup.interval_s)
