"""A pipeline in a process of its own, so model work never waits on the server's Python threads.

In one process the scoring thread shares the GIL with the event loop and the database threads: each time a
torch op returns, the scorer waits for its turn, and on 2 cores a photo took 2-3 times as long as on its own.
:class:`ProcessPipeline` runs :class:`inspection.pipeline.InspectionPipeline` in a child process and speaks to it
over a pipe (photo bytes in, results out); it has the same ``inspect_batch`` and ``model_versions``, so the
:class:`inspection.service.BatchScorer` drives it like a local one. A child that dies is started again, and the
batch it held is reported as failed (``internal_error`` for each photo, kept for review).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

from inspection.results import InspectionResult, Rejection

log = logging.getLogger(__name__)
START_TIMEOUT_S = 300.0
BATCH_TIMEOUT_S = 300.0  # a batch of 8 takes well under a second; a child silent this long is stuck


def _serve(
    conn: Connection, models: str | None, torch_threads: int, backend: str = "torch", device: str = "cpu"
) -> None:
    """The child: load the pipeline, describe it, then answer each batch until told to stop or orphaned."""
    import torch

    from inspection.bundle import load_bundle
    from inspection.pipeline import InspectionPipeline

    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    bundle = load_bundle(models)
    pipeline = InspectionPipeline.from_bundle(bundle, backend=backend, device=device)
    tasks = {t: getattr(pipeline, t, None) for t in pipeline.model_versions}
    described = {t: (dict(ck.meta), str(ck.path)) for t, ck in tasks.items() if ck is not None}
    conn.send((dict(pipeline.model_versions), described, pipeline.bundle_version, dict(bundle.card)))
    try:
        while (images := conn.recv()) is not None:
            try:
                conn.send(pipeline.inspect_batch(images))
            except Exception as e:  # noqa: BLE001 - sent back to the server, which isolates the photo
                conn.send(RuntimeError(f"{e.__class__.__name__}: {e}"))
    except EOFError:  # the server is gone
        pass
    finally:
        pipeline.close()


class ProcessPipeline:
    """An ``InspectionPipeline`` in a child process.

    Args:
        models: a bundle folder, or a models root (its live bundle; None: the shipped models). The service passes
            the bundle folder, so a child started again after a crash loads the same bundle.
        torch_threads: torch threads in the child (0: torch's default).
        backend: what runs the models in the child (:mod:`inspection.runtimes`).
        device: where the torch backend runs them in the child: ``cpu`` or ``cuda``.
    """

    def __init__(
        self,
        models: str | None = None,
        *,
        torch_threads: int = 1,
        backend: str = "torch",
        device: str = "cpu",
    ) -> None:
        self.models = models
        self.torch_threads = torch_threads
        self.backend = backend
        self.device = device
        self.model_versions: dict[str, str] = {}
        self.bundle_version = ""
        self.card: dict[str, Any] = {}  # the bundle's card.json (what it was trained on)
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads and torch state
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve,
            args=(child, self.models, self.torch_threads, self.backend, self.device),
            name="inspection-scorer",
            daemon=True,
        )
        self._process.start()
        child.close()
        if not self._conn.poll(START_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the scoring process did not load the models within {START_TIMEOUT_S:.0f} s")
        try:
            versions, described, self.bundle_version, self.card = self._conn.recv()
        except EOFError as e:
            raise RuntimeError(
                f"the scoring process exited with code {self._process.exitcode} while loading the models "
                f"from {self.models or 'the shipped default'}; see the log above"
            ) from e
        self.model_versions = versions
        for task, (meta, path) in described.items():  # what RecordStore.register_models reads
            setattr(self, task, SimpleNamespace(meta=meta, path=path))

    def inspect_batch(self, images: Sequence[Any]) -> list[InspectionResult | Rejection]:
        """Score a batch in the child; raises ``RuntimeError`` when the child failed or died (then restarted)."""
        try:
            self._conn.send([bytes(i) if isinstance(i, (bytearray, memoryview)) else i for i in images])
            if not self._conn.poll(BATCH_TIMEOUT_S):
                raise TimeoutError(f"no answer within {BATCH_TIMEOUT_S:.0f} s")
            out = self._conn.recv()
        except (EOFError, OSError) as e:  # TimeoutError is an OSError
            log.error(
                "the scoring process failed (%s, exit code %s); starting a new one", e, self._process.exitcode
            )
            self.close()
            self._start()
            raise RuntimeError("the scoring process died or hung while scoring this batch") from e
        if isinstance(out, BaseException):
            raise out
        return list(out)

    def close(self) -> None:
        """Stop the child (it finishes the batch it holds)."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


def start_pipelines(
    models: str, count: int, *, torch_threads: int = 1, backend: str = "torch", device: str = "cpu"
) -> list[ProcessPipeline]:
    """``count`` scoring processes of one bundle; if one fails to start, those already started are stopped.

    Raises:
        RuntimeError: a process could not load the models (the message says where to look).
    """
    started: list[ProcessPipeline] = []
    try:
        for _ in range(count):
            started.append(
                ProcessPipeline(models, torch_threads=torch_threads, backend=backend, device=device)
            )
    except BaseException:
        for p in started:
            p.close()
        raise
    return started
