"""Image in, verdict out: noise type -> routed denoiser -> defect classifier."""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from inspection import NOISE_TYPES, ondevice
from inspection.bundle import Bundle, BundleError, VerdictPolicy, load_bundle
from inspection.denoise import (
    DEFAULT_ROUTES,
    AutoencoderDenoiser,
    Denoiser,
    IdentityDenoiser,
    NoiseProfile,
    Router,
    build_denoisers,
    noise_profile,
)
from inspection.framecheck import checked_gray
from inspection.imageio import DecodedImage, ImageInput
from inspection.models.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from inspection.models.inference import for_inference
from inspection.ood import OodModel, ood_features
from inspection.photoworkers import PhotoWorkers, usable_cpus
from inspection.results import InspectionResult, Rejection
from inspection.runtimes import ModelRunners, Runner, TorchRunner, check_backend, check_device, load_runners
from inspection.spectrum import noise_features, noise_features_batch
from inspection.transforms import DefectTransform

TASKS = ("noise", "denoiser", "defect")
# On a device, fewer median or notch photos of one size than this take the per-photo path on the workers.
DEVICE_MIN_PHOTOS = 8
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """How photos are routed.

    Attributes:
        routes: noise type -> denoiser name (``identity``, ``median``, ``notch``, ``autoencoder``).
        min_confidence: below this noise-type probability the photo takes ``safe_denoiser`` instead.
        safe_denoiser: the route for unsure photos.
        max_signal_dependence: photos routed to the autoencoder whose noise is this many times stronger in their
            brightest third than in their darkest (``denoise.noise_profile``) take the safe path; 0 = never.
            Calibrated on training photos only: protocol Gaussian noise gave at most 1.17 on 500 casting
            photos (1.29 on synthetic ones, where clipping at black shrinks dark noise); Poisson-Gaussian
            sensor noise gave above 1.25 on 98.8% of the casting photos and all synthetic ones.
        max_noise_sigma: photos routed to the autoencoder whose estimated noise sigma is above this take the safe path
            (0 = never): the autoencoder learned sigma 10 to 50, which estimates at most 46.8 on 500 casting
            training photos (clipping trims it).
        min_denoise_sigma: photos routed to the autoencoder whose estimated noise sigma is below this keep their
            pixels (``denoise.Router``); 0 = never. Set from the defect model's training (``bundle.default_routing``),
            which must have seen the same rule.
        min_part_contrast: frames with less structure than this, in gray levels once noise is smoothed
            (``framecheck.part_contrast``), are refused as ``not_a_part``; 0 = never.
        workers: threads (or processes) for the per-photo work outside the models (decoding, the frame check,
            spectra, median, notch); OpenCV and NumPy release the GIL there. 0 means one per CPU this process
            may use, at most 8 threads (processes: one per CPU, less one on a GPU, for the thread that feeds it).
        worker_processes: run that work in worker processes (:mod:`inspection.photoworkers`): pays on machines
            with many cores, where threads queue on Python's lock; not inside a daemonic process (``serve``).
    """

    routes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROUTES))
    min_confidence: float = 0.0
    safe_denoiser: str = "identity"
    max_signal_dependence: float = 1.25
    max_noise_sigma: float = 48.0
    min_denoise_sigma: float = 0.0
    min_part_contrast: float = 40.0
    workers: int = 0
    worker_processes: bool = False


# PipelineConfig fields that belong to the machine that runs it, never to a bundle's pipeline.json
MACHINE_SETTINGS = frozenset({"workers", "worker_processes"})


def load_ood(bundle: Bundle) -> OodModel | None:
    """The bundle's OOD check, or None when it has none; one that cannot be read is a ``BundleError``."""
    if bundle.ood_file is None:
        return None
    try:
        return OodModel.load(bundle.ood_file)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error type for a damaged file
        raise BundleError(
            f"{bundle.ood_file} cannot be read ({type(e).__name__}: {e}); fit it again with "
            f"`inspection models fit-ood {bundle.path} --data DIR` (with --live-ok if it is the live bundle)"
        ) from e


