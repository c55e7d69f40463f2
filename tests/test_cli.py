import csv
import json

import cv2
import numpy as np
import pytest

from inspection.cli import main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "inspection" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for verb in ("demo", "score", "train", "evaluate", "synth"):
        assert verb in out


def test_synth_train_evaluate(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--n-train", "16", "--n-test", "6", "--size", "64"]) == 0
    assert len(list((data / "train").rglob("*.png"))) == 16
    assert "wrote 16 train" in capsys.readouterr().out
    models = tmp_path / "models"
    for task, arch in (
        ("noise", "test_freq_vgg"),
        ("denoiser", "test_unet_ae"),
        ("defect", "test_defect_cnn"),
    ):
        assert (
            main(
                [
                    "train",
                    task,
                    "--data",
                    str(data),
                    "--out",
                    str(models),
                    "--arch",
                    arch,
                    "--input-size",
                    "32",
                    "--epochs",
                    "1",
                    "--batch-size",
                    "4",
                    "--quiet",
                    "--version",
                    "v1",
                ]
            )
            == 0
        )
        assert json.loads(capsys.readouterr().out)["checkpoint"].endswith(f"{task}/v1")
    reports = tmp_path / "reports"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--models",
                str(models),
                "--reports",
                str(reports),
                "--quiet",
                "--methods",
                "median",
                "notch",
                "--no-realistic",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| noisy, routed denoising |" in out
    assert len(list(reports.glob("*/report.json"))) == 1


def test_train_reads_config_file_and_flags_override(tmp_path, synthetic_root, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"data: {synthetic_root}\narch: test_defect_cnn\ninput_size: 32\nepochs: 1\nversion: fromfile\n"
        "quiet: true\n"
    )
    assert main(["train", "defect", "--config", str(cfg), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "defect" / "fromfile" / "meta.json").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 3\n")
    with pytest.raises(SystemExit, match="unknown option"):
        main(["train", "defect", "--config", str(bad)])


def test_score_writes_a_row_per_file_and_rejects_bad_ones(tmp_path, tiny_models, casting_photo, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), casting_photo)
    cv2.imwrite(str(folder / "good.jpg"), casting_photo)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not a photo")
    ok, jpg = cv2.imencode(".jpg", casting_photo)
    (folder / "truncated.jpg").write_bytes(jpg.tobytes()[:400])
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((4, 4), np.uint8))
    out = tmp_path / "results.csv"
    db = f"sqlite:///{tmp_path / 'records.db'}"
    args = [
        "score",
        str(folder),
        str(tmp_path / "missing.png"),
        "--out",
        str(out),
        "--models",
        str(tiny_models),
    ]
    args += ["--quiet", "--db", db, "--station", "line-9"]
    assert main(args) == 0
    rows = {r["path"].split("/")[-1]: r for r in csv.DictReader(out.open())}
    assert len(rows) == 7
    assert rows["good.png"]["status"] == "ok" and rows["good.png"]["verdict"] in ("ok", "defective")
    assert rows["good.jpg"]["status"] == "ok"
    expected = {
        "empty.png": "empty",
        "text.jpg": "not_an_image",
        "truncated.jpg": "corrupt",
        "tiny.png": "too_small",
        "missing.png": "unreadable",
    }
    for name, reason in expected.items():
        assert rows[name]["status"] == "rejected" and rows[name]["reason"] == reason and rows[name]["message"]
    assert "5 rejected" in capsys.readouterr().out
    from inspection.store import RecordStore

    store = RecordStore(db)
    assert store.count_inspections(station_id="line-9") == 7
    assert store.count_inspections(station_id="line-9", status="rejected") == 5
    assert main(args) == 0  # scoring the same files again adds no duplicate ...
    # ... except for the missing file: with no photo bytes there is no identity, so each attempt is kept.
    assert store.count_inspections(station_id="line-9") == 8


