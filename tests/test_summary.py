import json

import pytest

from inspection import NOISE_TYPES, summary


def test_summary_rewrites_only_the_sections_named(tmp_path, monkeypatch):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text(
        '{"id": "r2", "commit": "abc", "backend": "onnxruntime"}'
    )
    (tmp_path / "bench.json").write_text("{}")
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"generalisation": {"x": 1}, "bench": "old", "realistic": "old"}))
    monkeypatch.setattr(summary, "summarise", lambda r, b, s: {"bench": "new", "realistic": {"jpeg": 0.9}})
    args = [str(tmp_path / "report"), str(tmp_path / "bench.json"), "--out", str(out)]

    assert summary.main([*args, "--sections", "realistic"]) == 0
    assert json.loads(out.read_text()) == {
        "generalisation": {"x": 1},
        "bench": "old",
        "realistic": {"jpeg": 0.9},
        "provenance": {"realistic": {"report_id": "r2", "commit": "abc", "backend": "onnxruntime"}},
    }
    assert summary.main(args) == 0
    written = json.loads(out.read_text())
    assert written["bench"] == "new" and set(written["provenance"]) == {"bench", "realistic"}
    assert written["provenance"]["bench"] == {"source": str(tmp_path / "bench.json")}, (
        "the bench file's, not the report's"
    )
    (tmp_path / "report" / "report.json").write_text(
        '{"id": "r1", "commit": "abc"}'
    )  # before reports named it
    assert summary.main([*args, "--sections", "realistic"]) == 0
    assert json.loads(out.read_text())["provenance"]["realistic"]["backend"] == "torch"
    with pytest.raises(SystemExit):
        summary.main([*args, "--sections", "realistc"])


def test_summary_without_a_bench_run_writes_the_routed_denoisers_time_and_no_bench():
    report = {
        "id": "r1",
        "commit": "abc",
        "dataset": {"name": "casting"},
        "routes": {"clean": "identity", "gaussian": "autoencoder", "periodic": "notch"},
        "noise_classifier": {"accuracy": 1.0, "recall": dict.fromkeys(NOISE_TYPES, 1.0)},
        "denoise": {
            "summary": [
                {
                    "noise_type": "gaussian",
                    "method": "autoencoder",
                    "psnr": 33.1,
                    "ssim": 0.9,
                    "ms_per_image": 14.0,
                },
                {
                    "noise_type": "gaussian",
                    "method": "nlmeans",
                    "psnr": 31.4,
                    "ssim": 0.87,
                    "ms_per_image": 104.0,
                },
                {"noise_type": "periodic", "method": "notch", "psnr": 35.1, "ssim": 0.9, "ms_per_image": 6.6},
            ]
        },
        "denoise_psnr": {"gaussian": 33.1, "periodic": 35.1},
        "defect_accuracy": {},
        "defect": {"conditions": {}},
        "defect_erasure": 0.0,
    }
    sections = summary.summarise(report, None)
    assert "bench" not in sections
    assert sections["denoise_ms"] == {"gaussian": 14.0, "periodic": 6.6}
    assert sections["denoise_methods"]["gaussian"]["nlmeans"]["ms_per_image"] == 104.0


def test_gpu_section_comes_from_a_gpu_bench_folder_and_keeps_the_others(tiny_models, tmp_path):
    from inspection.bench import run_bench, save
    from inspection.configs import BenchConfig

    run = run_bench(BenchConfig(models=str(tiny_models), n=8, size=64, batch_sizes=(1, 4), reference_n=0))
    folder = tmp_path / "gpu_bench"
    save(run, folder / "cuda.json")  # a CPU run stands in for the GPU one: the section only reads the files
    save(run, folder / "cpu.json")
    (folder / "parity.json").write_text(json.dumps({"n": 8, "routes_agree": 8, "verdicts_agree": 8}))
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"bench": "kept", "provenance": {"bench": {"commit": "abc"}}}))
    assert summary.main(["--gpu", str(folder), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    gpu = written["gpu"]
    assert written["bench"] == "kept" and set(written["provenance"]) == {"bench", "gpu"}
    assert set(gpu) == {"device", "photos", "photos_as", "cuda", "cpu", "parity"}
    assert gpu["cuda"]["batch"] == 4 and gpu["cuda"]["parts_per_s"] == run["pipeline"]["b4"]["parts_per_s"]
    assert gpu["cuda"]["p99_ms_b1"] == run["pipeline"]["b1"]["p99_ms"]
    assert gpu["parity"]["verdicts_agree"] == 8


def test_gpu_section_needs_a_cuda_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="cuda.json"):
        summary.gpu_section(tmp_path)


def test_train_seconds_alone_needs_no_report_and_keeps_the_others(tmp_path):
    seconds = tmp_path / "seconds.json"
    seconds.write_text(json.dumps({"noise": 132.5, "denoiser": 309.6, "defect": 577.1}))
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"gpu": "kept"}))
    assert summary.main(["--train-seconds", str(seconds), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["gpu"] == "kept" and written["train_seconds"]["defect"] == 577.1
    assert written["provenance"] == {"train_seconds": {"source": str(seconds)}}
    with pytest.raises(SystemExit):
        summary.main(["--out", str(out)])  # neither a report nor a section to write alone


def test_bench_json_alone_writes_the_bench_section_with_its_backend(tiny_models, tmp_path):
    from inspection.bench import run_bench, save
    from inspection.configs import BenchConfig

    run = run_bench(BenchConfig(models=str(tiny_models), n=8, size=64, batch_sizes=(1, 32), reference_n=2))
    save(run, tmp_path / "bench.json")
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"gpu": "kept"}))
    assert summary.main(["--bench-json", str(tmp_path / "bench.json"), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["gpu"] == "kept" and written["bench"]["backend"] == "torch"
    assert written["bench"]["ms_per_part_b32"] == run["pipeline"]["b32"]["ms_per_part"]
    assert set(written["bench"]["stage_share"]) == {"b1", "b32"}
    assert written["provenance"] == {"bench": {"source": str(tmp_path / "bench.json")}}
