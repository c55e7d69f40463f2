"""The pipeline's per-photo workers: threads or processes give the serial answers, in order; NumPy's BLAS runs
on one thread during a batch and gets its own count back after it; a broken process pool is replaced."""

from __future__ import annotations

import multiprocessing
import operator
import os
from concurrent.futures import BrokenExecutor

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from inspection.data import synth_casting
from inspection.denoise import MedianDenoiser, NotchDenoiser, noise_profile
from inspection.noise import add_noise
from inspection.photoworkers import PhotoWorkers
from inspection.pipeline import InspectionPipeline


def blas_threads(_: object = None) -> list[int]:
    """The thread counts of the BLAS libraries loaded in this process (at module level, so it pickles)."""
    return [lib["num_threads"] for lib in ThreadpoolController().info() if lib["user_api"] == "blas"]


def die(_: object) -> None:
    os._exit(3)  # a worker process killed mid-task, as by the kernel's out-of-memory killer


def start_in_a_daemon(errors: multiprocessing.Queue) -> None:
    try:
        PhotoWorkers(2, processes=True)
    except ValueError as e:
        errors.put(str(e))


@pytest.fixture(scope="module")
def noisy() -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    kinds = ("salt_pepper", "periodic")
    return [add_noise(synth_casting(rng, 96, None), kinds[i % 2], rng=rng) for i in range(6)]


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_workers_give_the_serial_answers_in_order(noisy, processes):
    denoisers = [MedianDenoiser(), NotchDenoiser()] * 3
    expected = [d(photo) for d, photo in zip(denoisers, noisy, strict=True)]
    workers = PhotoWorkers(2, processes=processes)
    try:
        out = workers.map(operator.call, denoisers, noisy)
        profiles = workers.map(noise_profile, noisy)
        assert workers.map(noise_profile, []) == []
        with pytest.raises(ValueError, match="unequal lengths"):
            workers.map(operator.call, denoisers, noisy[:2])
    finally:
        workers.close()
    assert all(np.array_equal(a, b) for a, b in zip(out, expected, strict=True))
    assert profiles == [noise_profile(photo) for photo in noisy]


def test_blas_runs_on_one_thread_in_a_batch_and_gets_its_count_back():
    with threadpool_limits(2, user_api="blas"):  # whatever earlier tests or the environment left
        workers = PhotoWorkers(2)
        try:
            with workers.one_blas_thread():
                inside = workers.map(blas_threads, range(4))
            after = blas_threads()
        finally:
            workers.close()
    assert all(counts and set(counts) == {1} for counts in inside)
    assert set(after) == {2}


def test_the_pipeline_judges_a_batch_with_blas_on_one_thread(tiny_models, casting_photo):
    seen: list[list[int]] = []

    class Recorder:
        name = "recorder"

        def __call__(self, image):
            seen.append(blas_threads())
            return image

    pipe = InspectionPipeline.from_dir(tiny_models)
    pipe.router.denoisers = {**pipe.router.denoisers, "identity": Recorder()}  # type: ignore[misc]
    pipe.router.routes = dict.fromkeys(pipe.router.routes, "identity")
    with threadpool_limits(2, user_api="blas"):
        pipe.inspect_batch([casting_photo, casting_photo])
        after = blas_threads()
    pipe.close()
    assert len(seen) == 2 and all(set(counts) == {1} for counts in seen)
    assert set(after) == {2}


def test_worker_processes_run_blas_on_one_thread():
    workers = PhotoWorkers(2, processes=True)
    try:
        inside = workers.map(blas_threads, range(4))
    finally:
        workers.close()
    assert all(counts and set(counts) == {1} for counts in inside)


def test_a_broken_process_pool_is_replaced(noisy):
    workers = PhotoWorkers(2, processes=True)
    try:
        with pytest.raises(BrokenExecutor):
            workers.map(die, range(4))
        profiles = workers.map_async(noise_profile, noisy)  # runs while the caller goes on
        assert profiles() == [noise_profile(photo) for photo in noisy]
        dying = workers.map_async(die, range(4))
        with pytest.raises(BrokenExecutor):  # reported when the results are asked for
            dying()
        assert workers.map(noise_profile, noisy) == [noise_profile(photo) for photo in noisy]
    finally:
        workers.close()


def test_worker_processes_are_refused_inside_a_daemonic_process():
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    child = ctx.Process(target=start_in_a_daemon, args=(errors,), daemon=True)
    child.start()
    child.join(60)
    assert "daemonic" in errors.get(timeout=5)