class RuntimeAutoencoder(AutoencoderDenoiser):
    """The autoencoder route run by an exported model (:mod:`inspection.runtimes`): the same batching by photo
    size, scaling and rounding to 8 bits as the torch one (bit for bit: float32 division, clipping and
    round-half-even alike), so routing treats both alike.

    The scaling and rounding are NumPy's, single-threaded: torch's elementwise operations between two runtime
    calls woke torch's own thread pool, whose threads then spun against the runtime's on the same cores. Where
    OpenMP spins (its default, as in a library caller; the CLI sets ``OMP_WAIT_POLICY=PASSIVE``) that cost up to
    about 5 ms a 300x300 photo on 2 cores; under the CLI it makes no measurable difference
    (``docs/proofs/autoencoder_call_ms.py``).
    """

    def __init__(self, runner: Runner, *, version: str = "") -> None:  # no torch module to copy
        self.runner = runner
        self.version = version
        self.device = "cpu"

    def denoise_stack(self, stack: np.ndarray) -> np.ndarray:
        x = stack[:, None].astype(np.float32) / np.float32(255.0)
        y = np.clip(self.runner(x)[0], 0, 1) * np.float32(255.0)
        return np.rint(y).astype(np.uint8)[:, 0]


class InspectionPipeline:
    """The routed inspection pipeline over three checkpoints.

    Example:
        >>> pipe = InspectionPipeline.from_dir()          # the shipped defaults
        >>> result = pipe.inspect("part_0001.png")
        >>> result.verdict, result.noise_type, result.denoiser
    """

    def __init__(
        self,
        noise: Checkpoint,
        defect: Checkpoint,
        denoiser: Checkpoint | None = None,
        config: PipelineConfig | None = None,
        policy: VerdictPolicy | None = None,
        bundle_version: str = "",
        ood: OodModel | None = None,
        runners: ModelRunners | None = None,
        device: str = "cpu",
    ) -> None:
        check_device(device, runners.backend if runners else "torch")
        self.device = device
        # The per-photo work outside the models as batches on the device (spectra with torch.fft, the noise
        # profile, median, notch, the defect model's resizing, the OOD statistics: inspection.ondevice): on a GPU
        # only; on 2 CPU cores the spectra's batch took 8.8 ms a 300 px photo against 1.7 ms for NumPy and OpenCV
        # (the tests switch it on to check both agree).
        self.batch_on_device = device != "cpu"
        if device != "cpu":
            # float32 as on the CPU, where thresholds and calibration were fitted: no TF32 convolutions (cuDNN's
            # default), which round inputs to 10-bit mantissas
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self.noise = noise
        self.defect = defect
        self.denoiser = denoiser
        self.config = config or PipelineConfig()
        self.noise_net = for_inference(noise.model)
        self.defect_net = for_inference(defect.model)
        self.workers = PhotoWorkers(self._worker_count(), processes=self.config.worker_processes)
        self.backend = runners.backend if runners else "torch"
        self.noise_runner: Runner = (
            runners.noise if runners else TorchRunner(self.noise_net, channels_last=True, device=device)
        )
        # features always: an OOD check set on the pipeline later finds them (the hook costs nothing measurable)
        self.defect_runner: Runner = (
            runners.defect if runners else TorchRunner(self.defect_net, features=True, device=device)
        )
        denoisers = self._denoisers(denoiser, runners)
        self.router = Router(denoisers, self.config.routes, self.config.min_denoise_sigma)
        self.safe = denoisers[self.config.safe_denoiser]
        self._read_noise_meta(noise)
        self._read_defect_meta(defect, policy)
        self.bundle_version = bundle_version
        self.ood = ood
        loaded = {"noise": noise, "defect": defect, **({"denoiser": denoiser} if denoiser else {})}
        self.model_versions = {task: ck.version for task, ck in loaded.items()}
        self.architectures = {task: str(ck.meta["architecture"]) for task, ck in loaded.items()}

    def _worker_count(self) -> int:
        """The config's decoding workers; on a GPU with worker processes, all but one core by default."""
        if not self.config.workers and self.device != "cpu" and self.config.worker_processes:
            return max(1, usable_cpus() - 1)  # a core left to the thread that feeds the GPU
        return self.config.workers

    def _denoisers(self, denoiser: Checkpoint | None, runners: ModelRunners | None) -> dict[str, Denoiser]:
        """Every route's denoiser; the autoencoder on the pipeline's device, or on the runtime when exported."""
        denoisers = build_denoisers(
            denoiser.model if denoiser else None, version=denoiser.version if denoiser else ""
        )
        if self.device != "cpu" and "autoencoder" in denoisers:
            ae = denoisers["autoencoder"]
            assert isinstance(ae, AutoencoderDenoiser)
            ae.model, ae.device = ae.model.to(self.device), self.device
        if runners and runners.denoiser and denoiser:
            denoisers["autoencoder"] = RuntimeAutoencoder(runners.denoiser, version=denoiser.version)
        return denoisers

    def _read_noise_meta(self, noise: Checkpoint) -> None:
        self.noise_classes = list(noise.meta["class_names"])
        if sorted(self.noise_classes) != sorted(NOISE_TYPES):
            raise CheckpointError(
                f"noise model classes {self.noise_classes} are not the noise types {NOISE_TYPES}"
            )
        self.noise_size = int(noise.meta["input_size"])
        self.noise_channels = int(
            noise.meta["model_kwargs"].get("in_chans", noise.meta.get("input_channels", 1))
        )
        self.noise_temperature = float(noise.meta.get("calibration", {}).get("temperature", 1.0))

    def _read_defect_meta(self, defect: Checkpoint, policy: VerdictPolicy | None) -> None:
        self.transform = DefectTransform.from_meta(defect.meta)
        self.kinds = [str(k) for k in defect.meta.get("kinds", [])]
        self.temperature = float(defect.meta.get("calibration", {}).get("temperature", 1.0))
        threshold = defect.meta["threshold"] if defect.meta["threshold"] is not None else 0.5
        self.policy = policy or VerdictPolicy(threshold=float(threshold))

    @property
    def threshold(self) -> float:
        return self.policy.threshold

    @classmethod
    def from_dir(
        cls,
        models_dir: str | Path | None = None,
        config: PipelineConfig | None = None,
        *,
        workers: int = 0,
        worker_processes: bool = False,
        backend: str = "torch",
        device: str = "cpu",
    ) -> InspectionPipeline:
        """Load a bundle, or a models root's live bundle (:func:`inspection.bundle.load_bundle`).

        ``None`` means the default models. The bundle's ``pipeline.json`` gives the routing and the verdict
        policy; ``config`` replaces the routing (evaluation studies use this), ``workers`` sets the threads
        (``worker_processes``: processes, see :class:`PipelineConfig`), ``backend`` what runs the models
        (:mod:`inspection.runtimes`), ``device`` where torch runs them.
        """
        bundle = load_bundle(models_dir)
        return cls.from_bundle(
            bundle, config, workers=workers, worker_processes=worker_processes, backend=backend, device=device
        )

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        config: PipelineConfig | None = None,
        *,
        workers: int = 0,
        worker_processes: bool = False,
        with_ood: bool = True,
        backend: str = "torch",
        device: str = "cpu",
    ) -> InspectionPipeline:
        """The pipeline a bundle describes: its three checkpoints, routing, verdict policy and OOD check.

        ``with_ood=False`` leaves the OOD check out (``inspection models fit-ood`` builds its pipeline so).
        ``backend`` other than ``torch`` runs the bundle's exported models (``inspection export``); when its
        package or files are missing that is a ``BackendError``, never a quiet fall back to torch. ``device``
        ``cuda`` runs the torch models and the per-photo work of :mod:`inspection.ondevice` on the GPU; without one
        that is a ``BackendError`` too.
        """
        check_device(device, backend)
        check_backend(backend)
        config = config or PipelineConfig(**bundle.routing)
        if workers or worker_processes:
            config = replace(
                config,
                workers=workers or config.workers,
                worker_processes=worker_processes or config.worker_processes,
            )
        denoiser_dir = bundle.checkpoint_dir("denoiser")
        defect = load_checkpoint(bundle.required_dir("defect"))
        stored = DefectTransform.from_meta(defect.meta).to_meta()
        if bundle.preprocessing and bundle.preprocessing != stored:
            raise BundleError(
                f"{bundle.path}: pipeline.json's preprocessing {bundle.preprocessing} differs from the defect "
                f"model's own {stored}; the bundle was edited by hand or assembled from mismatched parts"
            )
        noise = load_checkpoint(bundle.required_dir("noise"))
        denoiser = load_checkpoint(denoiser_dir) if denoiser_dir else None
        checkpoints = {"noise": noise, "defect": defect, **({"denoiser": denoiser} if denoiser else {})}
        runners = None
        if backend != "torch":
            runners = load_runners(bundle.path, backend, checkpoints, threads=torch.get_num_threads())
        return cls(
            noise=noise,
            defect=defect,
            denoiser=denoiser,
            config=config,
            policy=bundle.policy,
            bundle_version=bundle.version,
            ood=load_ood(bundle) if with_ood else None,
            runners=runners,
            device=device,
        )

    # --- stages, each usable on its own (evaluation and the dashboard call them) ---------------------

    @torch.inference_mode()
    def classify_noise(self, grays: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated noise-type probabilities ``(n, 4)`` in the order of ``NOISE_TYPES``."""
        features = self._noise_features(grays)
        if isinstance(features, torch.Tensor):  # batched on the device: only for the torch backend
            assert isinstance(self.noise_runner, TorchRunner)
            logits = torch.from_numpy(self.noise_runner(features)[0])
        else:
            logits = torch.from_numpy(self.noise_runner(features)[0])
        probs = torch.softmax(logits / self.noise_temperature, dim=1).numpy()
        order = [self.noise_classes.index(t) for t in NOISE_TYPES]
        return probs[:, order]

    def _noise_features(self, grays: Sequence[np.ndarray]) -> np.ndarray | torch.Tensor:
        """The noise model's inputs: per photo with NumPy and OpenCV on the worker threads, or (``batch_on_device``)
        in one ``torch.fft`` batch per photo size on the device."""
        if not self._on_device():
            return np.stack(
                self.workers.map(
                    partial(noise_features, size=self.noise_size, channels=self.noise_channels), grays
                )
            )
        out = torch.empty(
            (len(grays), self.noise_channels, self.noise_size, self.noise_size), device=self.device
        )
        for idx in ondevice.group_indices([g.shape for g in grays]):
            batch = [grays[i] for i in idx]
            out[idx] = noise_features_batch(batch, self.noise_size, self.noise_channels, self.device)
        return out

    def route(self, probs: np.ndarray, grays: Sequence[np.ndarray]) -> list[tuple[str, Denoiser, bool]]:
        """For each photo: (noise type, denoiser, took the safe path).

        The safe path is taken when the noise type is unsure, and for photos routed to the autoencoder whose
        noise is unlike what it was trained on: stronger, or growing with brightness (sensor shot noise). An
        autoencoder photo with less noise than the router's ``min_denoise_sigma`` keeps its pixels (not unsure).
        """
        out = []
        for p in probs:
            noise_type = NOISE_TYPES[int(np.argmax(p))]
            unsure = float(p.max()) < self.config.min_confidence
            out.append((noise_type, self.safe if unsure else self.router.denoiser_for(noise_type), unsure))
        cfg = self.config
        to_check = [
            i for i, (_, d, _) in enumerate(out) if isinstance(d, AutoencoderDenoiser) and d is not self.safe
        ]
        if to_check and (
            cfg.max_signal_dependence > 0 or cfg.max_noise_sigma > 0 or cfg.min_denoise_sigma > 0
        ):
            profiles = self._noise_profiles([grays[i] for i in to_check])
            for i, prof in zip(to_check, profiles, strict=True):
                too_strong = 0 < cfg.max_noise_sigma < prof.sigma
                if too_strong or 0 < cfg.max_signal_dependence < prof.signal_dependence:
                    out[i] = (out[i][0], self.safe, True)
                else:
                    out[i] = (out[i][0], self.router.gated(out[i][1], prof.sigma), False)
        return out

    def _on_device(self) -> bool:
        return self.batch_on_device and self.backend == "torch"

    def _noise_profiles(self, grays: Sequence[np.ndarray]) -> list[NoiseProfile]:
        if not self._on_device():
            return self.workers.map(noise_profile, grays)
        out: list[NoiseProfile | None] = [None] * len(grays)
        for idx in ondevice.group_indices([g.shape for g in grays]):
            profiles = ondevice.noise_profiles(ondevice.upload([grays[i] for i in idx], self.device))
            for i, prof in zip(idx, profiles, strict=True):
                out[i] = prof
        return [p for p in out if p is not None]

    def _device_batches(self, grays: Sequence[np.ndarray], denoisers: Sequence[Denoiser]) -> list[list[int]]:
        """The median and notch photos to denoise on the device: a batch per denoiser and photo size, of at least
        ``DEVICE_MIN_PHOTOS`` photos (one notch photo on an H200 took longer than on a CPU core: batch-1 p99 41 ms
        against 23 ms before; 64 took 28 ms against 6.4 ms each on one core)."""
        if not self._on_device():
            return []
        fits = [
            i for i, d in enumerate(denoisers) if ondevice.supports(d) and ondevice.fits_blur(grays[i].shape)
        ]
        groups = ondevice.group_indices([(id(denoisers[i]), grays[i].shape) for i in fits])
        return [[fits[j] for j in idx] for idx in groups if len(idx) >= DEVICE_MIN_PHOTOS]

    def denoise(self, grays: Sequence[np.ndarray], denoisers: Sequence[Denoiser]) -> list[np.ndarray]:
        """Apply each photo's denoiser; autoencoder photos run as one batch, and on a device the median and notch
        photos too, a batch per denoiser and photo size (:meth:`_device_batches`)."""
        out: list[np.ndarray] = list(grays)
        ae_idx = [i for i, d in enumerate(denoisers) if isinstance(d, AutoencoderDenoiser)]
        if ae_idx:
            ae = denoisers[ae_idx[0]]
            assert isinstance(ae, AutoencoderDenoiser)
            for i, y in zip(ae_idx, ae.denoise_batch([grays[i] for i in ae_idx]), strict=True):
                out[i] = y
        batched = self._device_batches(grays, denoisers)
        for rows in batched:
            run = ondevice.batch_denoiser(denoisers[rows[0]])  # type: ignore[arg-type]
            cleaned = run(ondevice.upload([grays[i] for i in rows], self.device)).cpu().numpy()
            for i, y in zip(rows, cleaned, strict=True):
                out[i] = y
        on_device = {i for rows in batched for i in rows}
        rest = [
            i
            for i, d in enumerate(denoisers)
            if not isinstance(d, AutoencoderDenoiser | IdentityDenoiser) and i not in on_device
        ]
        rest_out = self.workers.map(operator.call, [denoisers[i] for i in rest], [grays[i] for i in rest])
        for i, y in zip(rest, rest_out, strict=True):
            out[i] = y
        return out

    def defect_outputs(self, grays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated P(defective) ``(n,)`` and kind probabilities ``(n, kinds)`` (no denoising here)."""
        p_defect, kinds, _ = self.defect_and_ood(grays)
        return p_defect, kinds

    @torch.inference_mode()
    def defect_and_ood(self, grays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`defect_outputs`, and each photo's OOD score from the same pass (None without an OOD model)."""
        x = (
            ondevice.defect_input(self.transform, grays, self.device)
            if self._on_device()
            else self.transform(grays)
        )
        outputs = self.defect_runner(x if self._on_device() else x.numpy())
        logits, scores = torch.from_numpy(outputs[0]), None
        if self.ood is not None:
            scores = self.ood.score(ood_features(torch.from_numpy(outputs[1]), x))
        p_defect = torch.sigmoid(logits[:, 0] / self.temperature).numpy()
        kinds = torch.softmax(logits[:, 1:], dim=1).numpy() if self.kinds else np.zeros((len(grays), 0))
        return p_defect, kinds, scores

    def defect_probability(self, grays: Sequence[np.ndarray]) -> np.ndarray:
        """P(defective) for each photo, as the defect classifier sees it (no denoising here)."""
        return self.defect_outputs(grays)[0]

    def close(self) -> None:
        """Stop the worker threads or processes (a later batch starts them again)."""
        self.workers.close()

    # --- the whole pipeline ----------------------------------------------------------------------------

    def inspect(self, image: ImageInput) -> InspectionResult:
        """Judge one photo; raises ``Rejection`` when it is not a usable photo."""
        result = self.inspect_batch([image])[0]
        if isinstance(result, Rejection):
            raise result
        return result

    def inspect_batch(self, images: Sequence[ImageInput]) -> list[InspectionResult | Rejection]:
        """Judge many photos; a bad one becomes a ``Rejection`` in its place and the rest carry on.

        A photo that decodes but then breaks a model stage (``internal_error``) is found by judging the
        batch's photos one by one, so it cannot take the others down with it.
        """
        return self._finish_batch(self._start_decoding(images))

    def inspect_stream(
        self, batches: Iterable[Sequence[ImageInput]]
    ) -> Iterator[list[InspectionResult | Rejection]]:
        """:meth:`inspect_batch` of each batch in turn, with the next batch already decoding on the workers while
        this one is judged (the stage timings' ``decode`` is then the wait for decoded photos). It pays on a GPU,
        where judging leaves the workers idle; on the CPU judging's own work queues behind that decoding.

        A batch is yielded before an error from ``batches`` itself is raised, and a worker that dies while
        decoding costs no batch (:meth:`_decoded`)."""
        batches = iter(batches)
        pending = None
        while True:
            try:
                images = next(batches)
            except StopIteration:
                break
            except Exception:
                if pending is not None:
                    yield self._finish_batch(pending)
                raise
            decoding = self._start_decoding(images)
            if pending is not None:
                yield self._finish_batch(pending)
            pending = decoding
        if pending is not None:
            yield self._finish_batch(pending)

    def _start_decoding(
        self, images: Sequence[ImageInput]
    ) -> tuple[Sequence[ImageInput], Callable[[], list]]:
        check = partial(checked_gray, min_contrast=self.config.min_part_contrast)
        return images, self.workers.map_async(check, images)

    def _decoded(
        self, images: Sequence[ImageInput], decoding: Callable[[], list]
    ) -> list[DecodedImage | Rejection]:
        """The decoded photos of a batch. When a worker process died (a photo that crashes the decoder, the
        out-of-memory killer), each photo is decoded again alone, in this process as a one-photo batch always
        is, and one that fails becomes an ``internal_error`` in its place."""
        try:
            return decoding()
        except BrokenExecutor:
            log.exception("a worker died decoding a batch of %d; decoding its photos one by one", len(images))
        return [self._decode_alone(image) for image in images]

    def _decode_alone(self, image: ImageInput) -> DecodedImage | Rejection:
        try:
            return checked_gray(image, min_contrast=self.config.min_part_contrast)
        except Exception as e:  # noqa: BLE001 - one photo's failure must not stop the line
            log.exception("decoding a photo failed")
            return Rejection("internal_error", f"decoding this photo failed: {type(e).__name__}: {e}")

    def _finish_batch(
        self, decoding: tuple[Sequence[ImageInput], Callable[[], list]]
    ) -> list[InspectionResult | Rejection]:
        with self.workers.one_blas_thread():
            return self._judge_decoded(*decoding)

    def _judge_decoded(
        self, images: Sequence[ImageInput], decoding: Callable[[], list]
    ) -> list[InspectionResult | Rejection]:
        t0 = time.perf_counter()
        decoded: list[tuple[int, np.ndarray, str]] = []
        results: list[InspectionResult | Rejection | None] = [None] * len(images)
        for i, d in enumerate(self._decoded(images, decoding)):
            if isinstance(d, Rejection):
                results[i] = d
            else:
                decoded.append((i, d.gray, d.conversion))
        decode_ms = (time.perf_counter() - t0) * 1e3 / max(1, len(decoded))
        judged: list[InspectionResult | Rejection] = []
        try:
            judged += self._judge([g for _, g, _ in decoded], [c for _, _, c in decoded], decode_ms)
        except Exception:  # noqa: BLE001 - isolate the photo that fails, below
            judged = []
            for _, gray, conversion in decoded:
                try:
                    judged += self._judge([gray], [conversion], decode_ms)
                except Exception as e:  # noqa: BLE001 - one photo's failure must not stop the line
                    log.exception("pipeline failed on a %s photo", gray.shape)
                    judged.append(Rejection("internal_error", f"the pipeline failed on this photo: {e}"))
        for (i, _, _), r in zip(decoded, judged, strict=True):
            results[i] = r
        return [r for r in results if r is not None]

    def _judge(
        self, grays: list[np.ndarray], conversions: list[str], decode_ms: float
    ) -> list[InspectionResult]:
        if not grays:
            return []
        n = len(grays)
        t1 = time.perf_counter()
        probs = self.classify_noise(grays)
        t2 = time.perf_counter()
        routes = self.route(probs, grays)
        clean = self.denoise(grays, [d for _, d, _ in routes])
        t3 = time.perf_counter()
        p_defect, p_kinds, ood_scores = self.defect_and_ood(clean)
        t4 = time.perf_counter()
        timings = {
            "decode": decode_ms,
            "noise": (t2 - t1) * 1e3 / n,
            "denoise": (t3 - t2) * 1e3 / n,
            "defect": (t4 - t3) * 1e3 / n,
        }
        timings["total"] = sum(timings.values())
        out = []
        versions = {**self.model_versions, **({"bundle": self.bundle_version} if self.bundle_version else {})}
        versions["backend"] = self.backend
        for k, (gray, conversion) in enumerate(zip(grays, conversions, strict=True)):
            noise_type, denoiser, unsure = routes[k]
            ood_score = None if ood_scores is None else float(ood_scores[k])
            ood = ood_score is not None and ood_score > 1.0
            verdict, review_reason = self.policy.verdict(float(p_defect[k]), ood)
            kind, kind_p = "", 0.0
            if self.kinds and verdict != "ok":
                kind, kind_p = self.kinds[int(np.argmax(p_kinds[k]))], float(p_kinds[k].max())
            out.append(
                InspectionResult(
                    noise_type=noise_type,
                    noise_probability=float(probs[k].max()),
                    noise_probabilities={t: float(p) for t, p in zip(NOISE_TYPES, probs[k], strict=True)},
                    denoiser=denoiser.name,
                    defect_probability=float(p_defect[k]),
                    threshold=self.threshold,
                    verdict=verdict,
                    timings_ms={k2: round(v, 3) for k2, v in timings.items()},
                    model_versions=dict(versions),
                    conversion=conversion,
                    safe_path=unsure,
                    height=int(gray.shape[0]),
                    width=int(gray.shape[1]),
                    kind=kind,
                    kind_probability=kind_p,
                    review_reason=review_reason,
                    ood=ood,
                    ood_score=ood_score,
                )
            )
        return out
