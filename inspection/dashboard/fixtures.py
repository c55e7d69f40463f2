"""Synthetic dashboard data: evaluation reports, model checkpoints' metadata and station records.

Used by the tests, the screenshots and the benchmark. Every photo is drawn by the procedural casting
generator (:func:`inspection.data.synth_casting`); no real photo is copied. Numbers are plausible, seeded
and shaped exactly like the real sources (``docs/report-format.md``, :mod:`inspection.store.models`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from sqlalchemy import Engine, Table, create_engine, insert

from inspection import NOISE_TYPES
from inspection.dashboard.images import spectrum_image
from inspection.data import synth_casting
from inspection.noise import add_noise
from inspection.store.models import Base, Inspection, ModelVersion

NOISY = ("gaussian", "salt_pepper", "periodic")
LEVELS = ("low", "mid", "high")
FIXTURE_END = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STATIONS = ("line-1", "line-2", "line-3", "line-4")
DRIFT_STATION = "line-3"
# A new camera at this station since OOD_SINCE before the end: most of its photos lie beyond the models' range.
OOD_STATION = "line-4"
OOD_SINCE = timedelta(days=4)
OOD_SHARE_BEFORE, OOD_SHARE_AFTER = 0.01, 0.9  # the OOD threshold flags ~1% of photos like the training ones
MODEL_VERSIONS = {"noise": "noise-2026.11.1", "denoiser": "ae-2026.11.1", "defect": "defect-2026.11.2"}
BASE_MIX = {"clean": 0.70, "gaussian": 0.15, "salt_pepper": 0.05, "periodic": 0.10}
DRIFT_MIX = {"clean": 0.40, "gaussian": 0.10, "salt_pepper": 0.05, "periodic": 0.45}
METHODS = {
    "gaussian": {"autoencoder": (30.5, 0.84), "median": (26.0, 0.70)},
    "salt_pepper": {"median": (36.0, 0.93), "autoencoder": (27.5, 0.78)},
    "periodic": {"notch": (33.0, 0.90), "autoencoder": (26.5, 0.82)},
}
LEVEL_DROP = {"low": 1.5, "mid": 0.0, "high": -2.5}
# (task folder, version folder or None for meta.json directly in the task folder, architecture, metrics)
MODEL_ENTRIES: list[tuple[str, str | None, str, dict[str, float]]] = [
    ("noise", "noise-2026.10.1", "freq_vgg_tiny", {"accuracy": 0.962, "macro_f1": 0.961}),
    ("noise", "noise-2026.11.1", "freq_vgg_tiny", {"accuracy": 0.991, "macro_f1": 0.990}),
    ("denoiser", None, "unet_ae_small", {"psnr_gaussian": 30.4, "ssim_gaussian": 0.84}),
    ("defect", None, "defect_vgg_tiny", {"accuracy": 0.985, "sensitivity": 0.99, "specificity": 0.98}),
]


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def fixture_denoise(noisy: np.ndarray, noise_type: str) -> np.ndarray:
    """A stand-in for the routed denoiser, good enough for fixture galleries (no model needed)."""
    from inspection.denoise import DEFAULT_ROUTES, MODEL_FREE

    if noise_type in ("salt_pepper", "periodic"):
        return MODEL_FREE[DEFAULT_ROUTES[noise_type]]()(noisy)
    if noise_type == "gaussian":
        return cv2.fastNlMeansDenoising(noisy, None, h=25, templateWindowSize=7, searchWindowSize=21)
    return noisy


def _metrics(rng: np.random.Generator, acc: float, n: int) -> dict[str, Any]:
    sens = float(np.clip(acc + rng.normal(0, 0.01), 0, 1))
    spec = float(np.clip(2 * acc - sens, 0, 1))
    return {"accuracy": round(acc, 4), "sensitivity": round(sens, 4), "specificity": round(spec, 4),
            "f1": round(float(np.clip(acc - 0.005, 0, 1)), 4), "n": n}  # fmt: skip


def fixture_report(
    report_id: str, created: datetime, *, seed: int = 0, quality: float = 1.0
) -> dict[str, Any]:
    """A schema-1 report dict with seeded, plausible numbers; ``quality`` < 1 makes a weaker model.

    The routed gain per type is ``with - without``: a weaker run has a lower noisy accuracy after denoising.
    """
    rng = np.random.default_rng(seed)
    n = 120
    # one generator through the sections, in this order, so a seed gives the numbers it always gave
    noise_classifier = _fixture_noise_classifier(rng, quality)
    summary, samples = _fixture_denoise(rng, quality)
    defect, routed = _fixture_defect(rng, quality, n)
    best = {t: max(METHODS[t].items(), key=lambda kv: kv[1][0])[0] for t in NOISY}
    return {
        "schema_version": 1,
        "id": report_id,
        "created": created.isoformat(),
        "commit": hashlib.sha1(report_id.encode()).hexdigest()[:7],
        "dataset": {
            "name": "synthetic",
            "root": "(fixture)",
            "n_images": n,
            "sha256": hashlib.sha256(report_id.encode()).hexdigest(),
        },
        "protocol": {
            "name": "standard",
            "seed": seed,
            "levels": {"gaussian": [10, 50], "salt_pepper": [0.02, 0.2], "periodic": [20, 60]},
        },
        "models": {
            task: {"version": v, "architecture": a}
            for (task, v), a in zip(
                MODEL_VERSIONS.items(), ("freq_vgg_tiny", "unet_ae_small", "defect_vgg_tiny"), strict=True
            )
        },  # fmt: skip
        "noise_classifier": noise_classifier,
        "denoise": {"summary": summary, "samples": samples},
        "denoise_psnr": {
            t: next(s["psnr"] for s in summary if s["noise_type"] == t and s["method"] == best[t])
            for t in NOISY
        },
        "defect": defect,
        "defect_accuracy": {
            **{c: v["accuracy"] for c, v in defect["conditions"].items()},
            "noisy_routed_per_type": routed,
        },
        "defect_erasure": 0.01,
        "reference": {
            "source": "arXiv 2404.10664",
            "model": "VGG16",
            "noisy_before": 0.946,
            "noisy_after": 0.970,
        },
        "calibration": fixture_calibration(seed),
        "gallery": [_gallery_entry(t) for t in NOISE_TYPES],
    }


def _fixture_noise_classifier(rng: np.random.Generator, quality: float) -> dict[str, Any]:
    """The report's ``noise_classifier`` section: recall, confusion and accuracy by level."""
    recall = {
        t: round(float(np.clip(1 - (1 - 0.985) / quality - rng.uniform(0, 0.01), 0, 1)), 3)
        for t in NOISE_TYPES
    }
    matrix = []
    for i, t in enumerate(NOISE_TYPES):
        hits = round(recall[t] * 30)
        row = [0, 0, 0, 0]
        row[i] = hits
        row[(i + 1 + int(rng.integers(0, 3))) % 4] += 30 - hits
        matrix.append(row)
    # Weak noise is the hard case for the classifier: accuracy climbs with the level, differently per type.
    low = {"gaussian": 0.90, "salt_pepper": 0.97, "periodic": 0.86}
    by_level = {
        t: {
            "low": round(low[t] * quality, 3),
            "mid": round(min(1.0, (low[t] + 0.6 * (1 - low[t])) * quality), 3),
            "high": round(min(1.0, (1.0 - 0.1 * (1 - low[t])) * quality), 3),
        }
        for t in NOISY
    }
    return {
        "accuracy": round(float(np.mean(list(recall.values()))), 4),
        "recall": recall,
        "confusion": {"labels": list(NOISE_TYPES), "matrix": matrix},
        "accuracy_by_level": by_level,
    }


