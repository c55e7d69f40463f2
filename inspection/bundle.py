"""Model bundles: the unit that is trained, checked, promoted and served.

A bundle is one folder, ``<models root>/bundles/<version>/``::

    noise/      denoiser/      defect/        checkpoints (weights.safetensors + meta.json each)
    pipeline.json                             routing, guard limits, verdict policy, preprocessing
    card.json   card.md                       provenance, data fingerprint, splits, metrics, parent, commands

The live bundle of a models root is named by ``<models root>/LIVE``, written atomically; promotions are also
recorded in the store (``inspection models``). Everything that scores photos loads models through
:func:`load_bundle`, so a station runs exactly what ``evaluate`` measured.

``--models`` accepts a bundle folder or a models root (its live bundle). A models root in the layout before
bundles (``noise/``, ``denoiser/``, ``defect/`` with version folders and ``CURRENT`` files) still loads, with a
deprecation warning.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inspection.fileio import write_text_atomic
from inspection.models.checkpoint import CheckpointError, read_meta
from inspection.ood import OOD_FILE

FORMAT_VERSION = 1
BUNDLES_DIR = "bundles"
LIVE_FILE = "LIVE"
PIPELINE_FILE = "pipeline.json"
CARD_FILE = "card.json"
CARD_MARKDOWN = "card.md"
TASKS = ("noise", "denoiser", "defect")
REQUIRED_TASKS = ("noise", "defect")
log = logging.getLogger(__name__)


class BundleError(CheckpointError):
    """A models folder that is not a usable bundle."""


@dataclass(frozen=True)
class VerdictPolicy:
    """How P(defective) becomes a verdict, and how strict promotion is.

    Attributes:
        threshold: P(defective) at or above this is ``defective`` (chosen on validation data at training).
        review_band: ``[low, high)`` of P(defective) that gets the ``review`` verdict, for a person to decide;
            ``None`` turns review off (the default).
        review_ood: photos flagged out of distribution get ``review`` too (when the pipeline flags them).
        gate_tolerance: how much lower (as a fraction: 0.02 = 2 points) a candidate bundle may score than this
            one on the golden set, overall, in recall, per noise type or per kind, and still be promoted over it.
    """

    threshold: float = 0.5
    review_band: tuple[float, float] | None = None
    review_ood: bool = False
    gate_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if self.review_band is not None:
            low, high = self.review_band
            if not 0.0 <= low <= high <= 1.0:
                raise BundleError(f"review_band {self.review_band} must satisfy 0 <= low <= high <= 1")
            object.__setattr__(self, "review_band", (float(low), float(high)))
        if not 0.0 <= self.gate_tolerance < 1.0:
            raise BundleError(f"gate_tolerance {self.gate_tolerance} must be in [0, 1)")

    def verdict(self, p_defective: float, ood: bool = False) -> tuple[str, str]:
        """``(verdict, review_reason)`` for one part; ``ood``: the pipeline flagged it out of distribution."""
        if ood and self.review_ood:
            return "review", "ood"
        band = self.review_band
        if band is not None and band[0] <= p_defective < band[1]:
            return "review", "uncertain"
        return ("defective" if p_defective >= self.threshold else "ok"), ""


@dataclass(frozen=True)
class Bundle:
    """A resolved models folder: where each checkpoint is, and the settings stored beside them.

    Attributes:
        path: the bundle folder (for a pre-bundle models root, the root itself).
        version: the bundle's version (its folder name).
        routing: ``PipelineConfig`` fields (routes, safe path, guard limits) from ``pipeline.json``.
        policy: the verdict policy.
        preprocessing: the defect model's preprocessing as recorded when the bundle was made.
        card: ``card.json`` (empty for a pre-bundle root).
        legacy: True for a pre-bundle models root.
    """

    path: Path
    version: str
    routing: dict[str, Any] = field(default_factory=dict)
    policy: VerdictPolicy = field(default_factory=VerdictPolicy)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    legacy: bool = False

    def checkpoint_dir(self, task: str) -> Path | None:
        """The checkpoint folder of ``task``; ``None`` for a bundle without that (optional) model."""
        folder = self.path / task
        if not folder.exists():
            if task in REQUIRED_TASKS:
                raise BundleError(f"{self.path} has no {task} model: {folder} is missing")
            return None
        return resolve_checkpoint_dir(folder) if self.legacy else folder

    @property
    def ood_file(self) -> Path | None:
        """The bundle's OOD model (``inspection.ood``), or None when it has none."""
        path = self.path / OOD_FILE
        return path if not self.legacy and path.is_file() else None

    def required_dir(self, task: str) -> Path:
        """The checkpoint folder of a task every bundle has (``noise``, ``defect``)."""
        folder = self.checkpoint_dir(task)
        if folder is None:
            raise BundleError(f"{self.path} has no {task} model")
        return folder

    @property
    def parent(self) -> str | None:
        return self.card.get("parent")


