"""Typed results of the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("ok", "defective", "review")


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
        verdict: ``ok``, ``defective`` or ``review`` (P(defective) inside the bundle policy's review band:
            a person decides; see ``VERDICTS``).
        timings_ms: wall time per stage (decode, spectrum, noise, denoise, defect, total).
        model_versions: the version of each model that judged the part.
        conversion: how the input became 8-bit gray (``gray8``, ``rgb``, ``gray16`` ...).
        safe_path: True when the safe denoiser ran instead of the routed one: the noise type was unsure, or
            the noise was unlike what the autoencoder learned (``PipelineConfig``).
        height, width: the photo's size in pixels.
        kind: the most likely defect kind when the defect model knows kinds (``""`` when it does not, or for
            a photo judged ``ok``).
        kind_probability: the model's probability for ``kind`` among the kinds (0 without a kind).
        review_reason: why the verdict is ``review`` (``uncertain``: P(defective) in the policy's review band;
            ``ood``: out of distribution under a policy with ``review_ood``), else ``""``.
        ood: the photo, as the defect model saw it, lies beyond the range of the bundle's training photos
            (``inspection.ood``); False when the bundle has no OOD model.
        ood_score: its distance over the OOD threshold (above 1 is out of range); None without an OOD model.
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
    kind: str = ""
    kind_probability: float = 0.0
    review_reason: str = ""
    ood: bool = False
    ood_score: float | None = None

    @property
    def defective(self) -> bool:
        return self.verdict == "defective"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Every reason a photo or a request can be refused for, and the HTTP status the service answers it with.
# The service, the watch folder and batch scoring use these codes alone (docs/service.md lists them).
REASON_STATUS: dict[str, int] = {
    # the request itself is malformed
    "empty_body": 400,
    "bad_multipart": 400,
    "missing_field": 400,
    "duplicate_field": 400,
    "field_too_large": 400,
    "empty": 400,
    # who is asking
    "missing_api_key": 401,
    "unauthorized": 401,
    "station_mismatch": 403,
    "forbidden": 403,
    "request_timeout": 408,
    "upload_too_large": 413,
    "not_an_image": 415,
    # the part id or the photo cannot be judged
    "bad_part_id": 422,
    "bad_station_id": 422,
    "corrupt": 422,
    "incomplete": 422,
    "too_small": 422,
    "too_large": 422,
    "multi_frame": 422,
    "bad_shape": 422,
    "bad_dtype": 422,
    "bad_pixels": 422,
    "unreadable": 422,
    "not_a_part": 422,
    "rate_limited": 429,
    "internal_error": 500,
    # nothing wrong with the photo: try again later
    "overloaded": 503,
    "store_unavailable": 503,
    "photo_store_unavailable": 503,
}
RETRYABLE = frozenset(reason for reason, status in REASON_STATUS.items() if status in (408, 429, 503))


class Rejection(ValueError):
    """A photo or request that could not be judged: ``reason`` is a code of :data:`REASON_STATUS`, ``message``
    says why and what to do.

    It is both raised (by decoding and validation) and returned in place of a result (``inspect_batch``), so
    one type carries a refusal from where it is found to the record, the CSV row and the HTTP answer.
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASON_STATUS:
            raise ValueError(f"unknown rejection reason {reason!r}; add it to REASON_STATUS")
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"Rejection({self.reason!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rejection) and (self.reason, self.message) == (other.reason, other.message)

    def __hash__(self) -> int:
        return hash((self.reason, self.message))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rejection, (self.reason, self.message))

    @property
    def verdict(self) -> str:
        return "rejected"

    @property
    def http_status(self) -> int:
        return REASON_STATUS[self.reason]

    @property
    def retryable(self) -> bool:
        """True when nothing is wrong with the photo and the same request may succeed later."""
        return self.reason in RETRYABLE

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message}


def percent_text(value: float | None, missing: str = "-") -> str:
    """``value`` (a share, 0..1) as a percentage with one decimal, or as many more as it takes not to show a
    share that is not exactly 1 (or 0) as 100.0% (or 0.0%): 2,603 of 2,604 is 99.96%, not 100.0%."""
    if value is None or value != value:
        return missing
    digits = 1
    while 0 < value < 1 and f"{100 * value:.{digits}f}" in (f"{100:.{digits}f}", f"{0:.{digits}f}"):
        if digits == 4:  # nearer 1 (or 0) than a millionth: say how near, not a long row of digits
            return ">99.9999%" if value > 0.5 else "<0.0001%"
        digits += 1
    return f"{100 * value:.{digits}f}%"
