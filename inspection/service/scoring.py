"""``BatchScorer``: scores the uploads waiting in a bounded queue as one batch, on one thread per pipeline."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inspection.ingest import score_photos
from inspection.results import InspectionResult, Rejection

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    """What the service needs from :class:`inspection.pipeline.InspectionPipeline`."""

    model_versions: dict[str, str]

    def inspect_batch(self, images: Sequence[Any]) -> list[InspectionResult | Rejection]: ...


@dataclass
class _Job:
    data: bytes
    cost: int
    future: asyncio.Future[InspectionResult | Rejection]
    loop: asyncio.AbstractEventLoop
    queued_at: float


def bundle_card(pipeline: Pipeline) -> dict[str, Any]:
    """The card (``card.json``) of the bundle ``pipeline`` scores with; empty when that cannot be told.

    A :class:`inspection.service.remote.ProcessPipeline` brings the card from its process (``card``); an
    in-process :class:`inspection.pipeline.InspectionPipeline` is traced through its defect model, whose folder
    sits in the bundle folder.
    """
    card = getattr(pipeline, "card", None)
    if isinstance(card, dict):
        return card
    version = str(getattr(pipeline, "bundle_version", "") or "")
    defect_dir = getattr(getattr(pipeline, "defect", None), "path", None)
    if not version or defect_dir is None:
        return {}
    from inspection.bundle import BundleError, load_bundle

    try:
        bundle = load_bundle(Path(defect_dir).parent)
    except (BundleError, OSError):  # not a bundle's model (a pre-bundle models root has no card)
        return {}
    return bundle.card if bundle.version == version else {}


def _settle(job: _Job, outcome: InspectionResult | Rejection) -> None:
    if not job.future.done():  # the client went away and the wait was cancelled
        job.future.set_result(outcome)


class BatchScorer:
    """Scores uploads in batches: one worker thread per pipeline takes every photo waiting in the queue.

    Under load, photos that arrive while a batch is being scored form the next batch, and a batch costs far
    less per photo than single calls; with nothing waiting, a photo is scored alone at once (no added delay).
    No pipeline is ever used by two threads. The queue is bounded in pixels (the service bounds the number of
    photos with its upload slots): a photo that does not fit is refused at once (``overloaded``), never queued
    behind minutes of work. A photo whose waiter is cancelled (its client went away) leaves the queue at once,
    unscored. A batch that fails outside any one photo settles each of its photos as ``internal_error``; the
    worker carries on. ``timings_ms`` are the photo's share of its batch, plus ``queue`` (the wait).
    :meth:`replace_pipelines` swaps in the pipelines of a newly promoted bundle between batches; ``bundle_version``
    and ``card`` follow the swap.

    Args:
        pipelines: one worker thread each.
        max_batch: the most photos scored together.
        max_queued_pixels: the most pixels waiting (a photo's cost is its pixel count, 1 when unknown).
    """

    def __init__(
        self,
        pipelines: Sequence[Pipeline],
        *,
        max_batch: int = 8,
        max_queued_pixels: int = 64_000_000,
    ) -> None:
        if not pipelines:
            raise ValueError("BatchScorer needs at least one pipeline")
        self._pipelines = list(pipelines)
        self.model_versions = dict(pipelines[0].model_versions)
        self.bundle_version = str(getattr(pipelines[0], "bundle_version", ""))
        self.card = bundle_card(pipelines[0])
        self.size = len(pipelines)
        self.max_batch = max(1, max_batch)
        self.max_queued_pixels = max(1, max_queued_pixels)
        self._jobs: deque[_Job] = deque()
        self._pixels = 0
        self._closing = False
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # a job arrived, or the scorer is closing
        self._idle = threading.Condition(lock)  # a worker finished a batch
        self._busy: list[Pipeline | None] = [None] * self.size  # the pipeline each worker is scoring with
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"scorer-{i}", daemon=True)
            for i in range(self.size)
        ]
        for t in self._threads:
            t.start()

    @property
    def queued(self) -> int:
        return len(self._jobs)

    def has_room(self, cost: int = 1) -> bool:
        """Whether a photo of this cost would be queued now (the first photo always fits an empty queue)."""
        with self._ready:
            return self._fits(cost)

    def _fits(self, cost: int) -> bool:
        return not self._jobs or self._pixels + cost <= self.max_queued_pixels

    async def score(self, data: bytes, cost: int = 1) -> InspectionResult | Rejection:
        """Score one photo: its result, or the ``Rejection`` of a photo that cannot be judged.

        Raises:
            Rejection: ``overloaded`` when the queue is full (nothing was queued).
            asyncio.CancelledError: when the caller cancels the wait; the photo is then not scored.
        """
        loop = asyncio.get_running_loop()
        job = _Job(data, max(1, cost), loop.create_future(), loop, time.perf_counter())
        with self._ready:
            if self._closing:
                raise Rejection("overloaded", "the service is shutting down; send the photo again shortly")
            if not self._fits(job.cost):
                raise Rejection(
                    "overloaded",
                    f"{len(self._jobs)} photos ({self._pixels / 1e6:.1f} MP) are waiting to be scored; "
                    "send it again after Retry-After",
                )
            self._jobs.append(job)
            self._pixels += job.cost
            self._ready.notify()
        job.future.add_done_callback(lambda _: self._drop(job))
        return await job.future

    def _drop(self, job: _Job) -> None:
        """Take a job whose wait was cancelled out of the queue, so a client that left holds no room."""
        if not job.future.cancelled():
            return
        with self._ready:
            try:
                self._jobs.remove(job)
            except ValueError:
                return  # a worker took it already
            self._pixels -= job.cost

    def close(self) -> None:
        """Stop the worker threads once the queue is drained, and close the pipelines."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        for t in self._threads:
            t.join(timeout=30)
        for p in self._pipelines:
            getattr(p, "close", lambda: None)()

    def replace_pipelines(self, pipelines: Sequence[Pipeline]) -> bool:
        """Score every batch taken from now on with ``pipelines`` (as many as before, one per worker).

        Nothing is scored twice or dropped: waiting photos stay queued for the new pipelines, and batches being
        scored now finish on the old ones, which are closed once the last of them is done. Blocks until then
        (call it from a thread of its own, not the event loop). Returns False, closing ``pipelines``, when the
        scorer is closing.

        Raises:
            ValueError: a different number of pipelines.
        """
        if len(pipelines) != self.size:
            raise ValueError(
                f"the scorer has {self.size} worker(s); replace them with as many, got {len(pipelines)}"
            )
        with self._ready:
            if self._closing:
                swapped, old = False, list(pipelines)
            else:
                swapped, old, self._pipelines = True, self._pipelines, list(pipelines)
                self.model_versions = dict(pipelines[0].model_versions)
                self.bundle_version = str(getattr(pipelines[0], "bundle_version", ""))
                self.card = bundle_card(pipelines[0])
                while any(any(b is p for p in old) for b in self._busy):
                    self._idle.wait()
        for p in old:
            getattr(p, "close", lambda: None)()
        return swapped

    def _take_batch(self, worker: int) -> tuple[Pipeline, list[_Job]] | None:
        """The next batch and the pipeline to score it with (the newest, taken under the same lock)."""
        with self._ready:
            while True:
                batch: list[_Job] = []
                while self._jobs and len(batch) < self.max_batch:
                    job = self._jobs.popleft()
                    self._pixels -= job.cost
                    if not job.future.cancelled():  # cancelled, and its callback has not run yet
                        batch.append(job)
                if batch:
                    pipeline = self._busy[worker] = self._pipelines[worker]
                    return pipeline, batch
                if self._closing:
                    return None
                self._ready.wait()

    def _work(self, worker: int) -> None:
        while (taken := self._take_batch(worker)) is not None:
            pipeline, batch = taken
            try:
                self._score(pipeline, batch)
            finally:
                with self._idle:
                    self._busy[worker] = None
                    self._idle.notify_all()

    @staticmethod
    def _score(pipeline: Pipeline, batch: list[_Job]) -> None:
        started = time.perf_counter()
        for job, outcome in zip(batch, score_photos(pipeline, [j.data for j in batch]), strict=True):
            if isinstance(outcome, InspectionResult):
                queue_ms = round((started - job.queued_at) * 1000, 3)
                outcome = dataclasses.replace(outcome, timings_ms={**outcome.timings_ms, "queue": queue_ms})
            job.loop.call_soon_threadsafe(_settle, job, outcome)
