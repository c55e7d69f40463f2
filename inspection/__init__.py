"""Noise-aware visual inspection of cast parts."""

__version__ = "0.1.0"

NOISE_TYPES: tuple[str, ...] = ("clean", "gaussian", "salt_pepper", "periodic")
