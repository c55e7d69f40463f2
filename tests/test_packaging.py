"""Packaging for stations: what the wheel carries, what the base install needs, and the extras' messages."""

from __future__ import annotations

import ast
import csv
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import cv2
import pytest

from inspection import paths
from inspection.cli import main
from inspection.commands import _extras

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# Import name -> the distribution that provides it, for every third-party import in the package.
DISTRIBUTIONS = {
    "PIL": "pillow",
    "cv2": "opencv-python-headless",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "mlflow": "mlflow-skinny",
    "prometheus_client": "prometheus-client",
    "streamlit_authenticator": "streamlit-authenticator",
    "anyio": "fastapi",  # these three come with fastapi, and only the service imports them
    "pydantic": "fastapi",
    "starlette": "fastapi",
    "h11": "uvicorn",  # uvicorn's HTTP/1.1 protocol, which the service's header deadline extends
}
# The extras' import names: a base station has none of them.
EXTRA_MODULES = (
    "fastapi", "uvicorn", "h11", "starlette", "multipart", "python_multipart", "prometheus_client", "httpx",
    "streamlit", "altair", "pandas", "streamlit_authenticator", "bcrypt",
)  # fmt: skip


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def declared(group: str | None = None) -> set[str]:
    """The distributions of the base install (``group=None``) or of one extra."""
    requirements = PYPROJECT["dependencies"] if group is None else PYPROJECT["optional-dependencies"][group]
    return {requirement_name(r) for r in requirements}


def imported_modules() -> set[str]:
    """Every third-party top-level module imported anywhere in the package (lazy imports included)."""
    found = set()
    for path in (REPO / "inspection").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "inspection"}


def test_every_imported_package_is_declared() -> None:
    everything = declared().union(*(declared(extra) for extra in PYPROJECT["optional-dependencies"]))
    undeclared = {m for m in imported_modules() if DISTRIBUTIONS.get(m, m).lower() not in everything}
    assert not undeclared, (
        f"imported but not in pyproject.toml's dependencies or extras: {sorted(undeclared)}"
    )
    assert "scipy" in declared()
    assert "torchvision" not in declared(), "torchvision comes with timm; the package never imports it"


def test_extras_table_matches_pyproject() -> None:
    for extra, packages in _extras.EXTRAS.items():
        assert declared(extra) == {p.lower() for p in packages}, extra
    assert not declared() & declared("serve"), "the service's packages are not in the base install"
    assert not declared() & declared("dashboard"), "the dashboard's packages are not in the base install"
    assert (
        "inspection[serve,dashboard,postgres,baselines,mlflow,onnx,openvino]"
        in PYPROJECT["optional-dependencies"]["dev"]
    )


@pytest.mark.parametrize(
    ("argv", "extra"), [(["serve"], "serve"), (["dashboard"], "dashboard"), (["load"], "serve")]
)
def test_command_without_its_extra_names_the_install(monkeypatch, capsys, argv, extra) -> None:
    monkeypatch.setitem(_extras.EXTRAS, extra, ("no-such-distribution-for-this-test",))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"pip install 'inspection[{extra}]'" in err
    assert "no-such-distribution-for-this-test" in err
    assert "Traceback" not in err


def test_base_station_scores_without_the_extras(tmp_path, tiny_root, casting_photo) -> None:
    """``inspection score`` (with its records store) and every command's ``--help``, with no extra importable."""
    cv2.imwrite(str(tmp_path / "part-1.png"), casting_photo)
    script = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({EXTRA_MODULES!r}))\n"  # None there: any import of them fails
        "from inspection.cli import COMMANDS, build_parser, main\n"
        "for name in COMMANDS:\n"
        "    try:\n"
        "        build_parser().parse_args([name, '--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, name\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [
        "score",
        str(tmp_path / "part-1.png"),
        "--out",
        str(tmp_path / "r.csv"),
        "--models",
        str(tiny_root),
    ]
    env = {k: v for k, v in os.environ.items() if k != "INSPECTION_DB"} | {
        "INSPECTION_HOME": str(tmp_path / "home")
    }
    done = subprocess.run(
        [sys.executable, "-c", script, *argv, "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "home" / "records.db").is_file()
    (row,) = csv.DictReader((tmp_path / "r.csv").open())
    assert (row["status"], row["record_id"]) == ("ok", "1"), row
    assert row["verdict"] in ("ok", "defective", "review")


def test_installed_package_finds_its_shipped_copies(tmp_path, monkeypatch) -> None:
    package = tmp_path / "site-packages" / "inspection"
    (package / "_shipped" / "models").mkdir(parents=True)
    (package / "_shipped" / "models" / "LIVE").write_text("v1\n")
    (package / "_shipped" / "dashboards").mkdir()
    (package / "_shipped" / "dashboards" / "app.py").write_text("")
    monkeypatch.setattr(paths, "PACKAGE_ROOT", package)
    monkeypatch.delenv("INSPECTION_MODELS", raising=False)
    assert paths.default_models_dir() == package / "_shipped" / "models"
    assert paths.dashboard_app() == package / "_shipped" / "dashboards" / "app.py"


def test_checkout_finds_the_top_level_folders(monkeypatch) -> None:
    monkeypatch.delenv("INSPECTION_MODELS", raising=False)
    assert not paths.shipped_dir().exists(), (
        "a checkout has no _shipped/: the build makes it in the wheel only"
    )
    assert paths.default_models_dir() == REPO / "models"
    assert paths.dashboard_app() == REPO / "dashboards" / "app.py"


def test_wheel_carries_the_live_bundle_and_the_dashboard(tmp_path) -> None:
    pytest.importorskip("setuptools")
    build = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("inspection-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    live = (REPO / "models" / "LIVE").read_text().strip()
    bundle = REPO / "models" / "bundles" / live
    expected = {
        f"inspection/_shipped/models/bundles/{live}/{p.relative_to(bundle).as_posix()}"
        for p in bundle.rglob("*")
        if p.is_file()
    }
    expected |= {"inspection/_shipped/models/LIVE", "inspection/_shipped/dashboards/app.py"}
    expected |= {
        f"inspection/_shipped/dashboards/views/{p.name}" for p in (REPO / "dashboards" / "views").glob("*.py")
    }
    assert expected <= names, sorted(expected - names)
    bundles = {n.split("/")[4] for n in names if n.startswith("inspection/_shipped/models/bundles/")}
    assert bundles == {live}, "only the live bundle ships"
    assert wheel.stat().st_size < 8 * 2**20, f"the wheel is {wheel.stat().st_size / 2**20:.1f} MiB"
