"""Run tracking: to MLflow where a tracking URI is given, nowhere otherwise.

A ``Tracker`` has one call per event (``log_epoch``, ``log_checkpoint``, ``finish``), and the plain
``Tracker`` does nothing, so the training loop has no ``if mlflow`` branches. MLflow is an optional extra
(``pip install 'inspection[mlflow]'``) and is imported only when a URI is given; no tracking server is run
here: point the URI at an existing server (``http://...``), a database (``sqlite:///runs/mlflow.db``) or a
folder.

A run's parameters are the training config; its metrics are logged per epoch (step = epoch); its checkpoint
folder is logged as artifacts under ``checkpoint/``. Failing to reach the server after the run has started
costs a warning, never the training.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

OFF = ("off", "none")
ENV_URI = "MLFLOW_TRACKING_URI"
BUNDLE_EXPERIMENT = "inspection-bundles"


class TrackingError(RuntimeError):
    """Tracking was asked for but cannot be done (mlflow missing, server refusing)."""


def tracking_uri(value: str = "") -> str:
    """The URI to track to: ``value``, else ``$MLFLOW_TRACKING_URI``; empty when neither or ``off``."""
    uri = (value or os.environ.get(ENV_URI, "")).strip()
    return "" if uri.lower() in OFF else uri


def redact_uri(uri: str) -> str:
    """``uri`` without a password, for logs and metadata (``https://user:***@host/...``)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The entries MLflow can plot: numbers (not bools, lists or text)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


class Tracker:
    """Tracks nothing: what the loop gets when no tracking URI is given (and on ranks other than 0)."""

    run_id: str = ""

    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Record one epoch's metrics."""

    def log_checkpoint(self, path: Path, metrics: Mapping[str, Any]) -> None:
        """Record the final checkpoint folder and its metrics."""

    def finish(self, status: str = "FINISHED") -> None:
        """Close the run: ``FINISHED``, ``FAILED`` or ``KILLED``."""


class MlflowTracker(Tracker):
    """One MLflow run, driven through ``MlflowClient``: no global active run leaks to tests or callers."""

    def __init__(self, client: Any, run_id: str) -> None:
        from mlflow.exceptions import MlflowException

        self.client = client
        self.run_id = run_id
        # What a server outage or a full disk raises mid-run: logged, and training goes on.
        self._transient: tuple[type[BaseException], ...] = (MlflowException, OSError)

    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        self._log_metrics(numeric(metrics), step=epoch)

    def log_checkpoint(self, path: Path, metrics: Mapping[str, Any]) -> None:
        self._log_metrics({f"final_{k}": v for k, v in numeric(metrics).items()}, step=0)
        try:
            self.client.log_artifacts(self.run_id, str(path), artifact_path="checkpoint")
        except self._transient as e:
            log.warning("MLflow: could not upload %s to run %s: %s", path, self.run_id, e)

    def finish(self, status: str = "FINISHED") -> None:
        try:
            self.client.set_terminated(self.run_id, status=status)
        except self._transient as e:
            log.warning("MLflow: could not close run %s: %s", self.run_id, e)

    def _log_metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        try:
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])
        except self._transient as e:
            log.warning("MLflow: could not log metrics to run %s: %s", self.run_id, e)


def _client(uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as e:
        raise TrackingError(
            f"an MLflow tracking URI is set ({redact_uri(uri)}) but mlflow is not installed; "
            f"install it with pip install 'inspection[mlflow]', or pass --mlflow-uri off (or unset {ENV_URI})"
        ) from e
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:  # created meanwhile by another run
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def start_run(
    uri: str,
    *,
    experiment: str,
    run_name: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    run_id: str = "",
) -> Tracker:
    """A tracker for a new MLflow run, or for ``run_id`` continued (a resumed training); no-op without ``uri``.

    Raises:
        TrackingError: mlflow is not installed, or the tracking store refused the run.
    """
    if not uri:
        return Tracker()
    client = _client(uri)
    from mlflow.entities import Param
    from mlflow.exceptions import MlflowException

    try:
        if run_id:
            client.update_run(run_id, status="RUNNING")
            log.info("MLflow: continuing run %s at %s", run_id, redact_uri(uri))
            return MlflowTracker(client, run_id)
        run = client.create_run(_experiment_id(client, experiment), run_name=run_name, tags=dict(tags or {}))
        client.log_batch(run.info.run_id, params=[Param(k, _param_text(v)) for k, v in params.items()])
    except MlflowException as e:
        raise TrackingError(f"MLflow at {redact_uri(uri)} refused the run: {e}") from e
    log.info("MLflow: run %s in experiment %r at %s", run.info.run_id, experiment, redact_uri(uri))
    return MlflowTracker(client, run.info.run_id)


def log_bundle(
    uri: str,
    bundle_path: str | Path,
    metrics: Mapping[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
    experiment: str = BUNDLE_EXPERIMENT,
) -> str:
    """Log a model bundle folder (artifacts under ``bundle/``) with its metrics as one finished MLflow run.

    For ``retrain`` and ``promote``: the run is named after the bundle folder and tagged ``bundle``. ``uri``
    goes through ``tracking_uri`` (empty: ``$MLFLOW_TRACKING_URI``). Returns the run id, or ``""`` when
    tracking is off.

    Raises:
        TrackingError: mlflow is not installed, or the tracking store refused the run.
    """
    uri = tracking_uri(uri)
    if not uri:
        return ""
    path = Path(bundle_path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a bundle folder; expected <models root>/bundles/<version>/")
    client = _client(uri)
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    try:
        run = client.create_run(
            _experiment_id(client, experiment), run_name=path.name, tags={"bundle": path.name}
        )
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in numeric(metrics).items()],
            params=[Param(k, _param_text(v)) for k, v in (params or {}).items()],
        )
        client.log_artifacts(run.info.run_id, str(path), artifact_path="bundle")
        client.set_terminated(run.info.run_id, status="FINISHED")
    except MlflowException as e:
        raise TrackingError(f"MLflow at {redact_uri(uri)} refused bundle {path.name}: {e}") from e
    return str(run.info.run_id)


def _param_text(value: Any) -> str:
    text = " ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text[:6000]  # MLflow's limit on a parameter value
