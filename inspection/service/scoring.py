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
        self.model_versions = dict(pipelines[0].model_versions)
        self._pipelines = list(pipelines)
        self.size = len(pipelines)
        self.max_batch = max(1, max_batch)
        self.max_queued_pixels = max(1, max_queued_pixels)
        self._jobs: deque[_Job] = deque()
        self._pixels = 0
        self._closing = False
        self._ready = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, args=(p,), name=f"scorer-{i}", daemon=True)
            for i, p in enumerate(pipelines)
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

    def _take_batch(self) -> list[_Job] | None:
        with self._ready:
            while True:
                batch: list[_Job] = []
                while self._jobs and len(batch) < self.max_batch:
                    job = self._jobs.popleft()
                    self._pixels -= job.cost
                    if not job.future.cancelled():  # cancelled, and its callback has not run yet
                        batch.append(job)
                if batch:
                    return batch
                if self._closing:
                    return None
                self._ready.wait()

    def _work(self, pipeline: Pipeline) -> None:
        while (batch := self._take_batch()) is not None:
            started = time.perf_counter()
            for job, outcome in zip(batch, score_photos(pipeline, [j.data for j in batch]), strict=True):
                if isinstance(outcome, InspectionResult):
                    queue_ms = round((started - job.queued_at) * 1000, 3)
                    outcome = dataclasses.replace(
                        outcome, timings_ms={**outcome.timings_ms, "queue": queue_ms}
                    )
                job.loop.call_soon_threadsafe(_settle, job, outcome)