def _fixture_denoise(rng: np.random.Generator, quality: float) -> tuple[list[dict], list[dict]]:
    """The report's denoising ``summary`` (one row per type and method) and per-photo ``samples``."""
    samples, summary = [], []
    for t, methods in METHODS.items():
        for method, (psnr, ssim) in methods.items():
            ps, ss = [], []
            for lvl in LEVELS:
                for _ in range(12):
                    p = float(psnr * (0.97 + 0.03 * quality) + LEVEL_DROP[lvl] + rng.normal(0, 1.2))
                    s = float(np.clip(ssim + LEVEL_DROP[lvl] / 40 + rng.normal(0, 0.03), 0, 1))
                    ps.append(p)
                    ss.append(s)
                    samples.append({"noise_type": t, "method": method, "level_bin": lvl,
                                    "psnr": round(p, 2), "ssim": round(s, 3)})  # fmt: skip
            summary.append({"noise_type": t, "method": method, "psnr": round(float(np.mean(ps)), 2),
                            "ssim": round(float(np.mean(ss)), 3), "ms_per_image": round(float(rng.uniform(1, 12)), 2),
                            "n": len(ps)})  # fmt: skip
    return summary, samples


def _fixture_defect(
    rng: np.random.Generator, quality: float, n: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """The report's ``defect`` section and the routed accuracy per noisy type."""
    without = {"gaussian": 0.71, "salt_pepper": 0.64, "periodic": 0.80}
    routed = {t: round(min(0.99, 0.975 * quality + rng.uniform(-0.01, 0.01)), 4) for t in NOISY}
    noisy_none, noisy_routed = float(np.mean(list(without.values()))), float(np.mean(list(routed.values())))
    conditions = {
        "clean": _metrics(rng, 0.985, n),
        "noisy_none": _metrics(rng, noisy_none, 3 * n),
        "noisy_routed": _metrics(rng, noisy_routed, 3 * n),
        "noisy_oracle": _metrics(rng, min(0.99, noisy_routed + 0.005), 3 * n),
    }
    per_type = {
        "noisy_none": {t: _metrics(rng, without[t], n) for t in NOISY},
        "noisy_routed": {t: _metrics(rng, routed[t], n) for t in NOISY},
    }
    by_level = {cond: {t: {lvl: round(per_type[cond][t]["accuracy"] + LEVEL_DROP[lvl] / 50, 3) for lvl in LEVELS}
                       for t in NOISY} for cond in per_type}  # fmt: skip
    return {"conditions": conditions, "per_type": per_type, "by_level": by_level}, routed


def _gallery_entry(noise_type: str) -> dict[str, Any]:
    """One gallery row, pointing at the PNGs :func:`write_gallery` writes."""
    names = ("noisy", "denoised", "clean", "spectrum", "heat")
    return {
        "noise_type": noise_type,
        **{k: f"gallery/{noise_type}_{k}.png" for k in names},
        "p_defective": 0.9,
    }


def fixture_calibration(seed: int, n: int = 480) -> dict[str, Any]:
    """Reliability diagrams of well-calibrated seeded probabilities (each outcome drawn with its probability)."""
    from inspection.metrics import reliability

    rng = np.random.default_rng(seed + 7)
    confidence = rng.beta(12, 1, n)
    p_defective = np.concatenate([rng.beta(1, 12, n // 2), rng.beta(12, 1, n - n // 2)])
    return {
        "noise": reliability(confidence, rng.random(n) < confidence),
        "defect": reliability(p_defective, rng.random(n) < p_defective),
    }


def write_gallery(folder: Path, *, seed: int = 0, size: int = 256) -> None:
    """Write ``<type>_{clean,noisy,denoised,spectrum}.png`` for each noise type into ``folder``."""
    rng = np.random.default_rng(seed)
    levels = {"clean": None, "gaussian": 25.0, "salt_pepper": 0.08, "periodic": 40.0}
    for t in NOISE_TYPES:
        clean = synth_casting(rng, size=size, defect="blowhole")
        noisy = clean if t == "clean" else add_noise(clean, t, levels[t], rng=rng)
        _write_png(folder / f"{t}_clean.png", clean)
        _write_png(folder / f"{t}_noisy.png", noisy)
        _write_png(folder / f"{t}_denoised.png", fixture_denoise(noisy, t))
        _write_png(folder / f"{t}_spectrum.png", spectrum_image(noisy))
        _write_png(folder / f"{t}_heat.png", fixture_heat_map(fixture_denoise(noisy, t)))


def fixture_heat_map(gray: np.ndarray) -> np.ndarray:
    """A stand-in for a heat map (no model here): a jet-coloured blob on the photo's darkest spot, BGR."""
    spot = np.unravel_index(int(np.argmin(cv2.GaussianBlur(gray, (0, 0), 4))), gray.shape)
    rows, cols = np.indices(gray.shape)
    heat = np.exp(-((rows - spot[0]) ** 2 + (cols - spot[1]) ** 2) / (2 * (gray.shape[0] / 10) ** 2))
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET).astype(np.float32)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(np.float32)
    alpha = 0.45 * heat[..., None]
    return np.clip(base * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)


def write_report_markdown(report: dict[str, Any], path: Path) -> None:
    """A minimal ``report.md`` with the headline numbers, as the real writer produces."""
    lines = [f"# Evaluation {report['id']}", "", "| condition | accuracy |", "|---|---|"]
    lines += [f"| {c} | {v['accuracy']:.3f} |" for c, v in report["defect"]["conditions"].items()]
    path.write_text("\n".join(lines) + "\n")


def write_fixture_report(
    reports_dir: str | Path, report_id: str, created: datetime, *, seed: int = 0, quality: float = 1.0
) -> Path:
    """Write one report folder (report.json, report.md, gallery PNGs) and return its path."""
    folder = Path(reports_dir) / report_id
    (folder / "gallery").mkdir(parents=True, exist_ok=True)
    report = fixture_report(report_id, created, seed=seed, quality=quality)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_report_markdown(report, folder / "report.md")
    write_gallery(folder / "gallery", seed=seed)
    return folder


def write_fixture_reports(reports_dir: str | Path) -> list[Path]:
    """Two reports, an earlier weaker run and the latest one, so comparisons have something to show."""
    return [
        write_fixture_report(reports_dir, "20261101T080000Z-synthetic", datetime(2026, 11, 1, 8, tzinfo=UTC), seed=1, quality=0.97),
        write_fixture_report(reports_dir, "20261124T080000Z-synthetic", datetime(2026, 11, 24, 8, tzinfo=UTC), seed=2, quality=1.0),
    ]  # fmt: skip


def write_fixture_models(models_dir: str | Path) -> Path:
    """Checkpoint folders with ``meta.json`` only (no weights): both layouts the pipeline accepts."""
    root = Path(models_dir)
    for task, version, arch, metrics in MODEL_ENTRIES:
        folder = root / task / version if version else root / task
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": 1,
            "version": version or MODEL_VERSIONS[task],
            "task": task,
            "architecture": arch,
            "metrics": metrics,
            "class_names": list(NOISE_TYPES)
            if task == "noise"
            else (["ok", "defective"] if task == "defect" else []),
            "threshold": 0.5 if task == "defect" else None,
            "training_data": {"name": "synthetic", "n_images": 2000},
            "versions": {"inspection": "0.1.0"},
            "created": "2026-11-20T10:00:00+00:00",
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root


def write_fixture_photos(
    photos_dir: str | Path, *, per_type: int = 3, size: int = 192, seed: int = 0
) -> dict[str, list[Path]]:
    """A few synthetic part photos per noise type, for records to point at."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Path]] = {}
    levels = {"clean": None, "gaussian": 20.0, "salt_pepper": 0.05, "periodic": 35.0}
    for t in NOISE_TYPES:
        for i in range(per_type):
            photo = synth_casting(rng, size=size, defect="crack" if i % 3 == 0 else None)
            if t != "clean":
                photo = add_noise(photo, t, levels[t], rng=rng)
            path = Path(photos_dir) / f"{t}_{i}.png"
            _write_png(path, photo)
            out.setdefault(t, []).append(path)
    return out


def store_fixture_photos(photos: dict[str, list[Path]], store_dir: str | Path) -> dict[str, str]:
    """Keep the fixture photos in a local photo store, as the service does; returns each path's store key."""
    from inspection.store.photos import LocalPhotoStore

    store = LocalPhotoStore(store_dir)
    return {str(path): store.put(path.read_bytes()) for paths in photos.values() for path in paths}


def create_schema(url: str) -> Engine:
    """Create the store's tables, through the store's migrations when they are available."""
    try:
        from inspection.store import database

        engine = database.make_engine(url)
        database.upgrade(engine)
        return engine
    except ImportError:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        return engine


def _mix(station: str, t: np.ndarray, end: datetime, drift: bool) -> np.ndarray:
    """Per-record probabilities over NOISE_TYPES; the drift station turns periodic in the last day."""
    base = np.array([BASE_MIX[k] for k in NOISE_TYPES])
    probs = np.tile(base, (len(t), 1))
    if drift:
        recent = t >= (end - timedelta(hours=20)).timestamp()
        probs[recent] = np.array([DRIFT_MIX[k] for k in NOISE_TYPES])
    return probs


def fill_fixture_db(
    url: str,
    n_records: int,
    *,
    stations: tuple[str, ...] = STATIONS,
    days: float = 14.0,
    end: datetime = FIXTURE_END,
    seed: int = 0,
    photos: dict[str, list[Path]] | None = None,
    photo_keys: dict[str, str] | None = None,
    drift_station: str | None = DRIFT_STATION,
    ood_station: str | None = OOD_STATION,
    chunk: int = 20_000,
) -> int:
    """Bulk-insert ``n_records`` synthetic inspections spread over ``days`` up to ``end``; returns the count.

    Stations share one baseline noise mix; ``drift_station`` sees periodic noise rise and the noise
    classifier's confidence fall in its last 20 hours (a grounding fault), which the Stations page must flag.
    Every scored record has an out-of-distribution flag and score: about 1% of photos are flagged, except at
    ``ood_station``, where a new camera puts 90% of them beyond the models' range in its last four days, so the
    Stations page warns about it.
    About 1% of records are rejected frames. Model versions go into ``model_versions`` too. Records point at
    ``photos`` by path and, where ``photo_keys`` has the path, by photo-store key too.
    """
    engine = create_schema(url)
    draw = _draw_records(n_records, stations, days, end, seed, drift_station, ood_station)
    table = cast(Table, Inspection.__table__)
    with engine.begin() as conn:
        for lo in range(0, n_records, chunk):
            rows = [
                _record_row(draw, i, stations, seed, photos, photo_keys)
                for i in range(lo, min(lo + chunk, n_records))
            ]
            conn.execute(insert(table), _normalise(rows))
        in_use = {
            task: (arch, metrics)
            for task, version, arch, metrics in MODEL_ENTRIES
            if (version or MODEL_VERSIONS[task]) == MODEL_VERSIONS[task]
        }
        conn.execute(
            insert(cast(Table, ModelVersion.__table__)),
            [
                {"task": task, "version": version, "in_use": True, "created_at": end, "updated_at": end,
                 "meta": {"architecture": in_use[task][0], "metrics": in_use[task][1]}}
                for task, version in MODEL_VERSIONS.items()
            ],
        )  # fmt: skip
    engine.dispose()
    return n_records


def _draw_records(
    n_records: int,
    stations: tuple[str, ...],
    days: float,
    end: datetime,
    seed: int,
    drift_station: str | None,
    ood_station: str | None,
) -> dict[str, np.ndarray]:
    """Every record's seeded fields, as arrays: time, station, rejection, noise type and confidence, defect
    probability, out-of-distribution flag and score (see :func:`fill_fixture_db`)."""
    rng = np.random.default_rng(seed)
    start_ts, end_ts = (end - timedelta(days=days)).timestamp(), end.timestamp()
    ts = np.sort(rng.uniform(start_ts, end_ts, n_records))
    st_idx = rng.integers(0, len(stations), n_records)
    rejected = rng.random(n_records) < 0.01
    types = np.empty(n_records, dtype=object)
    conf = np.empty(n_records)
    for k, station in enumerate(stations):
        sel = st_idx == k
        probs = _mix(station, ts[sel], end, drift=station == drift_station)
        u = rng.random(sel.sum())[:, None]
        choice = (u > np.cumsum(probs, axis=1)).sum(axis=1)
        types[sel] = np.array(NOISE_TYPES, dtype=object)[np.minimum(choice, len(NOISE_TYPES) - 1)]
        mean_conf = np.full(sel.sum(), 0.95)
        if station == drift_station:
            mean_conf[ts[sel] >= (end - timedelta(hours=20)).timestamp()] = 0.78
        conf[sel] = np.clip(mean_conf + rng.normal(0, 0.04, sel.sum()), 0.3, 0.999)
    defect_rate = np.array([0.08, 0.12, 0.10, 0.06])[st_idx % 4]
    defect_p = np.where(
        rng.random(n_records) < defect_rate,
        rng.uniform(0.55, 0.99, n_records),
        rng.uniform(0.01, 0.45, n_records),
    )
    # Drawn from a generator of its own, so the other fields keep the values they had before the flag existed.
    ood_rng = np.random.default_rng([seed, 5])
    new_camera = (st_idx == (stations.index(ood_station) if ood_station in stations else -1)) & (
        ts >= (end - OOD_SINCE).timestamp()
    )
    ood = ood_rng.random(n_records) < np.where(new_camera, OOD_SHARE_AFTER, OOD_SHARE_BEFORE)
    # Distance over the threshold: in range mostly well under 1, out of range from just over 1 to several.
    ood_score = np.where(ood, 1.0 + ood_rng.lognormal(0.0, 0.8, n_records), ood_rng.beta(2.0, 5.0, n_records))
    return {"ts": ts, "station": st_idx, "rejected": rejected, "type": types, "conf": conf,
            "defect_p": defect_p, "ood": ood, "ood_score": ood_score}  # fmt: skip


# inspection.denoise.DEFAULT_ROUTES, without importing torch into the dashboard
ROUTES = {"clean": "identity", "gaussian": "autoencoder", "salt_pepper": "median", "periodic": "notch"}


def _record_row(
    draw: dict[str, np.ndarray],
    i: int,
    stations: tuple[str, ...],
    seed: int,
    photos: dict[str, list[Path]] | None,
    photo_keys: dict[str, str] | None,
) -> dict[str, Any]:
    """Record ``i`` of :func:`_draw_records`'s draw as an ``inspections`` row: rejected, or scored."""
    st, nt, conf = int(draw["station"][i]), str(draw["type"][i]), float(draw["conf"][i])
    path = photos[nt][i % len(photos[nt])] if photos else None
    row: dict[str, Any] = {
        "created_at": datetime.fromtimestamp(float(draw["ts"][i]), tz=UTC),
        "station_id": stations[st],
        "part_id": f"P{st + 1}-{i:07d}",
        "source": "api",
        "dedup_key": f"{seed:08x}{i:056x}",
        "image_sha256": hashlib.sha256(f"{seed}-{i}".encode()).hexdigest(),
        "image_path": str(path) if path else None,
        "image_key": (photo_keys or {}).get(str(path)) if path else None,
        "conversion": "gray8",
        "height": 192,
        "width": 192,
    }
    if draw["rejected"][i]:
        row.update(
            status="rejected", reason="too_small", message="image is 20x20; at least 32x32 pixels are needed"
        )
        return row
    rest = (1.0 - conf) / 3
    defect_p = float(draw["defect_p"][i])
    row.update(
        status="ok",
        noise_type=nt,
        noise_probability=conf,
        noise_probabilities={k: round(conf if k == nt else rest, 4) for k in NOISE_TYPES},
        denoiser=ROUTES[nt],
        safe_path=bool(conf < 0.5),
        defect_probability=defect_p,
        threshold=0.5,
        verdict="defective" if defect_p >= 0.5 else "ok",
        model_versions=dict(MODEL_VERSIONS),
        timings_ms={"total": 12.0},
        latency_ms=12.0,
        ood=bool(draw["ood"][i]),
        ood_score=round(float(draw["ood_score"][i]), 4),
    )
    return row


def _normalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every row the same keys, as a single executemany needs."""
    keys: set[str] = set().union(*(r.keys() for r in rows))
    return [{k: r.get(k) for k in keys} for r in rows]


def write_fixture_all(root: str | Path, *, n_records: int = 3000) -> dict[str, str]:
    """Reports, models, photos and a records database under ``root``; returns the env vars to point at them."""
    root = Path(root)
    write_fixture_reports(root / "reports")
    write_fixture_models(root / "models")
    photos = write_fixture_photos(root / "photos")
    keys = store_fixture_photos(photos, root / "photo-store")
    db = root / "records.db"
    fill_fixture_db(f"sqlite:///{db}", n_records, photos=photos, photo_keys=keys)
    return {
        "INSPECTION_REPORTS": str(root / "reports"),
        "INSPECTION_DB": f"sqlite:///{db}",
        "INSPECTION_MODELS": str(root / "models"),
        "INSPECTION_PHOTOS": str(root / "photo-store"),
    }