def resolve_checkpoint_dir(path: Path) -> Path:
    """A checkpoint folder itself, or a pre-bundle task folder: the version named in ``CURRENT``, else the newest."""
    if (path / "meta.json").is_file():
        return path
    current = path / "CURRENT"
    if current.is_file():
        return path / current.read_text().strip()
    versions = sorted(p for p in path.iterdir() if (p / "meta.json").is_file()) if path.is_dir() else []
    if not versions:
        raise CheckpointError(f"no checkpoint in {path}: expected meta.json there or in a version subfolder")
    return versions[-1]


def load_bundle(path: str | Path | None = None) -> Bundle:
    """Resolve ``--models``: a bundle folder, a models root (its live bundle), or a pre-bundle models root.

    ``None`` means the default models (``$INSPECTION_MODELS``, else the shipped ones).
    """
    from inspection.paths import default_models_dir

    root = Path(path).expanduser() if path else default_models_dir()
    if (root / PIPELINE_FILE).is_file():
        return _read_bundle(root)
    if not root.is_dir():
        raise BundleError(
            f"models folder {root} does not exist: name a models root or a bundle folder (or set INSPECTION_MODELS)"
        )
    live = read_live(root)
    if live is not None:
        bundle_dir = root / BUNDLES_DIR / live
        if not (bundle_dir / PIPELINE_FILE).is_file():
            raise BundleError(f"{root / LIVE_FILE} names bundle {live!r}, but {bundle_dir} is not a bundle")
        return _read_bundle(bundle_dir)
    if (root / "noise").is_dir() and (root / "defect").is_dir():
        message = (
            f"{root} is a models folder from before bundles (noise/, defect/ with CURRENT files); it still "
            f"loads, but this layout is deprecated: make it a bundle with `inspection models create`"
        )
        warnings.warn(message, FutureWarning, stacklevel=2)
        log.warning(message)
        defect = read_meta(resolve_checkpoint_dir(root / "defect"))
        threshold = defect["threshold"] if defect["threshold"] is not None else 0.5
        return Bundle(  # routed as a bundle made from these checkpoints would be
            path=root,
            version=root.name,
            routing=default_routing(defect),
            policy=VerdictPolicy(threshold=float(threshold)),
            legacy=True,
        )
    if (root / BUNDLES_DIR).is_dir():
        raise BundleError(
            f"{root} holds bundles but no {LIVE_FILE} file names the live one; promote one with "
            f"`inspection models promote BUNDLE --models {root}`, or pass a bundle folder"
        )
    raise BundleError(
        f"{root} is neither a bundle (no {PIPELINE_FILE}) nor a models root (no {LIVE_FILE}, no noise/ and defect/)"
    )


