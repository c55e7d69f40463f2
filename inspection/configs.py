"""Job configurations: one frozen dataclass per job, its fields one to one with the command's flags.

Kept free of heavy imports so the command line starts fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

TASK_DEFAULT_ARCH = {"noise": "freq_vgg_small", "denoiser": "unet_ae_fast", "defect": "defect_cnn_small"}
TASK_DEFAULT_SIZE = {"noise": 64, "denoiser": 96, "defect": 128}


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Fields map one to one onto ``inspection train`` flags.

    Attributes:
        task: ``noise``, ``denoiser`` or ``defect``.
        data: dataset root holding ``train/<class>/`` folders.
        out: models root; the run writes ``<out>/<task>/<version>/``.
        arch: registered model name (default per task).
        input_size: model input (noise, defect) or training crop (denoiser; with ``task_model``, the whole photo)
            side in pixels (default: 64 for noise, 96 for denoiser, 128 for defect).
        epochs: upper bound on epochs.
        time_budget_s: stop after this many seconds (0 = no limit); the best epoch so far is kept.
        batch_size: photos per optimiser step.
        lr: the peak learning rate of the one-cycle schedule (AdamW).
        weight_decay: AdamW's decoupled weight decay.
        val_fraction: share of ``train`` held out for validation.
        seed: seeds numpy and torch; with a fixed thread count a run is repeatable bit for bit.
        threads: torch intra-op threads (0 = torch's default).
        noise_types: for ``denoiser``, the noises it learns (one type, or several for a blind denoiser); ``camera``
            is shot and read noise, possibly correlated and JPEG-compressed (``inspection.noise.camera_noise``).
            For ``defect``, ``camera`` adds that noise, routed as ``gaussian``, to the augmentation's draws; for
            ``noise``, half the ``gaussian`` class's photos are then camera noise.
        feature_channels: for ``noise``, the input planes: 2 (log spectrum and high-pass residual) or 3 (and the
            spectrum's peaks over its radial mean, ``inspection.spectrum.spectral_peaks``); stored with the model.
        camera_aug: for ``noise``, the probability of each camera change (rescale, tone, blur or sharpening,
            JPEG) applied to a clean photo before its noise, so the model learns the noise and not the camera
            (``inspection.camera``; 0 = none).
        noise_aug: for ``defect``, the share of training photos given random noise of a routed type
            (``gaussian``, ``salt_pepper`` or ``periodic``, every one whatever ``noise_types`` says, and ``camera``
            when it names it), left as it is without ``denoiser``.
        denoiser: for ``defect``, a denoiser checkpoint (or models root): noised training photos are then
            denoised by their type's route, so the classifier learns what the pipeline will show it.
        load_size: photos are scaled when loaded so their longer side is this many pixels, keeping the aspect
            ratio, to save memory and time on large photos (0 = use photos as they are, of any size; keep 0 for
            noise training, whose model reads full-resolution photos).
        max_images: use at most this many training photos (0 = all).
        version: version folder name (default ``<arch>-<UTC timestamp>``).
        quiet: no progress bars.
        device: ``auto`` (a CUDA GPU where there is one, else the CPU), ``cpu`` or ``cuda``; under ``torchrun``
            each process takes the GPU of its local rank.
        amp: on a GPU, train in mixed precision (bfloat16 where the GPU has it, else float16 with loss scaling);
            ``--no-amp`` trains in float32. Validation always runs in float32.
        resume: continue the unfinished run named by ``--version`` from its last completed epoch (its state is
            in ``<out>/<task>/<version>.resume/``), with the options it was started with; without such a state
            the run starts afresh.
        mlflow_uri: MLflow tracking URI to log the run to: parameters, per-epoch metrics and the checkpoint
            (default: $MLFLOW_TRACKING_URI, if set; ``off`` disables). Needs ``pip install 'inspection[mlflow]'``.
        resize: for ``defect``, how photos of any size and aspect ratio become the square model input: ``pad``
            (keep the whole photo, pad the short side), ``crop`` (centre square) or ``stretch``; stored with the model.
        labels: a CSV with columns path,label,kind (paths relative to the CSV) to read instead of class folders;
            ``--data`` then defaults to the CSV's folder.
        kinds_only: every class folder is a defect kind and every part defective (a dataset with no ok class):
            the defect model becomes a kind classifier that judges every part defective.
        miss_cost: for ``defect``, the cost of passing a defective part; the threshold minimises the expected cost.
        false_reject_cost: for ``defect``, the cost of rejecting a good part.
        defect_rate: for ``defect``, the share of defective parts on the line, used for the expected cost (0 = the
            share in the validation photos).
        init_from: for ``defect``, a defect checkpoint, bundle or models root to fine-tune from: its weights,
            architecture, preprocessing and kinds (new kinds are added after them). For ``denoiser``, a denoiser
            checkpoint, bundle or models root to fine-tune from (its weights and architecture; leave ``arch`` out).
        replay: extra dataset roots whose train split is mixed into training and validation (e.g. the data
            the init_from model learned), so old defect kinds are not forgotten.
        new_share: with ``replay``, the share of each epoch's photos drawn from the new data (``data``), the rest
            from the replayed data, so a few new photos are not drowned by many old ones (0 = in proportion to
            their numbers; retrain defaults to 0.5).
        patience: stop early once the validation score has not improved for this many epochs; the best epoch
            is kept (0 = train every epoch of ``epochs``).
        channels_last: train convolutional models in the channels-last memory layout, which is faster on CPUs
            and GPUs alike (``--no-channels-last``: the default layout); the saved weights are the same either way.
        noise_cache: for ``defect`` with ``noise_aug``, each training photo's noised (and, with ``denoiser``,
            denoised) copy per noise type is drawn once, from a generator seeded by the photo, kept at the model
            input size, and reused in a new rotation or flip whenever the photo draws that type again, so the
            denoiser runs at most once per photo and type (``--no-noise-cache``: fresh noise at every draw).
        edge_weight: for ``denoiser``, weight each pixel's error by ``1 + edge_weight * e``, ``e`` being the clean
            crop's edge strength (Sobel) over its mean, so thin structures such as cracks count in the loss beside
            the flat areas that dominate it, and are kept rather than smoothed away as noise (0 = plain L1).
        defect_weight: for ``denoiser``, weight each pixel's error by ``1 + defect_weight`` inside a training
            photo's drawn defect (its mask, dilated by 2 px), so the autoencoder learns to keep defects rather than
            smooth them away as noise. Needs the masks of a generated dataset (``inspection synth --masks``);
            photos without a mask count as defect-free (0 = plain L1).
        min_denoise_sigma: for ``defect`` with ``denoiser``, Gaussian-routed training photos whose estimated noise
            sigma is below this are not denoised, and the bundle's pipeline routes such photos the same way
            (``PipelineConfig.min_denoise_sigma``; 0 = every Gaussian photo is denoised).
        task_model: for ``denoiser``, a defect checkpoint, bundle or models root whose judgement of the denoised
            photos joins the loss (``inspection.task_loss``), so the denoiser is paid for keeping what tells a
            defective part from a good one. It then trains on whole photos instead of crops (``input_size`` is not
            used), which must be square and all one size, of good and defective parts.
        task_weight: with ``task_model`` (and only with it), above 0: the weight of the defect model's
            cross-entropy beside the pixel error, an L1 of about 0.03 on the 0..1 scale for noisy castings
            (0.05 and 0.3 were tried: docs/results.md).
    """

    task: str
    data: str
    out: str = "runs/models"
    arch: str = ""
    input_size: int = 0
    epochs: int = 10
    time_budget_s: float = 0.0
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    seed: int = 0
    threads: int = 0
    noise_types: tuple[str, ...] = ("gaussian",)
    feature_channels: int = 2
    camera_aug: float = 0.0
    noise_aug: float = 0.0
    denoiser: str = ""
    load_size: int = 0
    max_images: int = 0
    version: str = ""
    quiet: bool = False
    device: str = "auto"
    amp: bool = True
    resume: bool = False
    mlflow_uri: str = ""
    resize: str = "pad"
    labels: str = ""
    kinds_only: bool = False
    miss_cost: float = 1.0
    false_reject_cost: float = 1.0
    defect_rate: float = 0.0
    init_from: str = ""
    replay: tuple[str, ...] = ()
    new_share: float = 0.0
    patience: int = 0
    channels_last: bool = True
    noise_cache: bool = True
    edge_weight: float = 0.0
    defect_weight: float = 0.0
    min_denoise_sigma: float = 0.0
    task_model: str = ""
    task_weight: float = 0.0

    def resolved(self) -> TrainConfig:
        if self.task not in TASK_DEFAULT_ARCH:
            raise ValueError(f"unknown task {self.task!r}; expected one of {sorted(TASK_DEFAULT_ARCH)}")
        arch = self.arch or TASK_DEFAULT_ARCH[self.task]
        size = self.input_size or TASK_DEFAULT_SIZE[self.task]
        version = self.version or f"{arch}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        if self.min_denoise_sigma < 0 or (
            self.min_denoise_sigma and not (self.task == "defect" and self.denoiser)
        ):
            raise ValueError(
                f"min_denoise_sigma {self.min_denoise_sigma}: a Gaussian gate is for defect models trained "
                "through a denoiser (--denoiser), and at least 0"
            )
        if self.task_model and self.task != "denoiser":
            raise ValueError(f"task_model {self.task_model!r}: a defect model to train a denoiser against")
        for name in ("edge_weight", "defect_weight", "task_weight"):
            value = getattr(self, name)
            if not value >= 0 or (value and self.task != "denoiser"):  # NaN too
                raise ValueError(f"{name} {value}: a loss weight of the denoiser's training, and at least 0")
        if bool(self.task_model) != bool(self.task_weight):
            raise ValueError(
                f"task_model {self.task_model!r} and task_weight {self.task_weight}: give both (a defect model and "
                "a weight above 0) or neither"
            )
        if self.init_from and self.task not in ("defect", "denoiser"):
            raise ValueError(f"init_from {self.init_from!r}: fine-tuning is for defect models and denoisers")
        return TrainConfig(**{**asdict(self), "arch": arch, "input_size": size, "version": version})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run. Fields map one to one onto ``inspection evaluate`` flags.

    Attributes:
        data: dataset root with ``<split>/<class>/`` folders.
        split: which split to evaluate (``test``).
        models: the models root to evaluate (empty: the shipped models).
        reports: where the report folder goes (default ``$INSPECTION_REPORTS``, else ``$INSPECTION_HOME/reports``).
        name: dataset name in the report id (default: the data folder's name).
        seed: seeds every noise draw (per photo and type).
        max_images: evaluate at most this many photos, taken evenly across the split (0 = all).
        methods: denoisers compared on PSNR/SSIM (median, median_classic, nlmeans, notch, autoencoder, blind).
        blind_denoiser: checkpoint of one all-in-one denoiser for every type (adds the ``noisy_blind`` condition).
        defect_aug: checkpoint of a defect classifier trained with noise augmentation (adds ``aug_*`` conditions).
        realistic: also evaluate realistic factory noise (never trained on).
        labels: a CSV with columns path,label,kind (paths relative to the CSV) to read instead of class folders.
        kinds_only: every class folder is a defect kind and every part defective (a dataset with no ok class).
        min_confidence: the pipeline's safe-path confidence (negative = the bundle's own, from pipeline.json).
        batch_size: photos per inference batch.
        quiet: no progress bars.
        backend: what runs the bundle's models: torch, or onnxruntime or openvino (its export, as on a station);
            a blind denoiser, an augmented defect model and the gallery's explanations run in torch.
    """

    data: str
    split: str = "test"
    models: str = ""
    reports: str = ""
    name: str = ""
    seed: int = 0
    max_images: int = 0
    methods: tuple[str, ...] = ("median", "median_classic", "nlmeans", "notch", "autoencoder")
    blind_denoiser: str = ""
    defect_aug: str = ""
    realistic: bool = True
    min_confidence: float = -1.0
    batch_size: int = 32
    quiet: bool = False
    labels: str = ""
    kinds_only: bool = False
    backend: str = "torch"


@dataclass(frozen=True)
class BenchConfig:
    """The benchmark's settings (``inspection bench``).

    Attributes:
        models: the models root to time (empty: the shipped models).
        data: dataset root; its test split supplies the photos (default: synthetic castings).
        n: photos in the noisy mix (each of the four noise types equally often).
        size: side of synthetic photos (ignored with data).
        batch_sizes: batch sizes to time.
        reference_n: photos timed through the reference-equivalent configuration (0 skips it).
        threads: torch intra-op threads (0 = torch's default).
        workers: the pipeline's threads for per-photo work outside the models (0 = one per usable CPU, at most 8).
        worker_processes: run the per-photo work outside the models in worker processes, not threads (0
            workers = one per usable CPU): pays on machines with many cores, where threads queue on Python's
            lock; the processes start once, in a few seconds.
        seed: seed of the noisy mix.
        stream: decode each next batch on the workers while the pipeline judges this one
            (``InspectionPipeline.inspect_stream``); latency is then from a batch's hand-over to its results.
    """

    models: str = ""
    data: str = ""
    n: int = 256
    size: int = 300
    batch_sizes: tuple[int, ...] = (1, 32)
    reference_n: int = 32
    threads: int = 0
    workers: int = 0
    worker_processes: bool = False
    seed: int = 0
    stream: bool = False


# What a fine-tune takes from the parent's recipe: how it was trained, not which run, data or machine it was.
# Architecture, input size, resize mode and kinds come with the parent's weights (``init_from``).
FINE_TUNE_INHERITED = (
    *("batch_size", "weight_decay", "val_fraction", "seed", "load_size", "amp"),
    *("noise_aug", "noise_types", "miss_cost", "false_reject_cost", "defect_rate"),
)
