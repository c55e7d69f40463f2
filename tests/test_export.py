"""``inspection export`` and ``--backend``: exported models judge like torch (parity), and a backend that cannot
run is an error, never a quiet fall back to torch."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inspection import NOISE_TYPES
from inspection.bench import judge_all, parity_report
from inspection.bundle import load_bundle
from inspection.cli import main
from inspection.data import synth_casting
from inspection.export import export_bundle
from inspection.noise import add_noise
from inspection.ood import fit_bundle_ood
from inspection.pipeline import InspectionPipeline, PipelineConfig
from inspection.runtimes import EXPORTED, BackendError, check_export
from inspection.store import RecordStore

TOLERANCE = 1e-4  # max |delta p| on noise and defect probabilities and on OOD scores
FORMAT = {backend: fmt for backend, (fmt, _, _) in EXPORTED.items()}
EVERYTHING_TO_THE_AUTOENCODER = PipelineConfig(
    routes=dict.fromkeys(NOISE_TYPES, "autoencoder"), max_signal_dependence=0.0, max_noise_sigma=0.0
)


def require(backend: str) -> None:
    """Skip, saying why, when the backend's runtime package is not installed."""
    module, extra = EXPORTED[backend][1:]
    if importlib.util.find_spec(module) is None:
        pytest.skip(
            f"{module} is not installed (pip install 'inspection[{extra}]'); {backend} parity not checked"
        )


