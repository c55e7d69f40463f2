"""``inspection dashboard`` and the page benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspection import cli
from inspection.commands import dashboard
from inspection.dashboard import bench, fixtures, parts, ui


def test_command_builds_streamlit_run_with_sources(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(
        [
            "dashboard",
            "--reports",
            str(tmp_path / "r"),
            "--db",
            "postgresql+psycopg://u:secret@db/x",
            "--host",
            "0.0.0.0",
            "--port",
            "8600",
        ]
    )
    cmd, env = dashboard.build_command(args)
    assert (
        cmd[1:4] == ["-m", "inspection.dashboard.launch", "run"]
        and cmd[4].endswith("dashboards/app.py")
        and Path(cmd[4]).is_file()
    )
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.headless"] == "true" and flags["--server.port"] == "8600"
    assert flags["--server.address"] == "0.0.0.0" and flags["--client.showErrorDetails"] == "none"
    assert env["INSPECTION_REPORTS"] == str((tmp_path / "r").resolve())
    assert env["INSPECTION_DB"] == "postgresql+psycopg://u:secret@db/x"


def test_command_defaults_to_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INSPECTION_HOME", str(tmp_path))
    monkeypatch.delenv("INSPECTION_DB", raising=False)
    args = cli.build_parser().parse_args(["dashboard"])
    _, env = dashboard.build_command(args)
    assert env["INSPECTION_REPORTS"] == str(tmp_path / "reports")
    assert env["INSPECTION_DB"] == f"sqlite:///{tmp_path / 'records.db'}"
    assert (args.host, args.port) == ("127.0.0.1", 8501)


def test_missing_app_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(dashboard.APP_ENV, str(tmp_path / "nowhere.py"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dashboard, "__file__", str(tmp_path / "a" / "b" / "c.py"))
    with pytest.raises(FileNotFoundError, match="pip install -e"):
        dashboard.find_app()


def test_bench_times_every_page_on_a_filled_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A budget no machine misses: this checks that the benchmark runs, not how fast (that is its own output).
    args = [
        "--records",
        "1500",
        "--keep",
        str(tmp_path),
        "--no-apptest",
        "--repeats",
        "1",
        "--budget-ms",
        "600000",
    ]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "inserted 1,500 records" in out
    for page in bench.PAGES:
        assert page in out
    assert "(budget 600,000 ms): OK" in out
    # --existing reuses the data a --keep run left
    assert bench.main([*args, "--existing"]) == 0
    assert "inserted" not in capsys.readouterr().out


def test_cached_pipeline_loads_checkpoints_and_rebuilds_the_autoencoder_view(tmp_path: Path) -> None:
    testing = pytest.importorskip("inspection.testing")
    models = testing.write_tiny_bundle(tmp_path / "models")
    pipe, why = ui.pipeline.__wrapped__(str(models))  # type: ignore[attr-defined]
    assert pipe is not None, why
    gray = fixtures.synth_casting(np.random.default_rng(0), size=64)
    view = parts.denoised_view(gray, {"denoiser": "autoencoder"}, pipe)
    assert view.image is not None and view.image.shape == gray.shape and "autoencoder" in view.note
    missing, reason = ui.pipeline.__wrapped__(str(tmp_path / "none"))  # type: ignore[attr-defined]
    assert missing is None and "could not be loaded" in reason


def test_launch_hands_its_arguments_to_streamlit() -> None:
    """``python -m inspection.dashboard.launch`` warms the imports, then runs Streamlit's own command line."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "inspection.dashboard.launch", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Streamlit, version")
