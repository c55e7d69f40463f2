"""The pipeline's per-photo work outside the models (decoding, the frame check, spectra, median and notch), on
threads or in worker processes.

Threads suit a few cores: OpenCV, NumPy and Pillow release Python's global lock for most of that work. On a
machine with many cores the rest (Pillow's read loop, the notch filter's small NumPy steps, percentiles) holds
the lock and the threads queue behind it: on a 16-core GPU machine, 8 threads judged 377 parts/s at batch 256
and 16 processes 774. Worker processes share no lock. They are started with the workers (``spawn``, never
``fork`` of a process that holds torch and CUDA state), each runs OpenCV, torch and BLAS on one thread so the
pool does not oversubscribe the CPU, and on Linux each ends when its parent does. The functions and arguments
handed to a process pool must pickle: module-level functions, ``functools.partial`` of them and the classical
denoisers do.

NumPy's BLAS should run on one thread during a batch (:meth:`PhotoWorkers.one_blas_thread`): its products here
are small (the notch filter's photo-by-vector products), and OpenBLAS's thread pool cost more than it gave. On
2 cores, with 2 worker threads, the median and notch took 5.9 ms a photo with BLAS's default 2 threads and
2.6 ms with one.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from threadpoolctl import ThreadpoolController

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _prepare_worker() -> None:
    """Each worker process: one thread for OpenCV, torch and BLAS, the per-photo work's modules imported,
    Ctrl-C left to the parent, and (Linux) an end when the parent ends, however it ends."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    import inspection.denoise
    import inspection.framecheck
    import inspection.spectrum  # noqa: F401 - imported once here, not during the first batch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    threadpool_limits(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then closes the pool
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _ready(_: int) -> None:
    """A no-op task: handing one to each worker makes the pool start them all."""


class PhotoWorkers:
    """``map`` over photos on ``n`` threads (0: one per usable CPU, at most 8), or ``n`` worker processes (0:
    one per usable CPU). Threads start on first use; processes start here, since starting them takes seconds.
    :meth:`close` stops them (a later ``map`` starts them again).

    Raises:
        ValueError: processes asked for inside a daemonic process (``serve``'s scoring processes), which may
            not start processes of its own.
    """

    def __init__(self, n: int = 0, *, processes: bool = False) -> None:
        if processes and multiprocessing.current_process().daemon:
            raise ValueError("worker processes cannot start inside a daemonic process; use worker threads")
        self.n = n or (usable_cpus() if processes else min(8, usable_cpus()))
        self.processes = processes
        self._pool: Executor | None = None
        self._start_lock = threading.Lock()
        self._blas = ThreadpoolController()
        if processes and self.n > 1:
            self._pool = self._start()

    @contextlib.contextmanager
    def one_blas_thread(self) -> Iterator[None]:
        """NumPy's BLAS on one thread inside the block, its own count back after it (a thread other than the
        one that set the limit first changes nothing: OpenBLAS has one thread pool a process)."""
        with self._blas.limit(limits=1, user_api="blas"):
            yield

    def map(self, fn: Callable[..., Any], *items: Iterable[Any]) -> list[Any]:
        """``fn`` over ``items`` (zipped, as the builtin ``map``, of equal lengths), in order; in the caller's
        thread when there is one worker or one item. A pool that broke (a worker killed) is dropped, so the
        next call starts a fresh one, and the error is raised."""
        return self.map_async(fn, *items)()

    def map_async(self, fn: Callable[..., Any], *items: Iterable[Any]) -> Callable[[], list[Any]]:
        """:meth:`map`, started now on the workers: the caller goes on and calls what this returns for the
        results (with one worker or one item the work runs then, in the caller's thread). A broken pool's error
        comes from that call too."""
        columns = [list(column) for column in items]
        if len({len(c) for c in columns}) > 1:
            raise ValueError(f"map over columns of unequal lengths {[len(c) for c in columns]}")
        count = len(columns[0]) if columns else 0
        if self.n < 2 or count < 2:
            return lambda: [fn(*args) for args in zip(*columns, strict=True)]
        with self._start_lock:
            pool = self._pool = self._pool or self._start()
        # a process pool ships its work in chunks: one round trip per few photos, not per photo
        chunk = max(1, count // (self.n * 4)) if self.processes else 1
        try:
            running = pool.map(fn, *columns, chunksize=chunk)
        except BrokenExecutor as e:
            self._drop(pool)
            broken = e

            def failed() -> list[Any]:
                raise broken

            return failed

        def results() -> list[Any]:
            try:
                return list(running)
            except BrokenExecutor:
                self._drop(pool)
                raise

        return results

    def _drop(self, pool: Executor) -> None:
        with self._start_lock:
            if self._pool is pool:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _start(self) -> Executor:
        if not self.processes:
            return ThreadPoolExecutor(self.n, thread_name_prefix="inspection")
        pool = ProcessPoolExecutor(
            self.n, mp_context=multiprocessing.get_context("spawn"), initializer=_prepare_worker
        )
        try:  # processes start on demand: start them all now, not one by one inside later batches
            list(pool.map(_ready, range(self.n)))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return pool

    def close(self) -> None:
        """Stop the threads or processes."""
        with self._start_lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
