"""``inspection explain``: does the defect model's heat map point at the defect? The pointing game on generated
photos with known defect masks (:mod:`inspection.explain`)."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

HELP = (
    "Check the defect model's heat maps where the truth is known: on photos from `inspection synth --masks`, the "
    "share of correctly flagged defective photos whose heat-map maximum lies within 8 px of the drawn defect."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, required=True, help="dataset root written by `inspection synth --masks`"
    )
    parser.add_argument(
        "--models",
        default="",
        help="bundle or models root whose defect model to check (default: the shipped models)",
    )
    parser.add_argument("--split", default="test", help="which split of --data to use (default: test)")
    parser.add_argument("--batch-size", type=int, default=32, help="photos per forward pass (default: 32)")
    parser.add_argument(
        "--results",
        type=Path,
        help="merge the numbers into this results file's 'explain' section (e.g. docs/results.json); its other "
        "sections are kept",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def synth_command(root: Path) -> str | None:
    """The ``inspection synth`` command that wrote ``root``, from its ``dataset.json``; None when it says nothing."""
    from inspection.data import read_dataset_manifest

    m = read_dataset_manifest(root)
    if not m or not m.get("synthetic") or "seed" not in m:
        return None
    words = ["inspection", "synth", "--out", str(root), "--n-train", str(m.get("n_train")), "--n-test"]
    words += [str(m.get("n_test")), "--size", str(m.get("size")), "--seed", str(m.get("seed"))]
    return shlex.join(words) + (" --masks" if m.get("masks") else "")


def run(args: argparse.Namespace) -> int:
    from inspection.bundle import load_bundle
    from inspection.evaluate import git_commit
    from inspection.explain import DILATION_PX, Explainer, play_pointing_game
    from inspection.pipeline import InspectionPipeline
    from inspection.summary import merge_sections

    bundle = load_bundle(args.models or None)
    pipe = InspectionPipeline.from_bundle(bundle)
    defect = pipe.defect
    chosen = Explainer.from_checkpoint(defect)
    explainers = {
        "layercam": chosen,
        "last_block_gradcam": Explainer.from_checkpoint(defect, method="gradcam", last_block=True),
        "last_block_layercam": Explainer.from_checkpoint(defect, last_block=True),
    }
    try:
        games = play_pointing_game(
            pipe, args.data, split=args.split, batch_size=args.batch_size, progress=not args.quiet,
            explainers=explainers,
        )  # fmt: skip
    except FileNotFoundError as e:
        raise SystemExit(f"inspection explain: {e}") from e
    finally:
        pipe.close()
    block = next(name for name, m in defect.model.named_modules() if m is chosen.block)
    game = games["layercam"]
    commands = [
        c
        for c in (synth_command(args.data), shlex.join(["inspection", *getattr(args, "_argv", ["explain"])]))
        if c
    ]
    out: dict[str, Any] = {
        "commit": git_commit(),
        "bundle": bundle.version,
        "defect_model": defect.version,
        "architecture": defect.meta.get("architecture"),
        "method": "layercam",
        "block": block,
        "data": {"root": str(args.data), "split": args.split, "dataset": _dataset(args.data)},
        "pointing_game": game.to_dict(),
        "pointing_game_hit_rate": game.hit_rate,
        "n": game.flagged,
        "last_block": {name: games[name].to_dict() for name in ("last_block_gradcam", "last_block_layercam")},
        "commands": commands,
    }
    print_games(out, games, DILATION_PX)
    if args.results:
        merge_sections(args.results, {"explain": out})
    return 0


def print_games(out: dict[str, Any], games: dict[str, Any], dilation_px: int) -> None:
    """The chosen method's pointing game, per defect kind, the last-block methods beside it, and a JSON line."""
    game = games["layercam"]
    rate = "n/a" if game.hit_rate is None else f"{game.hit_rate:.1%}"
    print(
        f"pointing game ({out['bundle']}, LayerCAM on {out['block']}): {rate} of {game.flagged} correctly flagged "
        f"defective photos have the heat map's maximum within {dilation_px} px of the drawn defect "
        f"({game.defective} defective photos; {game.empty_masks} flagged with an empty mask left out)"
    )
    for name, per in out["pointing_game"]["by_kind"].items():
        print(
            f"  {name}: {per['hit_rate']:.1%} of {per['n']}"
            if per["hit_rate"] is not None
            else f"  {name}: -"
        )
    for name in ("last_block_gradcam", "last_block_layercam"):
        other = games[name].hit_rate
        print(f"  for comparison, {name.replace('_', ' ')}: " + ("n/a" if other is None else f"{other:.1%}"))
    print(json.dumps({"pointing_game_hit_rate": game.hit_rate, "n": game.flagged}))


def _dataset(root: Path) -> dict[str, Any] | None:
    from inspection.data import read_dataset_manifest

    m = read_dataset_manifest(root)
    if not m:
        return None
    keys = ("synthetic", "generator", "seed", "size", "n_train", "n_test", "kinds", "products", "masks")
    return {k: m.get(k) for k in keys}
