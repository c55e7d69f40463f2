"""Proof: a defect kind bundle v1 never saw, labelled through the API, exported, retrained and promoted.

The whole loop, as a plant would run it, on generated data:

1. v1 is the shipped bundle (synthetic castings, six defect kinds); ``scratch`` is a kind it never saw.
   A test set of at least 300 photos per kind (and as many ok parts) measures every bundle.
2. A station posts parts to ``inspection serve``; an engineer labels them through
   ``POST /v1/inspections/{id}/label``: first a golden batch (ok, old kinds, scratch), frozen by
   ``inspection dataset export --golden-add``; then 50 scratch parts (and 50 ok) for training.
3. ``inspection dataset export`` again (the golden set stays as it was) and ``inspection retrain --from v1
   --data EXPORT --replay OLD`` (OLD: v1's own training data, regenerated from its recipe).
4. ``inspection models promote`` refuses a deliberately degraded candidate, then promotes v2 while an
   ``inspection load`` run keeps posting; the server picks v2 up without a restart.
5. v2 is measured on the test set: recall on scratch, and every old kind against v1.

Usage: python docs/proofs/new_defect_kind.py [--work /tmp/new-kind] [--per-kind 300]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import httpx
import numpy as np

from inspection.bundle import BUNDLES_DIR, PIPELINE_FILE, load_bundle, write_live
from inspection.data import DEFECT_KINDS, synth_casting, write_synthetic_dataset
from inspection.loadtest import run_load, spawn_server
from inspection.pipeline import InspectionPipeline

NEW_KIND = "scratch"
CLI = [sys.executable, "-m", "inspection.cli"]


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(argv[2:] if argv[:2] == CLI[:2] else argv), flush=True)
    done = subprocess.run(argv, text=True, capture_output=True)
    print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", flush=True)
    if check and done.returncode != 0:
        raise SystemExit(f"failed with exit code {done.returncode}")
    return done


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def parts(kinds: dict[str, int], seed: int) -> list[tuple[bytes, str]]:
    """Generated photos: ``{kind or "ok": count}`` -> [(PNG bytes, kind or "ok")]."""
    rng = np.random.default_rng(seed)
    return [
        (png(synth_casting(rng, 160, None if kind == "ok" else kind)), kind)
        for kind, n in kinds.items()
        for _ in range(n)
    ]


def test_set(root: Path, per_kind: int) -> Path:
    """At least ``per_kind`` photos of every kind, old and new, and of ok parts, in ``test/<class>/``."""
    kinds = (*DEFECT_KINDS, NEW_KIND)
    n = int(per_kind * 2 * len(kinds) * 1.25)  # half ok, the rest spread over the kinds, with a margin
    if not root.is_dir():
        write_synthetic_dataset(root, n_train=0, n_test=n, kinds=kinds, kind_folders=True, seed=101)
    counts = {d.name: len(list(d.iterdir())) for d in sorted((root / "test").iterdir())}
    short = {c: k for c, k in counts.items() if k < per_kind}
    if short:
        raise SystemExit(f"the test set has fewer than {per_kind} photos of {short}; raise n")
    print("test set:", counts)
    return root


def judge(models: Path, data: Path) -> dict[str, float]:
    """Recall per defect kind and specificity on ok parts, on clean photos, through the whole pipeline."""
    pipe = InspectionPipeline.from_dir(models)
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for folder in sorted((data / "test").iterdir()):
        paths = sorted(folder.iterdir())
        for i in range(0, len(paths), 64):
            for r in pipe.inspect_batch([str(p) for p in paths[i : i + 64]]):
                flagged = getattr(r, "verdict", "") in ("defective", "review")
                hits[folder.name] += flagged if folder.name.startswith("def_") else not flagged
                totals[folder.name] += 1
    pipe.close()
    return {name: round(hits[name] / totals[name], 4) for name in totals}


def post_and_label(server, photos: list[tuple[bytes, str]], prefix: str) -> list[int]:
    """Each photo posted by the station, then labelled by the engineer with its true verdict and kind."""
    ids = []
    station = {"X-API-Key": server.api_key}
    engineer = {"X-API-Key": server.engineer_key}
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for i, (photo, kind) in enumerate(photos):
            resp = http.post(
                "/v1/inspections",
                headers=station,
                data={"station_id": server.station, "part_id": f"{prefix}-{i:04d}"},
                files={"image": ("part.png", photo, "image/png")},
            )
            resp.raise_for_status()
            record_id = resp.json()["id"]
            label = {"verdict": "ok"} if kind == "ok" else {"verdict": "defective", "kind": kind}
            http.post(f"/v1/inspections/{record_id}/label", headers=engineer, json=label).raise_for_status()
            ids.append(record_id)
    return ids


def degraded_copy(bundle: Path, dest: Path) -> Path:
    """A candidate that misses defects on purpose: v2 with its threshold pushed to 0.999."""
    shutil.copytree(bundle, dest)
    spec = json.loads((dest / PIPELINE_FILE).read_text())
    spec["version"] = dest.name
    spec["policy"]["threshold"] = 0.999
    (dest / PIPELINE_FILE).write_text(json.dumps(spec, indent=2))
    return dest


def wait_for_bundle(url: str, version: str, timeout_s: float) -> float | None:
    """Seconds until ``/healthz`` names ``version`` as the bundle in use (None: not within ``timeout_s``)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if httpx.get(f"{url}/healthz", timeout=10).json().get("bundle") == version:
            return round(time.monotonic() - t0, 1)
        time.sleep(0.5)
    return None