def _read_bundle(path: Path) -> Bundle:
    spec = _read_json(path / PIPELINE_FILE)
    if spec.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path / PIPELINE_FILE}: unknown format_version {spec.get('format_version')!r}")
    policy = dict(spec.get("policy") or {})
    known = {f.name for f in fields(VerdictPolicy)}
    unknown = sorted(set(policy) - known)
    if unknown:
        raise BundleError(
            f"{path / PIPELINE_FILE}: unknown policy settings {unknown}; known: {sorted(known)}"
        )
    if policy.get("review_band") is not None:
        policy["review_band"] = tuple(policy["review_band"])
    routing = dict(spec.get("routing") or {})
    from inspection.pipeline import MACHINE_SETTINGS, PipelineConfig

    settable = {f.name for f in fields(PipelineConfig)} - MACHINE_SETTINGS
    unknown = sorted(set(routing) - settable)
    if unknown:
        raise BundleError(
            f"{path / PIPELINE_FILE}: unknown routing settings {unknown}; known: {sorted(settable)}"
        )
    card_path = path / CARD_FILE
    return Bundle(
        path=path,
        version=str(spec.get("version") or path.name),
        routing=routing,
        policy=VerdictPolicy(**policy),
        preprocessing=dict(spec.get("preprocessing") or {}),
        card=_read_json(card_path) if card_path.is_file() else {},
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{path} cannot be read as JSON: {e}") from e
    if not isinstance(data, dict):
        raise BundleError(f"{path} must hold a JSON object")
    return data


# --- the live pointer ----------------------------------------------------------------------------------


def read_live(root: str | Path) -> str | None:
    """The version named in ``<root>/LIVE``, or ``None`` when there is no such file."""
    live = Path(root) / LIVE_FILE
    try:
        version = live.read_text().strip()
    except FileNotFoundError:
        return None
    if not version or "/" in version or version.startswith("."):
        raise BundleError(f"{live} holds {version!r}, not a bundle version")
    return version


def is_live(bundle_dir: str | Path) -> bool:
    """Whether ``bundle_dir`` is the bundle its models root's ``LIVE`` names (``<root>/bundles/<version>``)."""
    bundle_dir = Path(bundle_dir).resolve()
    return bundle_dir.parent.name == BUNDLES_DIR and read_live(bundle_dir.parent.parent) == bundle_dir.name


def write_live(root: str | Path, version: str) -> None:
    """Point ``<root>/LIVE`` at ``version``, atomically: a reader sees the old name or the new, never half."""
    root = Path(root)
    if not (root / BUNDLES_DIR / version / PIPELINE_FILE).is_file():
        raise BundleError(f"no bundle {version!r} under {root / BUNDLES_DIR}")
    write_text_atomic(root / LIVE_FILE, version + "\n")


# --- writing bundles -------------------------------------------------------------------------------------


def write_bundle(
    path: str | Path,
    checkpoints: dict[str, Path],
    *,
    routing: dict[str, Any] | None = None,
    policy: VerdictPolicy | None = None,
    card: dict[str, Any] | None = None,
) -> Bundle:
    """Make a bundle folder at ``path`` (its name is the version) from checkpoint folders.

    The checkpoints are copied in, so the bundle stands alone. ``policy`` defaults to the defect model's
    validated threshold; ``routing`` to the pipeline's defaults. The card is completed with the models'
    versions, architectures, weights hashes, training data and validation metrics.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise BundleError(
            f"{path} already exists and is not empty; write each bundle version to a new folder"
        )
    for task in REQUIRED_TASKS:
        if task not in checkpoints:
            raise BundleError(f"a bundle needs a {task} model")
    metas = {task: read_meta(resolve_checkpoint_dir(Path(src))) for task, src in checkpoints.items()}
    for task, meta in metas.items():
        if meta.get("task") not in (None, task):
            raise BundleError(f"{checkpoints[task]} is a {meta['task']} model, not a {task} model")
    defect = metas["defect"]
    if routing is None:
        routing = default_routing(defect, autoencoder="denoiser" in checkpoints)
    needs = sorted(t for t, name in routing.get("routes", {}).items() if name == "autoencoder")
    if needs and "denoiser" not in checkpoints:
        raise BundleError(
            f"the routing sends {', '.join(needs)} to the autoencoder, but no denoiser was given"
        )
    if policy is None:
        threshold = defect["threshold"] if defect["threshold"] is not None else 0.5
        policy = VerdictPolicy(threshold=float(threshold))
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for task, src in checkpoints.items():
        if task not in TASKS:
            raise BundleError(f"unknown bundle task {task!r}; expected some of {TASKS}")
        shutil.copytree(resolve_checkpoint_dir(Path(src)), tmp / task)
    from inspection.transforms import DefectTransform

    spec = {
        "format_version": FORMAT_VERSION,
        "version": path.name,
        "routing": routing,
        "policy": asdict(policy),
        "preprocessing": DefectTransform.from_meta(defect).to_meta(),
    }
    (tmp / PIPELINE_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    full_card = complete_card(card or {}, path.name, metas)
    (tmp / CARD_FILE).write_text(json.dumps(full_card, indent=2, sort_keys=True) + "\n")
    (tmp / CARD_MARKDOWN).write_text(render_card(full_card))
    if path.exists():
        path.rmdir()
    tmp.rename(path)
    return _read_bundle(path)


def default_routing(defect_meta: dict[str, Any], *, autoencoder: bool = True) -> dict[str, Any]:
    """The pipeline's default routing, with the autoencoder's guards off for a defect model that learned camera noise;
    without an ``autoencoder``, what would go to it is judged undenoised (``identity``).

    The guards send photos whose noise is stronger than sigma 48 or grows with brightness (sensor shot noise) down
    the safe path, undenoised, because a defect model that never saw what the autoencoder leaves of such noise
    judged those photos worse denoised than not. A defect model trained with ``--noise-types camera`` saw exactly
    that, so for it the photos are denoised. A defect model trained with ``--min-denoise-sigma`` gets the same
    gate in its pipeline.
    """
    from inspection.noise import CAMERA
    from inspection.pipeline import PipelineConfig

    train_config = defect_meta.get("train_config", {})
    gate = float(train_config.get("min_denoise_sigma", 0.0))
    config = PipelineConfig(min_denoise_sigma=gate)
    if CAMERA in train_config.get("noise_types", ()):
        config = replace(config, max_signal_dependence=0.0, max_noise_sigma=0.0)
    if not autoencoder:
        routes = {t: "identity" if name == "autoencoder" else name for t, name in config.routes.items()}
        config = replace(config, routes=routes)
    return routing_settings(config)


def routing_settings(config: Any) -> dict[str, Any]:
    """The ``PipelineConfig`` fields a bundle stores (all but the machine's own: workers, worker processes).

    ``min_denoise_sigma`` is left out while it is 0, so a bundle without the Gaussian gate still loads in code
    from before the gate (which refuses routing settings it does not know); a gated bundle needs newer code.
    """
    from inspection.pipeline import MACHINE_SETTINGS

    settings = {k: v for k, v in asdict(config).items() if k not in MACHINE_SETTINGS}
    if not settings.get("min_denoise_sigma"):
        settings.pop("min_denoise_sigma", None)
    return settings


def complete_card(card: dict[str, Any], version: str, metas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``card`` with the facts every card has: version, creation time, and each model's provenance."""
    models = {
        task: {
            "version": meta.get("version"),
            "architecture": meta["architecture"],
            "weights_sha256": meta["weights_sha256"],
            "training_data": meta.get("training_data", {}),
            "validation": meta.get("metrics", {}),
            "train_config": meta.get("train_config", {}),
        }
        for task, meta in metas.items()
    }
    synthetic = [bool(m.get("training_data", {}).get("synthetic")) for m in metas.values()]
    return {
        "parent": None,
        "commands": [],
        "golden": {},
        **card,
        "version": version,
        "created": card.get("created") or datetime.now(UTC).isoformat(timespec="seconds"),
        "synthetic_only": card.get("synthetic_only", all(synthetic)),
        "models": models,
    }


def render_card(card: dict[str, Any]) -> str:
    """The card as Markdown: what was trained on what, how it validated, where it came from."""
    lines = [f"# Model bundle `{card['version']}`", ""]
    if card.get("synthetic_only"):
        lines += ["**Trained on synthetic data only.** Check it on your own photos before trusting it.", ""]
    lines += [f"- Created: {card.get('created')}", f"- Parent bundle: {card.get('parent') or 'none'}", ""]
    lines += [
        "## Models",
        "",
        "| task | version | architecture | training photos | data SHA-256 |",
        "|---|---|---|---|---|",
    ]
    for task, m in card.get("models", {}).items():
        data = m.get("training_data", {})
        lines.append(
            f"| {task} | {m.get('version')} | {m.get('architecture')} | {data.get('n_images', '?')} "
            f"| `{str(data.get('sha256', ''))[:12]}` |"
        )
    lines += ["", "## Validation", ""]
    for task, m in card.get("models", {}).items():
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(m.get("validation", {}).items()))
        lines.append(f"- {task}: {shown or 'no metrics recorded'}")
    if card.get("golden"):
        lines += ["", "## Golden set", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in sorted(card["golden"].items())]
    if card.get("ood"):
        ood = card["ood"]
        lines += ["", "## Out-of-distribution check", ""]
        lines += [
            f"A photo whose defect-model features score beyond the {_fmt(ood.get('quantile'))} quantile of "
            f"{ood.get('n_held_out')} held-out views of the training photos is flagged `ood` ({ood.get('method')}; "
            f"fitted on {ood.get('n_fit')} views, each training photo clean and noised).",
        ]
    if card.get("data"):
        lines += ["", "## Data", "", "```json", json.dumps(card["data"], indent=2, sort_keys=True), "```"]
    if card.get("commands"):
        lines += ["", "## Commands", "", "```bash", *card["commands"], "```"]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
