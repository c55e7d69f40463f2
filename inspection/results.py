"""Typed results of the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class InspectionResult:
    """One part's verdict and how it was reached.

    Attributes:
        noise_type: the routed noise type (``clean``, ``gaussian``, ``salt_pepper``, ``periodic``).
        noise_probability: the classifier's probability for ``noise_type``.
        noise_probabilities: probability per noise type.
        denoiser: name of the denoiser that ran (``identity`` when none did).
        defect_probability: P(defective) from the defect classifier.
        threshold: the decision threshold on ``defect_probability``.
        verdict: ``defective`` or ``ok``.
        timings_ms: wall time per stage (decode, spectrum, noise, denoise, defect, total).
        model_versions: the version of each model that judged the part.
        conversion: how the input became 8-bit gray (``gray8``, ``rgb``, ``gray16`` ...).
        safe_path: True when the safe denoiser ran instead of the routed one: the noise type was unsure, or
            the noise was unlike what the autoencoder learned (``PipelineConfig``).
    """

    noise_type: str
    noise_probability: float
    noise_probabilities: dict[str, float]
    denoiser: str
    defect_probability: float
    threshold: float
    verdict: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    model_versions: dict[str, str] = field(default_factory=dict)
    conversion: str = "gray8"
    safe_path: bool = False
    height: int = 0
    width: int = 0

    @property
    def defective(self) -> bool:
        return self.verdict == "defective"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rejection:
    """A photo that could not be judged: ``reason`` is a short code, ``message`` says why and what to do."""

    reason: str
    message: str

    @property
    def verdict(self) -> str:
        return "rejected"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
