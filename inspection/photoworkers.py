"""The pipeline's per-photo work outside the models (decoding, the frame check, spectra, median and notch), on
threads or in worker processes.

Threads suit a few cores: OpenCV, NumPy and Pillow release Python's global lock for most of that work. On a
machine with many cores the rest (Pillow's read loop, the notch filter's small NumPy steps, percentiles) holds
the lock and the threads queue behind it: on a 16-core GPU machine, 8 threads judged 312 parts/s at batch 256.
Worker processes share no lock. They are started once, with ``spawn`` (never ``fork`` of a process that holds
torch and CUDA state), and each runs OpenCV, torch and BLAS on one thread so the pool does not oversubscribe
the CPU. The functions and arguments handed to a process pool must pickle: module-level functions,
``functools.partial`` of them and the classical denoisers do.

Either way NumPy's BLAS runs on one thread during this work: its products here are small (the notch filter's
photo-by-vector products), and a BLAS thread pool per call cost more than it gave. On 2 cores, with 2 worker
threads, the median and notch took 5.9 ms a photo with BLAS's default 2 threads and 2.6 ms with one.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from threadpoolctl import ThreadpoolController, threadpool_limits


def _prepare_worker() -> None:
    """Each worker process: one thread for OpenCV, torch and BLAS, the per-photo work's modules imported, and
    Ctrl-C left to the parent."""
    import cv2
    import torch

    import inspection.denoise
    import inspection.framecheck
    import inspection.spectrum  # noqa: F401 - imported once here, not during the first batch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    threadpool_limits(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then closes the pool


def _ready(_: int) -> None:
    """A no-op task: handing one to each worker makes the pool start them all."""


class PhotoWorkers:
    """``map`` over photos on ``n`` threads, or ``n`` worker processes; started on first use, stopped by
    :meth:`close` (a later ``map`` starts them again)."""

    def __init__(self, n: int, *, processes: bool = False) -> None:
        self.n = max(1, n)
        self.processes = processes
        self._pool: Executor | None = None
        self._blas: ThreadpoolController | None = None

    def map(self, fn: Callable[..., Any], *items: Iterable[Any]) -> list[Any]:
        """``fn`` over ``items`` (zipped, as the builtin ``map``), in order; in the caller's thread when there
        is one worker or one item."""
        columns = [list(column) for column in items]
        count = len(columns[0]) if columns else 0
        pool = None
        if self.n > 1 and count > 1:
            pool = self._pool = self._pool or self._start()
        if pool is not None and self.processes:
            # shipped in chunks: one round trip per few photos, not per photo
            return list(pool.map(fn, *columns, chunksize=max(1, count // (self.n * 4))))
        if self._blas is None:
            self._blas = ThreadpoolController()  # reads the loaded libraries once (about 2 ms)
        with self._blas.limit(limits=1, user_api="blas"):
            if pool is not None:
                return list(pool.map(fn, *columns))
            return [fn(*args) for args in zip(*columns, strict=True)]

    def _start(self) -> Executor:
        if not self.processes:
            return ThreadPoolExecutor(self.n, thread_name_prefix="inspection")
        pool = ProcessPoolExecutor(
            self.n, mp_context=multiprocessing.get_context("spawn"), initializer=_prepare_worker
        )
        # processes start on demand; start them all now (a few seconds), not one by one inside later batches
        list(pool.map(_ready, range(self.n)))
        return pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
