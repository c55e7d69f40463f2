"""The shared training loop: device choice, progress and ETA, resume after a kill, torchrun, tracking."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.training import tiny_train_config
from safetensors.torch import load_file

from inspection import hardware, resume, tracking
from inspection.configs import TrainConfig
from inspection.distributed import shard_batches
from inspection.models import load_checkpoint
from inspection.train import TRAINERS
from inspection.trainer import format_duration

REPO = Path(__file__).resolve().parents[1]


def tiny_config(data: Path, out: Path, **kw: object) -> TrainConfig:
    """The shared tiny config, with noise augmentation so a resumed epoch must redraw the same noise."""
    return tiny_train_config(data, out, **{"batch_size": 8, "version": "v", "noise_aug": 0.5, **kw})


def weights_sha(path: Path) -> str:
    return json.loads((path / "meta.json").read_text())["weights_sha256"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the raise runs (BaseException, so no handler takes it)."""


def kill_after_first_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = resume.write_resume_state

    def write_then_die(*args: object, **kw: object) -> Path:
        real(*args, **kw)  # type: ignore[arg-type]
        raise Killed

    monkeypatch.setattr("inspection.trainer.write_resume_state", write_then_die)


def record_states(monkeypatch: pytest.MonkeyPatch) -> dict[int, dict[str, torch.Tensor]]:
    """Epoch -> the tensors written after it (model, best and optimiser), for every state written."""
    real, seen = resume.write_resume_state, {}

    def write_and_record(folder: Path, **kw: object) -> Path:
        path = real(folder, **kw)  # type: ignore[arg-type]
        state = json.loads(path.read_text())
        seen[state["epoch"]] = load_file(str(folder / state["tensors"]))
        return path

    monkeypatch.setattr("inspection.trainer.write_resume_state", write_and_record)
    return seen


def test_resume_after_a_kill_ends_with_the_uninterrupted_runs_weights(synthetic_root, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        whole_states = record_states(m)
        whole = TRAINERS["defect"](tiny_config(synthetic_root, tmp_path / "whole", epochs=3))
    assert not (tmp_path / "whole" / "defect" / "v.resume").exists()

    cut = tiny_config(synthetic_root, tmp_path / "cut", epochs=3)
    with monkeypatch.context() as m:
        kill_after_first_epoch(m)
        with pytest.raises(Killed):
            TRAINERS["defect"](cut)
    state_dir = tmp_path / "cut" / "defect" / "v.resume"
    assert sorted(p.name for p in state_dir.iterdir()) == ["state-0001.safetensors", "state.json"]
    state = json.loads((state_dir / "state.json").read_text())
    assert state["epoch"] == 1 and state["config"]["epochs"] == 3
    tensors = load_file(str(state_dir / "state-0001.safetensors"))  # no pickle anywhere: safetensors + JSON
    assert any(k.startswith("optim.") and k.endswith(".exp_avg") for k in tensors)
    assert not (tmp_path / "cut" / "defect" / "v").exists()

    with monkeypatch.context() as m:
        resumed_states = record_states(m)
        resumed = TRAINERS["defect"](replace(cut, resume=True))
    # every later epoch's model, best and optimiser tensors are bit for bit the uninterrupted run's
    assert sorted(resumed_states) == [2, 3]
    for epoch, tensors in resumed_states.items():
        assert tensors.keys() == whole_states[epoch].keys()
        assert all(torch.equal(t, whole_states[epoch][k]) for k, t in tensors.items()), epoch
    assert weights_sha(resumed.path) == weights_sha(whole.path)
    assert resumed.metrics == whole.metrics
    assert not state_dir.exists()  # removed once the final checkpoint is written


def test_resume_refuses_changed_training_options(synthetic_root, tmp_path, monkeypatch):
    cfg = tiny_config(synthetic_root, tmp_path)
    with monkeypatch.context() as m:
        kill_after_first_epoch(m)
        with pytest.raises(Killed):
            TRAINERS["defect"](cfg)
    with pytest.raises(resume.ResumeError, match=r"lr: 0\.002 -> 0\.01"):
        TRAINERS["defect"](replace(cfg, resume=True, lr=0.01))
    with pytest.raises(resume.ResumeError, match="pass --version with one of them"):
        TRAINERS["defect"](replace(cfg, resume=True, version="other"))
    # what may change: where it runs and what it prints
    result = TRAINERS["defect"](replace(cfg, resume=True, quiet=False, time_budget_s=600.0))
    assert load_checkpoint(result.path).meta["train_config"]["resume"] is True


def test_resume_with_nothing_to_resume_starts_afresh(synthetic_root, tmp_path):
    result = TRAINERS["defect"](tiny_config(synthetic_root, tmp_path, resume=True, epochs=1))
    assert result.path.is_dir()
    with pytest.raises(ValueError, match="already holds a finished checkpoint"):
        TRAINERS["defect"](tiny_config(synthetic_root, tmp_path, resume=True, epochs=1))


def test_one_progress_line_per_epoch_with_eta_when_quiet(synthetic_root, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="inspection.trainer"):
        TRAINERS["defect"](tiny_config(synthetic_root, tmp_path, epochs=3, time_budget_s=3600.0))
    lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == [f"defect epoch {e}/3" for e in (1, 2, 3)]
    assert all("loss " in line and "val_accuracy" in line and "ETA " in line for line in lines)
    assert "time budget 1h00m" in lines[0] and lines[-1].split("ETA ")[1].startswith("0s")


def test_format_duration():
    assert [format_duration(s) for s in (0.4, 42, 185, 7620)] == ["0s", "42s", "3m05s", "2h07m"]


def test_device_choice(monkeypatch):
    assert hardware.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="must be one of auto, cpu, cuda; got 'gpu'"):
        hardware.resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="sees no CUDA GPU.*--device cpu"):
        hardware.resolve_device("cuda")
    assert hardware.autocast_dtype(torch.device("cpu")) is None  # CPU training stays float32