@pytest.fixture(scope="module")
def tiny_bundle(tiny_models: Path, synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny bundle with an OOD model fitted on the synthetic training photos."""
    path = tmp_path_factory.mktemp("export") / "tiny-v1"
    shutil.copytree(tiny_models, path)
    fit_bundle_ood(path, [synthetic_root])
    return path


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Synthetic castings under every protocol noise type, in sizes the autoencoder must pad (odd, non-square)."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(16):
        size = (64, 64) if i % 2 else (61 + i, 77 - i)
        clean = synth_casting(rng, 96, "blowhole" if i % 3 == 0 else None)[: size[0], : size[1]]
        out.append(add_noise(np.ascontiguousarray(clean), NOISE_TYPES[i % 4], rng=rng))
    return out


def exported(bundle: Path, backend: str) -> Path:
    require(backend)
    fmt = FORMAT[backend]
    if not (bundle / fmt / "export.json").is_file():
        export_bundle(bundle, fmt)
    return bundle


def assert_parity(
    bundle: Path, backend: str, photos: list[np.ndarray], config: PipelineConfig | None
) -> None:
    torch_pipe = InspectionPipeline.from_bundle(load_bundle(bundle), config)
    other = InspectionPipeline.from_bundle(load_bundle(bundle), config, backend=backend)
    reference, candidate = judge_all(torch_pipe, photos, 8), judge_all(other, photos, 8)
    report = parity_report(reference, candidate)
    assert report["judged"] == len(photos), report
    assert report["routes_agree"] == report["verdicts_agree"] == len(photos), report
    assert report["max_delta_noise_p"] <= TOLERANCE, report
    assert report["max_delta_defect_p"] <= TOLERANCE, report
    assert report["max_delta_ood_score"] is not None and report["max_delta_ood_score"] <= TOLERANCE, report
    assert {r.model_versions["backend"] for r in candidate} == {backend}
    assert {r.model_versions["backend"] for r in reference} == {"torch"}


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("config", [None, EVERYTHING_TO_THE_AUTOENCODER], ids=["routed", "autoencoder"])
def test_tiny_bundle_parity_with_torch(tiny_bundle, photos, backend, config) -> None:
    assert_parity(exported(tiny_bundle, backend), backend, photos, config)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_shipped_bundle_parity_with_torch(shipped_models, photos, backend, tmp_path_factory) -> None:
    bundle = tmp_path_factory.mktemp("shipped") / shipped_models.name
    shutil.copytree(shipped_models, bundle, ignore=shutil.ignore_patterns("onnx", "openvino"))
    assert_parity(exported(bundle, backend), backend, photos, None)


def test_export_records_preprocessing_and_dynamic_axes(tiny_bundle) -> None:
    require("onnxruntime")
    import onnx

    folder = exported(tiny_bundle, "onnxruntime") / "onnx"
    manifest = json.loads((folder / "export.json").read_text())
    assert set(manifest["models"]) == {"noise", "denoiser", "defect"}
    defect = manifest["models"]["defect"]
    assert defect["preprocessing"]["size"] == 32 and defect["preprocessing"]["resize"]
    assert (
        defect["source_sha256"]
        == json.loads((tiny_bundle / "defect" / "meta.json").read_text())["weights_sha256"]
    )

    def dims(task: str) -> list[str | int]:
        shape = onnx.load(str(folder / f"{task}.onnx")).graph.input[0].type.tensor_type.shape
        return [d.dim_param or d.dim_value for d in shape.dim]

    assert dims("noise")[0] == dims("defect")[0] == "batch"
    assert dims("denoiser") == ["batch", 1, "height", "width"]
    outputs = [o.name for o in onnx.load(str(folder / "defect.onnx")).graph.output]
    assert outputs == ["logits", "features"]


def test_a_missing_export_is_an_error_not_torch(tiny_models, tmp_path) -> None:
    require("onnxruntime")
    with pytest.raises(BackendError, match="inspection export .* --format onnx"):
        InspectionPipeline.from_bundle(load_bundle(tiny_models), backend="onnxruntime")
    with pytest.raises(BackendError, match="missing"):
        check_export(load_bundle(tiny_models), "onnxruntime")


def test_a_missing_package_is_an_error(tiny_bundle, monkeypatch, capsys, tmp_path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("openvino", "onnxruntime") else real(name, *a),
    )
    with pytest.raises(BackendError, match=r"pip install 'inspection\[openvino\]'"):
        InspectionPipeline.from_bundle(load_bundle(tiny_bundle), backend="openvino")
    with pytest.raises(BackendError, match=r"pip install 'inspection\[openvino\]'"):
        export_bundle(tiny_bundle, "openvino")
    photo = tmp_path / "part-1.png"
    photo.write_bytes(b"")
    out = tmp_path / "r.csv"
    argv = ["score", str(photo), "--out", str(out), "--models", str(tiny_bundle), "--no-db", "--quiet"]
    assert main([*argv, "--backend", "onnxruntime"]) == 2
    assert "pip install 'inspection[onnx]'" in capsys.readouterr().err
    assert not out.exists(), "nothing is scored by another backend instead"


def test_a_stale_export_is_refused(tiny_bundle, tmp_path) -> None:
    require("onnxruntime")
    bundle = tmp_path / "tiny-v1"
    shutil.copytree(exported(tiny_bundle, "onnxruntime"), bundle)
    manifest_path = bundle / "onnx" / "export.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"]["noise"]["source_sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BackendError, match="stale"):
        InspectionPipeline.from_bundle(load_bundle(bundle), backend="onnxruntime")


def test_export_command_writes_to_out(tiny_bundle, tmp_path, capsys) -> None:
    require("onnxruntime")
    assert main(["export", str(tiny_bundle), "--format", "onnx", "--out", str(tmp_path / "out")]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "export.json",
        "noise.onnx",
        "denoiser.onnx",
        "defect.onnx",
    }
    assert "exported bundle tiny-v1 (" in capsys.readouterr().out
    assert (
        main(["export", str(tiny_bundle), "--format", "onnx", "--out", str(tmp_path / "out")]) == 0
    )  # replaced
    assert main(["export", str(tmp_path / "nowhere"), "--format", "onnx"]) == 2
    assert "inspection export:" in capsys.readouterr().err


def test_export_never_replaces_a_folder_that_is_not_an_export(tiny_bundle, tmp_path, capsys) -> None:
    require("onnxruntime")
    precious = tmp_path / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "thesis.txt").write_text("keep me")
    assert main(["export", str(tiny_bundle), "--format", "onnx", "--out", str(precious)]) == 2
    assert "not an earlier export" in capsys.readouterr().err
    assert sorted(p.name for p in precious.iterdir()) == ["sub", "thesis.txt"]
    (tmp_path / "afile").write_text("x")
    assert main(["export", str(tiny_bundle), "--format", "onnx", "--out", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "afile",
        "precious",
    ]  # no partial export left behind


def test_score_csv_and_records_name_the_backend(tiny_bundle, photos, tmp_path) -> None:
    require("onnxruntime")
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "part-1.png"), photos[1])
    bundle = exported(tiny_bundle, "onnxruntime")
    db = f"sqlite:///{tmp_path / 'records.db'}"
    rows = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / f"{backend}.csv"
        argv = ["score", str(folder), "--out", str(out), "--models", str(bundle), "--quiet"]
        assert main([*argv, "--db", db, "--station", backend, "--backend", backend]) == 0
        (rows[backend],) = csv.DictReader(out.open())
        assert rows[backend]["backend"] == backend and f"backend={backend}" in rows[backend]["model_versions"]
    with RecordStore(db) as store:
        record = store.get_inspection(int(rows["onnxruntime"]["record_id"]))
        assert record is not None and record["model_versions"]["backend"] == "onnxruntime"
    assert rows["torch"]["verdict"] == rows["onnxruntime"]["verdict"]


def test_serve_refuses_a_backend_without_an_export(tiny_root, tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("uvicorn", reason="inspection serve needs the serve extra")
    require("onnxruntime")
    monkeypatch.setenv("INSPECTION_HOME", str(tmp_path / "home"))
    argv = ["serve", "--models", str(tiny_root), "--db", f"sqlite:///{tmp_path / 'r.db'}", "--pickup-s", "0"]
    assert main([*argv, "--photos", str(tmp_path / "photos"), "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert "inspection export" in err and "--format onnx" in err and "Traceback" not in err


def test_evaluate_runs_the_export_and_names_its_backend(
    tiny_bundle, synthetic_root, tmp_path, monkeypatch
) -> None:
    require("onnxruntime")
    from inspection.evaluate import EvalConfig, evaluate
    from inspection.pipeline import RuntimeAutoencoder

    bundle = exported(tiny_bundle, "onnxruntime")
    exported_calls = []
    real_stack = RuntimeAutoencoder.denoise_stack
    monkeypatch.setattr(
        RuntimeAutoencoder,
        "denoise_stack",
        lambda self, s: exported_calls.append(len(s)) or real_stack(self, s),
    )
    reports = {}
    for backend in ("torch", "onnxruntime"):
        calls_before = len(exported_calls)
        cfg = EvalConfig(
            data=str(synthetic_root),
            models=str(bundle),
            reports=str(tmp_path / backend),
            quiet=True,
            methods=("autoencoder",),
            realistic=False,
            backend=backend,
        )
        reports[backend], folder = evaluate(cfg)
        assert reports[backend]["backend"] == backend and reports[backend]["config"]["backend"] == backend
        assert f"models run by {backend}" in (folder / "report.md").read_text()
        ran_export = len(exported_calls) > calls_before
        assert ran_export == (backend == "onnxruntime"), "the autoencoder ran where the backend says"
    rows = {
        b: {(r["noise_type"], r["method"]): r for r in rep["denoise"]["summary"]}
        for b, rep in reports.items()
    }
    assert rows["torch"].keys() == rows["onnxruntime"].keys()
    assert rows["onnxruntime"][("gaussian", "autoencoder")]["ms_per_image"] is not None
    # rounding to gray levels may differ by one level on a few pixels
    for key, row in rows["torch"].items():
        assert abs(row["psnr"] - rows["onnxruntime"][key]["psnr"]) < 0.05, key


def test_evaluate_without_the_export_stops_with_the_command_to_make_it(tiny_bundle, synthetic_root, tmp_path):
    require("onnxruntime")
    no_export = tmp_path / "no-export"
    shutil.copytree(tiny_bundle, no_export, ignore=shutil.ignore_patterns("onnx", "openvino"))
    argv = ["evaluate", "--data", str(synthetic_root), "--models", str(no_export), "--quiet"]
    with pytest.raises(SystemExit, match="inspection export"):
        main([*argv, "--reports", str(tmp_path / "r"), "--backend", "onnxruntime"])
    config = tmp_path / "eval.yaml"
    config.write_text("backend: onnxruntime\n")  # a config file may name the backend too
    with pytest.raises(SystemExit, match="inspection export"):
        main([*argv, "--reports", str(tmp_path / "r"), "--config", str(config)])


def test_runtime_autoencoder_scales_and_rounds_as_torch_does() -> None:
    """The same model behind a runner gives the torch autoencoder's photos bit for bit (the 8-bit rounding is
    NumPy's there, torch's here), in batches grouped by size."""
    import torch

    from inspection.denoise import AutoencoderDenoiser
    from inspection.models import create_model
    from inspection.pipeline import RuntimeAutoencoder

    torch.manual_seed(0)
    model = create_model("test_unet_ae").eval()
    torch_ae = AutoencoderDenoiser(model)

    def runner(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            return [torch_ae.model(torch.from_numpy(x)).numpy()]

    rng = np.random.default_rng(0)
    photos = [
        rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(37, 45), (32, 32), (37, 45), (20, 64)]
    ]
    expected = torch_ae.denoise_batch(photos)
    got = RuntimeAutoencoder(runner).denoise_batch(photos)
    assert [g.shape for g in got] == [p.shape for p in photos]
    assert all(np.array_equal(e, g) for e, g in zip(expected, got, strict=True))
    assert any(not np.array_equal(e, p) for e, p in zip(expected, photos, strict=True)), (
        "the model did nothing"
    )
