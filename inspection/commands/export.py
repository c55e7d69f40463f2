"""``inspection export BUNDLE --format onnx|openvino [--out DIR]``: the bundle's models for another runtime."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = (
    "Export a bundle's models (noise, denoiser, defect with its OOD features) to ONNX or OpenVINO, with their "
    "preprocessing recorded, for --backend onnxruntime|openvino."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="the bundle folder (models/bundles/<version>)")
    parser.add_argument(
        "--format", required=True, choices=("onnx", "openvino"), help="onnx (ONNX Runtime) or openvino (IR)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write here instead of BUNDLE/<format>/ (where --backend looks for the export): a new or empty folder, "
        "or an earlier export, which is replaced",
    )


def run(args: argparse.Namespace) -> int:
    from inspection.export import MANIFEST_FILE, export_bundle
    from inspection.models.checkpoint import CheckpointError

    try:
        folder = export_bundle(args.bundle, args.format, args.out)
    except (CheckpointError, ValueError, OSError) as e:  # BundleError and BackendError too
        print(f"inspection export: {e}", file=sys.stderr)
        return 2
    version = json.loads((folder / MANIFEST_FILE).read_text())["bundle"]
    print(f"exported bundle {version} ({args.bundle}) to {args.format} in {folder}")
    return 0