def test_demo_runs_on_shipped_models(tmp_path, shipped_models, capsys):
    assert (
        main(
            [
                "demo",
                "--n-test",
                "8",
                "--data",
                str(tmp_path / "syn"),
                "--reports",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| clean |" in out and "noisy, routed denoising" in out and "Report:" in out
    assert len(list((tmp_path / "r").glob("*-synthetic/report.json"))) == 1


def test_bench_reports_pipeline_speed(tmp_path, tiny_models, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--models", str(tiny_models), "--n", "4", "--size", "96", "--batch-sizes", "1", "2"]
    assert main([*args, "--reference-n", "0", "--json", str(out)]) == 0
    assert "| routed pipeline | 1 |" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result["pipeline"]) == {"b1", "b2"}
    b1, b2 = result["pipeline"]["b1"], result["pipeline"]["b2"]
    assert b1["n"] == 4 and b1["ms_per_part"] > 0 and b1["p99_ms"] >= b1["p50_ms"]
    assert b2["p50_ms"] >= b2["ms_per_part"]  # a part waits for its whole batch
    assert set(b1["stage_ms"]) == {"decode", "noise", "denoise", "defect"}
    assert result["peak_rss_mb_pipeline"] > 0 and "reference" not in result
    assert len(b1["batch_ms"]) == 4 and len(b2["batch_ms"]) == 2 and not result["stream"]
    routed = {name: d["photos"] for name, d in result["denoiser_ms"].items()}
    assert "identity" not in routed and sum(routed.values()) <= 2  # among the largest batch's photos
    assert all(d["ms_per_photo"] > 0 for d in result["denoiser_ms"].values())


def test_bench_streams_batches_and_says_so(tmp_path, tiny_models, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--models", str(tiny_models), "--n", "6", "--size", "96", "--batch-sizes", "2"]
    assert main([*args, "--reference-n", "0", "--stream", "--png", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "streamed (the next batch decoding while one is judged)" in printed
    assert "the first took" in printed  # three batches: the first against the others
    result = json.loads(out.read_text())
    assert result["stream"] and len(result["pipeline"]["b2"]["batch_ms"]) == 3
    assert sum(result["pipeline"]["b2"]["denoisers"].values()) == 6  # every photo judged


def test_bench_reports_each_stage_share_of_its_compute_bound(tmp_path, tiny_models, capsys):
    from inspection.summary import bench_bounds

    out = tmp_path / "bench.json"
    args = [
        "bench",
        "--models",
        str(tiny_models),
        "--n",
        "4",
        "--size",
        "96",
        "--batch-sizes",
        "1",
        "2",
        "--png",
    ]
    assert main([*args, "--reference-n", "0", "--threads", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "float32 peak" in printed and "| noise |" in printed and "photos handed over as png" in printed
    result = json.loads(out.read_text())
    assert result["peak_gflops"] > 0 and result["device"] == "cpu"
    stages = {"decode", "noise", "denoise", "defect"}
    assert set(result["stage_bound_ms"]) == set(result["stage_gflop"]) == stages
    assert set(result["stage_share"]) == {"b1", "b2"}
    for shares in result["stage_share"].values():
        for stage in ("decode", "noise", "defect"):  # denoise is 0 when every photo takes identity
            assert 0 < shares[stage] < float("inf")
        assert shares["denoise"] is None or 0 <= shares["denoise"] < float("inf")
    assert result["pipeline"]["b1"]["stage_ms"]["decode"] > 0
    assert bench_bounds(result) == {
        "peak_gflops": result["peak_gflops"],
        "stage_share": result["stage_share"],
    }
    assert bench_bounds({}) == {}  # a bench JSON from before the bounds were measured


@pytest.mark.slow
def test_bench_times_the_reference_equivalent_configuration(tmp_path, tiny_models, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--models", str(tiny_models), "--n", "4", "--size", "96", "--batch-sizes", "2"]
    assert main([*args, "--reference-n", "2", "--json", str(out)]) == 0
    assert "| reference-equivalent |" in capsys.readouterr().out
    result = json.loads(out.read_text())
    ref = result["reference"]
    assert ref["n"] == 2 and set(ref["stage_ms"]) == {"spectrum+noise", "denoise", "defect"}
    # VGG16 twice at 224 px plus a 256 px autoencoder cost far more than the tiny test models.
    assert result["speedup_vs_reference"] > 2 and result["speedup_batch"] == 2


def test_synth_opt_in_kinds_in_kind_folders(tmp_path, capsys):
    data = tmp_path / "kinds"
    args = ["synth", "--out", str(data), "--n-train", "12", "--n-test", "0", "--size", "48", "--seed", "2"]
    assert main([*args, "--kinds", "scratch,inclusion", "--kind-folders", "--defect-share", "1"]) == 0
    assert {p.name for p in (data / "train").iterdir()} <= {"def_scratch", "def_inclusion"}
    assert len(list((data / "train").rglob("*.png"))) == 12
    capsys.readouterr()
    assert main([*args[:2], str(tmp_path / "bad"), *args[3:], "--kinds", "dent"]) == 2
    assert "unknown defect kind" in capsys.readouterr().err


def test_synth_refuses_what_it_cannot_make_well(tmp_path, capsys):
    """A folder with photos in it (two runs would mix, and dataset.json describe only the last), a photo
    smaller than the pipeline judges, a share that is no share; negative counts are argparse errors."""
    data = tmp_path / "data"
    args = ["synth", "--out", str(data), "--n-train", "4", "--n-test", "0", "--size", "48"]
    assert main(args) == 0
    before = sorted(data.rglob("*"))
    assert main([*args, "--seed", "2"]) == 2
    assert "not a new or empty folder" in capsys.readouterr().err and sorted(data.rglob("*")) == before
    fresh = ["synth", "--out", str(tmp_path / "fresh"), "--n-train", "4", "--n-test", "0"]
    assert main([*fresh, "--size", "16"]) == 2 and "below the smallest photo" in capsys.readouterr().err
    assert main([*fresh, "--defect-share", "1.5"]) == 2 and "between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(tmp_path / "fresh"), "--n-train", "-3"])
    assert "must be at least 0" in capsys.readouterr().err


def test_setup_mistakes_are_one_line_and_exit_2_in_every_command(tmp_path, capsys):
    """A models folder that is not there, a config file that cannot be read, an unknown store revision."""
    nope = str(tmp_path / "nope")
    for argv in (
        ["router-check", "--models", nope, "--texture-n", "1"],
        ["explain", "--data", str(tmp_path), "--models", nope],
        ["models", "fit-ood", nope, "--data", str(tmp_path)],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert (
            err.startswith(f"inspection {argv[0]}") and "does not exist" in err and len(err.splitlines()) == 1
        )
    (tmp_path / "bad.toml").write_text("bad = = toml\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    for config, says in (
        ("bad.toml", "cannot read"),
        ("missing.toml", "cannot read"),
        ("list.yaml", "no keys"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(["evaluate", "--config", str(tmp_path / config)])
        assert stop.value.code == 2 and says in capsys.readouterr().err
    assert main(["db", "upgrade", "bogus", "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    assert "Can't locate revision" in capsys.readouterr().err
    assert main(["router-check", "--texture-n", "0"]) == 2 and "nothing to check" in capsys.readouterr().err
    assert (
        main(["db", "current", "--db", f"sqlite:///{tmp_path / 'typo.db'}"]) == 2
    )  # reading creates no database
    assert "no database at" in capsys.readouterr().err and not (tmp_path / "typo.db").exists()
    no_server = "postgresql+psycopg://nobody@127.0.0.1:1/records"
    assert main(["db", "current", "--db", no_server]) == 2
    assert capsys.readouterr().err.startswith("inspection db current: cannot use postgresql+psycopg://")
