"""One build step beyond pyproject.toml: a wheel carries the live model bundle and the dashboard app.

A source checkout keeps them at the top level (``models/``, ``dashboards/``), where the guides name them. A
non-editable build copies, into ``inspection/_shipped/``, the bundle that ``models/LIVE`` names (not every bundle),
``models/LIVE`` and ``models/README.md``, and ``dashboards/``; ``inspection.paths`` looks there first. Nothing is
copied for an editable install, which finds the top-level folders beside the package.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def shipped_files(root: Path = ROOT) -> dict[str, Path]:
    """Each file the wheel ships under ``inspection/_shipped/``: its path there -> the source file."""
    live = (root / "models" / "LIVE").read_text().strip()
    bundle = root / "models" / "bundles" / live
    if not (bundle / "pipeline.json").is_file():
        raise FileNotFoundError(f"models/LIVE names bundle {live!r}, but {bundle} has no pipeline.json")
    files = {f"models/{name}": root / "models" / name for name in ("LIVE", "README.md")}
    sources = [*bundle.rglob("*"), *(root / "dashboards").rglob("*.py")]
    for path in sorted(p for p in sources if p.is_file() and "__pycache__" not in p.parts):
        files[path.relative_to(root).as_posix()] = path
    return files


class BuildPyWithShipped(build_py):
    """``build_py`` that also copies the shipped files into the build (skipped for an editable install)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "inspection" / "_shipped"
        shutil.rmtree(target, ignore_errors=True)  # a reused build folder may hold a bundle no longer live
        for name, source in shipped_files().items():
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildPyWithShipped})
