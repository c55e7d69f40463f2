"""Model registry, model families and checkpoints."""

from inspection.models import zoo as _zoo  # noqa: F401  (registers the builders)
from inspection.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from inspection.models.registry import create_model, list_models, model_task, register_model

__all__ = [
    "Checkpoint",
    "create_model",
    "list_models",
    "load_checkpoint",
    "model_task",
    "register_model",
    "save_checkpoint",
]
