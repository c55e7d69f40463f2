"""A timm-style model registry: each variant is a small builder function registered by name."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

ModelBuilder = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelBuilder] = {}
_TASKS: dict[str, str] = {}


def register_model(task: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register a builder under its function name for ``task`` (noise, denoiser or defect)."""

    def wrap(fn: ModelBuilder) -> ModelBuilder:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered; pick another name")
        _REGISTRY[name] = fn
        _TASKS[name] = task
        return fn

    return wrap


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered names matching a shell-style ``pattern``, optionally only those for ``task``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern) and (task is None or _TASKS[n] == task))


def model_task(name: str) -> str:
    """The task a registered model serves."""
    _check(name)
    return _TASKS[name]


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model; keyword arguments go to its builder."""
    _check(name)
    return _REGISTRY[name](**kwargs)


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
