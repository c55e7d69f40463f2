"""The pipeline's per-photo workers: threads or processes give the serial answers, in order, and NumPy's BLAS
runs on one thread inside them and gets its own thread count back afterwards."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from inspection.data import synth_casting
from inspection.denoise import MedianDenoiser, NotchDenoiser, noise_profile
from inspection.noise import add_noise
from inspection.photoworkers import PhotoWorkers


def blas_threads(_: object = None) -> list[int]:
    """The thread counts of the BLAS libraries loaded in this process (at module level, so it pickles)."""
    return [lib["num_threads"] for lib in ThreadpoolController().info() if lib["user_api"] == "blas"]


@pytest.fixture(scope="module")
def noisy() -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [
        add_noise(synth_casting(rng, 96, None), ("salt_pepper", "periodic")[i % 2], rng=rng) for i in range(6)
    ]


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_workers_give_the_serial_answers_in_order(noisy, processes):
    denoisers = [MedianDenoiser(), NotchDenoiser()] * 3
    expected = [d(photo) for d, photo in zip(denoisers, noisy, strict=True)]
    workers = PhotoWorkers(2, processes=processes)
    try:
        out = workers.map(operator.call, denoisers, noisy)
        profiles = workers.map(noise_profile, noisy)
        assert workers.map(noise_profile, []) == []
    finally:
        workers.close()
    assert all(np.array_equal(a, b) for a, b in zip(out, expected, strict=True))
    assert profiles == [noise_profile(photo) for photo in noisy]


@pytest.mark.parametrize("n", [1, 2], ids=["inline", "threads"])
def test_blas_runs_on_one_thread_inside_and_is_restored_after(n):
    before = blas_threads()
    workers = PhotoWorkers(n)
    try:
        inside = workers.map(blas_threads, range(4))
    finally:
        workers.close()
    assert all(counts and set(counts) == {1} for counts in inside)
    assert blas_threads() == before


def test_worker_processes_run_blas_on_one_thread():
    workers = PhotoWorkers(2, processes=True)
    try:
        inside = workers.map(blas_threads, range(4))
    finally:
        workers.close()
    assert all(counts and set(counts) == {1} for counts in inside)
