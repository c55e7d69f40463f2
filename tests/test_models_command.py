"""``inspection models create|list|show|promote|rollback`` from the command line, decisions on record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspection.bundle import BUNDLES_DIR, load_bundle, read_live
from inspection.cli import build_parser, main
from inspection.store import RecordStore
from inspection.testing import write_tiny_checkpoints


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoints(tmp_path_factory.mktemp("parts"), seed=0)


@pytest.fixture(autouse=True)
def no_tracking(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # promote logs to MLflow only when asked here


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.db'}"


def create(parts: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "models",
            "create",
            "--noise",
            str(parts / "noise"),
            "--denoiser",
            str(parts / "denoiser"),
            "--defect",
            str(parts / "defect"),
            "--out",
            str(out),
            *extra,
        ]
    )


def set_threshold(bundle: Path, threshold: float) -> None:
    """A deliberately degraded candidate: the same weights with another verdict threshold."""
    spec = json.loads((bundle / "pipeline.json").read_text())
    spec["policy"]["threshold"] = threshold
    (bundle / "pipeline.json").write_text(json.dumps(spec))


def test_create_writes_a_bundle_with_its_card(parts: Path, tmp_path: Path, capsys) -> None:
    data_card = tmp_path / "dataset.json"
    data_card.write_text(json.dumps({"fingerprint": "abc", "skipped_photos": [{"id": 1}, {"id": 2}]}))
    script = tmp_path / "recipe.sh"
    script.write_text("#!/usr/bin/env bash\n# trains it\ninspection train defect --data D\n")
    assert create(parts, tmp_path / "v2", "--parent", "v1", "--data-card", str(data_card)) == 0
    assert "created bundle v2" in capsys.readouterr().out
    bundle = load_bundle(tmp_path / "v2")
    assert bundle.parent == "v1" and bundle.policy.threshold == 0.5
    assert bundle.card["data"] == {"fingerprint": "abc", "skipped_photos": 2}  # long lists only counted
    assert bundle.card["commands"][0].startswith("inspection models create --noise")
    assert create(parts, tmp_path / "v3", "--commands", str(script)) == 0
    assert load_bundle(tmp_path / "v3").card["commands"] == ["inspection train defect --data D"]
    assert create(parts, tmp_path / "v2") == 2  # an existing bundle is never overwritten
    assert "already exists" in capsys.readouterr().err


def test_promote_list_show_and_rollback_with_every_decision_recorded(
    parts: Path, synthetic_root: Path, tmp_path: Path, db: str, capsys
) -> None:
    root = tmp_path / "models"
    root.mkdir()
    golden = ["--golden", str(synthetic_root), "--db", db, "--by", "alice", "--quiet"]
    for v in ("v1", "v2", "v3"):
        assert create(parts, tmp_path / "cands" / v, "--parent", "v1") == 0
    set_threshold(tmp_path / "cands" / "v1", 0.0)  # calls every part defective: recall 100%
    set_threshold(tmp_path / "cands" / "v3", 1.0)  # calls none defective: recall 0%
    capsys.readouterr()

    assert main(["models", "promote", str(tmp_path / "cands" / "v1"), "--models", str(root), *golden]) == 0
    assert "first promotion" in capsys.readouterr().out and read_live(root) == "v1"

    assert main(["models", "promote", str(tmp_path / "cands" / "v3"), "--models", str(root), *golden]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "recall (defective)" in out and "DROP" in out and read_live(root) == "v1"

    set_threshold(tmp_path / "cands" / "v2", 0.0)  # as good as v1
    assert main(["models", "promote", str(tmp_path / "cands" / "v2"), "--models", str(root), *golden]) == 0
    assert "promoted: v2 is live now (was v1)" in capsys.readouterr().out

    assert main(["models", "list", "--models", str(root)]) == 0
    listing = capsys.readouterr().out.splitlines()
    live = [line for line in listing if line.startswith("*")]
    assert len(live) == 1 and "v2" in live[0] and "100.0%" in live[0]  # live, with its golden recall

    assert main(["models", "show", "v2", "--models", str(root)]) == 0
    shown = capsys.readouterr().out
    assert "# Model bundle `v2`" in shown and "## Golden set" in shown and '"gate_tolerance": 0.02' in shown

    assert main(["models", "rollback", "--models", str(root), "--db", db, "--note", "line 4 complaints"]) == 0
    assert "v1 is live now (was v2)" in capsys.readouterr().out and read_live(root) == "v1"

    with RecordStore(db) as store:
        decisions = store.list_promotions(str(root.resolve()))
    assert [(d["action"], d["version"], d["previous"]) for d in decisions] == [
        ("rollback", "v1", "v2"),
        ("promote", "v2", "v1"),
        ("refuse", "v3", "v1"),
        ("promote", "v1", None),
    ]
    refused = decisions[2]
    assert refused["decided_by"] == "alice" and "recall (defective)" in refused["comparison"]["failed"]
    assert refused["comparison"]["tolerance"] == 0.02 and refused["comparison"]["golden"]["photos"] == 8
    assert decisions[0]["note"] == "line 4 complaints"
    assert not (root / BUNDLES_DIR / "v3" / "card.md").read_text().count("## Golden set")


def test_promote_with_a_store_that_cannot_be_opened_changes_nothing(
    parts: Path, synthetic_root: Path, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "models"
    root.mkdir()
    assert create(parts, tmp_path / "v1") == 0
    bad_db = "postgresql+psycopg://inspection@127.0.0.1:1/records"  # nothing listens on port 1
    args = ["models", "promote", str(tmp_path / "v1"), "--models", str(root), "--golden", str(synthetic_root)]
    assert main([*args, "--db", bad_db]) == 2
    err = capsys.readouterr().err
    assert read_live(root) is None and "inspection models promote:" in err and "--without-store" in err
    assert main([*args, "--db", bad_db, "--without-store"]) == 0  # said out loud: decide without a record
    assert read_live(root) == "v1" and "will not be recorded" in capsys.readouterr().err


def test_no_record_is_the_older_name_of_without_store() -> None:
    for action in ("promote", "rollback"):
        cmd = ["models", action, *(["BUNDLE"] if action == "promote" else []), "--models", "ROOT"]
        assert build_parser().parse_args([*cmd, "--no-record"]).without_store
        assert not build_parser().parse_args(cmd).without_store


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["models", "promote", str(tmp_path / "x"), "--models", str(tmp_path / "nowhere")]) == 2
    assert main(["models", "show", "nothing", "--models", str(tmp_path)]) == 2
    (tmp_path / "root").mkdir()
    assert (
        main(
            [
                "models",
                "rollback",
                "--models",
                str(tmp_path / "root"),
                "--db",
                f"sqlite:///{tmp_path / 'r.db'}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no bundle is live" in err
    assert main(["models", "list", "--models", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_rollback_to_a_parent_that_is_not_in_the_root_says_to_pass_to(
    parts: Path, synthetic_root: Path, tmp_path: Path, db: str, capsys
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert create(parts, tmp_path / "v2", "--parent", "v1") == 0
    assert main(["models", "promote", str(tmp_path / "v2"), "--models", str(root), "--golden", str(synthetic_root),
                 "--db", db, "--quiet"]) == 0  # fmt: skip
    assert main(["models", "rollback", "--models", str(root), "--db", db]) == 2
    err = capsys.readouterr().err
    assert "was 'v1', which is not under" in err and "--to VERSION" in err and read_live(root) == "v2"


def test_a_promoted_bundle_is_logged_to_mlflow_when_a_uri_is_given(
    parts: Path, synthetic_root: Path, tmp_path: Path, db: str, monkeypatch
) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder store: no server, no database to migrate
    uri = (tmp_path / "mlruns").as_uri()
    root = tmp_path / "models"
    root.mkdir()
    assert create(parts, tmp_path / "v1") == 0
    args = [
        "--models",
        str(root),
        "--golden",
        str(synthetic_root),
        "--db",
        db,
        "--quiet",
        "--mlflow-uri",
        uri,
    ]
    assert main(["models", "promote", str(tmp_path / "v1"), *args]) == 0
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("inspection-bundles").experiment_id])
    assert run.info.run_name == "v1" and run.data.params["action"] == "promote"
    assert set(run.data.metrics) >= {"accuracy", "accuracy.gaussian", "balanced_accuracy"}