def test_cuda_without_a_gpu_fails_before_training(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        TRAINERS["defect"](tiny_config(synthetic_root, tmp_path, device="cuda"))
    assert not (tmp_path / "defect").exists()


def test_shards_are_disjoint_and_cover_the_epoch():
    order = np.random.default_rng(0).permutation(40)
    shards = [shard_batches(order, 4, 5, rank, 2) for rank in (0, 1)]
    seen = np.concatenate([b for shard in shards for b in shard])
    assert sorted(seen) == list(range(40))
    tiny = [shard_batches(np.arange(3), 4, 1, rank, 2) for rank in (0, 1)]  # fewer photos than one batch
    assert all(len(shard[0]) == 4 for shard in tiny)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mixed_precision_training_on_gpu_saves_a_cpu_loadable_checkpoint(synthetic_root, tmp_path):
    result = TRAINERS["defect"](tiny_config(synthetic_root, tmp_path, device="cuda", epochs=2))
    ck = load_checkpoint(result.path)
    assert ck.meta["trained_on"]["precision"] in ("bfloat16 mixed", "float16 mixed")
    assert next(ck.model.parameters()).device.type == "cpu"
    assert 0 <= ck.meta["metrics"]["val_accuracy"] <= 1


def test_torchrun_with_two_gloo_processes_writes_one_checkpoint(synthetic_root, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # rendezvous on a free local port
        "--nproc-per-node",
        "2",
        "-m",
        "inspection.cli",
        "train",
        "defect",
        "--data",
        str(synthetic_root),
        "--out",
        str(tmp_path),
        "--arch",
        "test_defect_cnn",
        "--input-size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        out, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in 120 s:\n{out.decode()[-3000:]}")
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "2 processes" in text and text.count("defect epoch 2/2") == 1  # rank 0 alone logs
    (version,) = (tmp_path / "defect").iterdir()  # one checkpoint, no resume state left behind
    assert load_checkpoint(version).meta["trained_on"]["processes"] == 2
    # both ranks report the version rank 0 named (the default is a timestamp, which could differ by a second)
    assert text.count(f'"checkpoint": "{version}"') == 2


def test_tracking_is_off_without_a_uri(monkeypatch):
    monkeypatch.delenv(tracking.ENV_URI, raising=False)
    assert tracking.tracking_uri("") == ""
    monkeypatch.setenv(tracking.ENV_URI, "sqlite:///x.db")
    assert tracking.tracking_uri("") == "sqlite:///x.db" and tracking.tracking_uri("off") == ""
    assert type(tracking.start_run("", experiment="e", run_name="r", params={})) is tracking.Tracker
    assert (
        tracking.redact_uri("https://me:secret@mlflow.plant:5000/x") == "https://me:***@mlflow.plant:5000/x"
    )


def test_missing_mlflow_with_a_uri_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(tracking.TrackingError, match=r"pip install 'inspection\[mlflow\]'"):
        tracking.start_run("file:/nowhere", experiment="e", run_name="r", params={})
    with pytest.raises(tracking.TrackingError, match="--mlflow-uri off"):
        tracking.log_bundle("file:/nowhere", tmp_path, {})


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder store: no server, no database to migrate
    monkeypatch.delenv(tracking.ENV_URI, raising=False)
    return (tmp_path / "mlruns").as_uri()


def test_training_is_tracked_in_mlflow(synthetic_root, tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    result = TRAINERS["defect"](tiny_config(synthetic_root, tmp_path / "models", mlflow_uri=mlflow_uri))
    client = MlflowClient(tracking_uri=mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("inspection-defect").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "defect/v"
    assert run.data.params["arch"] == "test_defect_cnn" and run.data.params["epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2]
    assert run.data.metrics["final_val_accuracy"] == result.metrics["val_accuracy"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert {"checkpoint/meta.json", "checkpoint/weights.safetensors"} <= artifacts
    logged = json.loads(
        Path(client.download_artifacts(run.info.run_id, "checkpoint/meta.json", str(tmp_path))).read_text()
    )
    assert logged == json.loads((result.path / "meta.json").read_text())  # the complete meta, calibration too
    assert {"calibration", "preprocessing", "class_balance"} <= set(logged)


def test_a_resumed_run_goes_on_in_the_same_mlflow_run(synthetic_root, tmp_path, mlflow_uri, monkeypatch):
    from mlflow.tracking import MlflowClient

    cfg = tiny_config(synthetic_root, tmp_path / "models", mlflow_uri=mlflow_uri)
    with monkeypatch.context() as m:
        kill_after_first_epoch(m)
        with pytest.raises(Killed):
            TRAINERS["defect"](cfg)
    TRAINERS["defect"](replace(cfg, resume=True))
    client = MlflowClient(tracking_uri=mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("inspection-defect").experiment_id])
    assert run.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss")) == [1, 2]


def test_log_bundle(tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    bundle = tmp_path / "bundles" / "plant-v2"
    (bundle / "defect").mkdir(parents=True)
    (bundle / "card.json").write_text("{}")
    (bundle / "defect" / "meta.json").write_text("{}")
    run_id = tracking.log_bundle(mlflow_uri, bundle, {"golden_accuracy": 0.97, "note": "text is skipped"})
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "plant-v2" and run.data.metrics == {"golden_accuracy": 0.97}
    assert {a.path for a in client.list_artifacts(run_id, "bundle")} == {"bundle/card.json", "bundle/defect"}
    assert tracking.log_bundle("off", bundle, {}) == ""


def test_new_share_draws_that_share_of_each_epoch_from_the_new_data(tmp_path):
    from helpers.training import tiny_train_config, write_photos

    from inspection.trainer import Trainer

    new = write_photos(tmp_path / "new", {"ok": None, "def_front": "crack"}, n=4, seed=1)
    old = write_photos(tmp_path / "old", {"ok": None, "def_front": "burr"}, n=30, seed=2)
    plain = Trainer(tiny_train_config(new, tmp_path / "out", replay=(str(old),)))
    order = plain.epoch_order(np.random.default_rng(0))
    assert sorted(order) == sorted(plain.train_idx)  # by default every photo once
    shared = Trainer(tiny_train_config(new, tmp_path / "out", replay=(str(old),), new_share=0.5))
    order = shared.epoch_order(np.random.default_rng(0))
    from_new = shared.source[order] == 0
    assert len(order) == len(shared.train_idx) and abs(from_new.mean() - 0.5) < 0.02
    assert set(order[from_new]) == set(shared.train_idx[shared.source[shared.train_idx] == 0])
    assert not set(order) & set(shared.val_idx)  # validation photos are never trained on


def test_should_stop_early_counts_epochs_since_the_best():
    from inspection.trainer import should_stop_early

    assert not should_stop_early(0, 9, 1)  # patience 0: never
    assert not should_stop_early(2, 3, 2) and should_stop_early(2, 4, 2) and should_stop_early(1, 2, 1)


def test_patience_stops_a_run_that_no_longer_improves(synthetic_root, tmp_path, caplog):
    # learning rate 0: the weights never change, so no epoch after the first is better
    cfg = tiny_config(synthetic_root, tmp_path, epochs=20, patience=2, lr=0.0)
    with caplog.at_level(logging.INFO, logger="inspection.trainer"):
        result = TRAINERS["defect"](cfg)
    assert result.metrics["best_epoch"] == 1
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("defect epoch")]
    assert len(epochs) == 3  # epoch 1 (best), then 2 and 3 without a better score: stop
    assert any("stopping early after epoch 3" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("task", sorted(TRAINERS))
def test_channels_last_trains_the_same_model_and_saves_the_default_layout(task, synthetic_root, tmp_path):
    paths = {}
    for cl in (True, False):
        cfg = tiny_config(synthetic_root, tmp_path / str(cl), task=task, epochs=1, channels_last=cl)
        paths[cl] = TRAINERS[task](cfg).path
    fast, plain = (load_file(str(paths[cl] / "weights.safetensors")) for cl in (True, False))
    assert fast.keys() == plain.keys()
    for name, tensor in fast.items():
        assert tensor.is_contiguous()
        torch.testing.assert_close(tensor, plain[name], rtol=1e-3, atol=1e-4)


def test_threads_limit_numpy_blas_and_opencv_too():
    import cv2
    from threadpoolctl import threadpool_info, threadpool_limits

    from inspection.trainer import limit_threads

    opencv = cv2.getNumThreads()
    try:
        with threadpool_limits(limits=None):  # puts the BLAS thread counts back on the way out
            limit_threads(1)
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
            assert cv2.getNumThreads() == 1 and torch.get_num_threads() == 1
    finally:
        cv2.setNumThreads(opencv)