def promote_under_load(server, root: Path, candidate: Path, golden: Path, pickup_s: float) -> dict:
    """Promote while clients keep posting, until the server has picked the new bundle up; every answer counts."""
    statuses: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            report = run_load(server.url, server.api_key, server.station, clients=4, requests=10)
            statuses.update(report.status_counts)
            statuses["transport_errors"] += report.transport_errors

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(3)
    decision = run([*CLI, "models", "promote", str(candidate), "--models", str(root), "--golden", str(golden),
                    "--db", server.db_url, "--by", "proof", "--quiet"], check=False)  # fmt: skip
    picked_up = wait_for_bundle(server.url, candidate.name, timeout_s=180)  # polls LIVE, loads, swaps
    time.sleep(pickup_s + 2)  # and a little more load on the new bundle
    stop.set()
    thread.join()
    with httpx.Client(base_url=server.url, timeout=120) as http:
        resp = http.post(
            "/v1/inspections",
            headers={"X-API-Key": server.api_key},
            data={"station_id": server.station, "part_id": "after-switch"},
            files={"image": ("part.png", parts({"ok": 1}, 7)[0][0], "image/png")},
        )
    return {
        "picked_up_after_s": picked_up,
        "statuses": dict(statuses),
        "promote_exit": decision.returncode,
        "bundle_after": resp.json().get("model_versions", {}).get("bundle"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/new-kind"), help="scratch folder")
    parser.add_argument("--per-kind", type=int, default=300, help="test photos per kind (at least)")
    parser.add_argument("--pickup-s", type=float, default=2.0, help="the server's LIVE polling interval")
    args = parser.parse_args()
    work = args.work.resolve()
    shutil.rmtree(work / "models", ignore_errors=True)
    shutil.rmtree(work / "server", ignore_errors=True)
    for d in ("export", "candidates", "old"):
        shutil.rmtree(work / d, ignore_errors=True)
    root = work / "models"
    v1 = load_bundle()
    shutil.copytree(v1.path, root / BUNDLES_DIR / v1.version)
    write_live(root, v1.version)
    tests = test_set(work / "test", args.per_kind)
    result: dict = {"v1": {"version": v1.version, "test": judge(root, tests)}}
    print("v1 on the test set:", result["v1"]["test"], flush=True)

    with spawn_server(work / "server", models=root, extra_args=["--pickup-s", str(args.pickup_s)]) as server:
        golden = {"ok": 30, **{k: 5 for k in DEFECT_KINDS}, NEW_KIND: 20}
        post_and_label(server, parts(golden, seed=202), "golden")
        export = work / "export"
        photos = str(work / "server" / "photos")
        export_cmd = [
            *CLI,
            "dataset",
            "export",
            "--db",
            server.db_url,
            "--photos",
            photos,
            "--out",
            str(export),
        ]
        run([*export_cmd, "--golden-add", str(sum(golden.values())), "--quiet"])
        post_and_label(server, parts({NEW_KIND: 50, "ok": 50}, seed=303), "train")
        run([*export_cmd, "--quiet"])
        result["export"] = json.loads((export / "dataset.json").read_text())["counts"]
        # The live defect model's training photos again (its card names the generator's settings), in a folder
        # per kind: the generator knows each photo's kind, so the fine-tune learns the kinds and validation
        # measures every old kind's recall (val_recall_<kind>).
        made = v1.card["models"]["defect"]["training_data"]["dataset"]
        old = write_synthetic_dataset(
            work / "old",
            n_train=made["n_train"],
            n_test=0,
            size=made["size"],
            seed=made["seed"],
            kind_folders=True,
        )
        candidate = work / "candidates" / f"{v1.version}-scratch"  # v2: v1 that learned scratch
        t0 = time.monotonic()
        run([*CLI, "retrain", "--from", str(root), "--data", str(export), "--replay", str(old),
             "--out", str(candidate), "--quiet", "--threads", "2"])  # fmt: skip
        result["retrain_seconds"] = round(time.monotonic() - t0, 1)
        bad = degraded_copy(candidate, work / "candidates" / f"{candidate.name}-degraded")
        refused = run([*CLI, "models", "promote", str(bad), "--models", str(root), "--golden", str(export),
                       "--db", server.db_url, "--by", "proof", "--quiet"], check=False)  # fmt: skip
        result["degraded_promote_exit"] = refused.returncode
        result["switch"] = promote_under_load(server, root, candidate, export, args.pickup_s)
    result["v2"] = {"version": candidate.name, "test": judge(root / BUNDLES_DIR / candidate.name, tests)}
    drops = {
        k: round(100 * (result["v1"]["test"][k] - result["v2"]["test"][k]), 2)
        for k in result["v1"]["test"]
        if k != f"def_{NEW_KIND}"
    }
    result["old_kind_drop_points"] = drops
    (work / "report.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    answered = result["switch"]["statuses"]
    ok = (
        result["v2"]["test"][f"def_{NEW_KIND}"] >= 0.95
        and max(v for k, v in drops.items() if k.startswith("def_")) <= 2.0
        and result["degraded_promote_exit"] == 1
        and result["switch"]["promote_exit"] == 0
        and not answered.get("transport_errors")
        and set(answered) <= {"201", "200", "transport_errors"}
        and result["switch"]["bundle_after"] == candidate.name
    )
    print("PROOF", "HOLDS" if ok else "FAILS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
