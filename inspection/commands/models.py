"""``inspection models create|list|show|fit-ood|promote|rollback``: model bundles and which one is live.

``promote`` gates a candidate against the live bundle on the golden set (:mod:`inspection.promotion`) and exits 1
with the comparison table when it is refused; ``rollback`` points ``LIVE`` back. Both record their decision in
the records store. Exit codes: 0 done, 1 refused, 2 bad input (a folder that is no bundle, a store that cannot
be opened, unless ``--without-store``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspection.promotion import Promotion
    from inspection.store import RecordStore

HELP = (
    "Model bundles: create one from checkpoints, list and show them, promote one through the gate, roll back."
)
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


MODELS_HELP = "the models root (bundles/ and LIVE); default: $INSPECTION_MODELS or the shipped models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_create(sub)
    _add_list_and_show(sub)
    _add_promote(sub)
    _add_fit_ood(sub)
    _add_rollback(sub)


def _add_list_and_show(sub: Any) -> None:
    listing = sub.add_parser("list", help="list the bundles of a models root, the live one marked")
    listing.add_argument("--models", default="", metavar="ROOT", help=MODELS_HELP)
    listing.set_defaults(_models_run=run_list)

    show = sub.add_parser("show", help="print a bundle's card and verdict policy")
    show.add_argument(
        "bundle", metavar="VERSION|DIR", help="a bundle folder, or a version under the models root"
    )
    show.add_argument("--models", default="", metavar="ROOT", help=MODELS_HELP)
    show.set_defaults(_models_run=run_show)


def _add_promote(sub: Any) -> None:
    promote = sub.add_parser(
        "promote",
        help="make a candidate bundle live if it does no worse than the live one on the golden set",
        description="Evaluate the candidate and the live bundle on the golden set under the noise protocol; "
        "refuse (exit 1) when accuracy, recall, any noise type's accuracy or any kind's recall drops by more "
        "than the live bundle's gate_tolerance.",
    )
    promote.add_argument(
        "candidate",
        metavar="CANDIDATE",
        help="the candidate bundle folder (or a version under the models root)",
    )
    promote.add_argument(
        "--models",
        required=True,
        metavar="ROOT",
        help="the models root whose LIVE bundle the candidate replaces",
    )
    promote.add_argument(
        "--golden",
        default="",
        metavar="DIR",
        help="the golden set: a dataset root with test/<class>/ (from `inspection dataset export`) or that "
        "test/ folder; required unless --force-first",
    )
    promote.add_argument("--seed", type=int, default=0, help="seed of the noise protocol (default: 0)")
    promote.add_argument(
        "--force-first",
        action="store_true",
        help="make the candidate live without a golden set; only while no bundle is live (a new models root)",
    )
    promote.add_argument(
        "--quiet", action="store_true", help="show no progress bar while the golden set is judged"
    )
    promote.add_argument(
        "--mlflow-uri",
        default="",
        metavar="URI",
        help="also log a promoted bundle with its golden metrics to this MLflow tracking URI (default: "
        "$MLFLOW_TRACKING_URI; 'off' turns it off)",
    )
    _add_record_flags(promote)
    promote.set_defaults(_models_run=run_promote)


def _add_fit_ood(sub: Any) -> None:
    fit = sub.add_parser(
        "fit-ood",
        help="fit a bundle's out-of-distribution check on its defect model's training photos",
        description="Measure the defect model's features and its input's statistics on the training photos "
        "(each clean and once noised and routed, as stations see them) and store them in the bundle "
        "(ood.safetensors): a photo beyond the 0.99 quantile of held-out ones is then flagged `ood`. Fit it "
        "before promoting the bundle.",
    )
    fit.add_argument("bundle", type=Path, metavar="BUNDLE_DIR", help="the bundle folder")
    fit.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="dataset roots whose train/ photos the defect model learned (with replayed ones)",
    )
    fit.add_argument(
        "--max-images", type=int, default=0, help="use at most this many photos, drawn at random (0 = all)"
    )
    fit.add_argument("--seed", type=int, default=0, help="seeds the photo draw, the noise and the hold-out")
    fit.add_argument(
        "--review-ood",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also set the bundle's policy: flagged photos get the `review` verdict (default: leave the policy)",
    )
    fit.add_argument(
        "--live-ok",
        action="store_true",
        help="refit even the live bundle, whose stations then flag photos by the new check without a promotion "
        "(default: refuse; make a new bundle with `inspection models create` and promote it)",
    )
    fit.set_defaults(_models_run=run_fit_ood)


def _add_rollback(sub: Any) -> None:
    rollback = sub.add_parser(
        "rollback",
        help="point LIVE back at the bundle live before (from the store's history, else the card's parent)",
    )
    rollback.add_argument(
        "--models", required=True, metavar="ROOT", help="the models root whose LIVE to move"
    )
    rollback.add_argument(
        "--to", default="", metavar="VERSION", help="the bundle version to make live instead"
    )
    rollback.add_argument("--note", default="", help="why the rollback was made, kept with the record")
    _add_record_flags(rollback)
    rollback.set_defaults(_models_run=run_rollback)


def _add_create(sub: Any) -> None:
    create = sub.add_parser(
        "create",
        help="make a bundle folder from noise, denoiser and defect checkpoints",
        description="Copy three checkpoints into one bundle folder with pipeline.json and a card; the folder's "
        "name is the bundle's version. It does not go live: use `inspection models promote`.",
    )
    create.add_argument(
        "--noise", type=Path, required=True, metavar="DIR", help="the noise classifier checkpoint"
    )
    create.add_argument(
        "--denoiser",
        type=Path,
        default=None,
        metavar="DIR",
        help="the autoencoder denoiser checkpoint (optional: without it, photos with Gaussian noise are judged "
        "undenoised)",
    )
    create.add_argument(
        "--defect", type=Path, required=True, metavar="DIR", help="the defect classifier checkpoint"
    )
    create.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="BUNDLE_DIR",
        help="the bundle folder to write (must not exist)",
    )
    create.add_argument(
        "--parent", default="", metavar="VERSION", help="the bundle this one was retrained from"
    )
    create.add_argument(
        "--data-card",
        type=Path,
        default=None,
        metavar="JSON",
        help="a JSON file describing the training data (such as the export's dataset.json), kept in the card",
    )
    create.add_argument(
        "--commands",
        type=Path,
        default=None,
        metavar="FILE",
        help="a script of the exact commands that made the models, kept in the card (default: this command)",
    )
    create.set_defaults(_models_run=run_create)


def _add_record_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default="",
        metavar="URL",
        help="SQLAlchemy URL of the records store the decision is recorded in (default: SQLite in the data dir)",
    )
    parser.add_argument(
        "--by",
        default="",
        metavar="NAME",
        help="the name the decision is recorded under (default: the login name)",
    )
    parser.add_argument(
        "--without-store",
        "--no-record",  # the flag's first name, kept for scripts: it never stopped an open store recording
        dest="without_store",
        action="store_true",
        help="decide even when no records store can be opened (the decision is then only in LIVE and, for a "
        "promotion, the card); an open store still records it. --no-record is the same flag's older name",
    )


def run(args: argparse.Namespace) -> int:
    return int(args._models_run(args))


def _fail(action: str, message: object) -> int:
    print(f"inspection models {action}: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _root(models: str) -> Path:
    from inspection.paths import default_models_dir

    return Path(models).expanduser() if models else default_models_dir()


# --- create, list, show ------------------------------------------------------------------------------------------


def run_create(args: argparse.Namespace) -> int:
    from inspection.bundle import write_bundle
    from inspection.models.checkpoint import CheckpointError

    checkpoints = {"noise": args.noise, "defect": args.defect}
    if args.denoiser is not None:
        checkpoints["denoiser"] = args.denoiser
    try:
        card = _card(args)
        bundle = write_bundle(args.out.expanduser(), checkpoints, card=card)
    except (CheckpointError, OSError, ValueError) as e:  # BundleError is a CheckpointError
        return _fail("create", e)
    print(f"created bundle {bundle.version} at {bundle.path} (threshold {bundle.policy.threshold:.4g})")
    print(f"make it live with: inspection models promote {bundle.path} --models ROOT --golden DIR")
    return 0


def run_fit_ood(args: argparse.Namespace) -> int:
    from inspection.bundle import BundleError, is_live
    from inspection.data import DatasetError
    from inspection.models.checkpoint import CheckpointError
    from inspection.ood import fit_bundle_ood

    try:
        if is_live(args.bundle) and not args.live_ok:
            raise BundleError(
                f"{args.bundle} is the live bundle: refitting its OOD check would change what every station "
                "flags without the promotion gate; fit a new bundle (inspection models create) and promote it, "
                "or pass --live-ok"
            )
        model = fit_bundle_ood(
            args.bundle, args.data, max_images=args.max_images, seed=args.seed, review_ood=args.review_ood
        )
    except (BundleError, CheckpointError, DatasetError, OSError, ValueError) as e:
        return _fail("fit-ood", e)
    meta = model.meta
    print(
        f"fitted the OOD check of {args.bundle} on {meta['n_fit']} views of the training photos (each clean "
        f"and noised); {meta['held_out_flagged']:.1%} of {meta['n_held_out']} held-out views are flagged (by "
        f"design about {1 - meta['quantile']:.0%})"
    )
    return 0


def _card(args: argparse.Namespace) -> dict[str, Any]:
    """The card's own part: parent, data and commands (``write_bundle`` adds the models' facts)."""
    card: dict[str, Any] = {"parent": args.parent or None}
    if args.data_card is not None:
        data = json.loads(args.data_card.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"--data-card {args.data_card} must hold a JSON object")
        for key in (
            "skipped_photos",
            "disagreements",
        ):  # long lists stay in dataset.json; the card counts them
            if isinstance(data.get(key), list):
                data[key] = len(data[key])
        card["data"] = data
        if data.get("synthetic") is True:  # the card then warns that the bundle never saw a real photo
            card["synthetic_only"] = True
    if args.commands is not None:
        lines = args.commands.read_text().splitlines()
        card["commands"] = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    else:
        argv = ["inspection", "models", "create", "--noise", str(args.noise), "--defect", str(args.defect)]
        argv += ["--denoiser", str(args.denoiser)] if args.denoiser else []
        argv += ["--out", str(args.out)] + (["--parent", args.parent] if args.parent else [])
        argv += ["--data-card", str(args.data_card)] if args.data_card else []
        card["commands"] = [shlex.join(argv)]
    return card


def run_list(args: argparse.Namespace) -> int:
    from inspection.bundle import BundleError
    from inspection.promotion import list_bundles

    root = _root(args.models)
    if not root.is_dir():
        return _fail("list", BundleError(f"models root {root} does not exist"))
    try:
        bundles = list_bundles(root)
    except BundleError as e:
        return _fail("list", e)
    if not bundles:
        print(f"no bundles under {root}/bundles; make one with `inspection models create`")
        return 0
    rows = [("", "version", "parent", "created", "golden accuracy", "golden recall")]
    for b in bundles:
        acc, rec = b.golden.get("accuracy"), b.golden.get("recall")
        rows.append(
            (
                "*" if b.live else "",
                b.version,
                b.parent or "-",
                b.created or "-",
                f"{100 * acc:.1f}%" if isinstance(acc, float) else "-",
                f"{100 * rec:.1f}%" if isinstance(rec, float) else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for b in bundles:
        if b.problem:
            print(f"{b.version}: cannot be read: {b.problem}", file=sys.stderr)
    print(f"(* live, from {root / 'LIVE'})")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from inspection.bundle import CARD_MARKDOWN, BundleError, load_bundle, render_card
    from inspection.promotion import PromotionError, resolve_candidate

    try:
        bundle = load_bundle(resolve_candidate(args.bundle, _root(args.models)))
    except (BundleError, PromotionError) as e:
        return _fail("show", e)
    markdown = bundle.path / CARD_MARKDOWN
    if markdown.is_file():
        print(markdown.read_text().rstrip())
    elif bundle.card:
        print(render_card({"version": bundle.version, **bundle.card}).rstrip())
    else:
        print(f"# Model bundle `{bundle.version}`\n\n(no card)")
    print("\n## Verdict policy (pipeline.json)\n")
    print(json.dumps(asdict(bundle.policy), indent=2))
    return 0


# --- promote, rollback --------------------------------------------------------------------------------------------


def _open_store(action: str, db: str, without_store: bool = False) -> tuple[RecordStore | None, int | None]:
    """The store decisions go to; one that cannot be opened gives an exit code (nothing done) unless
    ``--without-store`` says to decide anyway."""
    from inspection.commands._stores import StoreOpenError, open_stores

    try:
        store, _ = open_stores(db or None, None)
    except StoreOpenError as e:
        if not without_store:
            return None, _fail(action, f"{e}; every decision is recorded: fix --db, or pass --without-store")
        print(f"inspection models {action}: the decision will not be recorded: {e}", file=sys.stderr)
        return None, None
    return store, None


def _who(args: argparse.Namespace) -> str:
    """``--by``, else the login name (which a bare container may not have)."""
    if args.by:
        return str(args.by)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _record(
    store: RecordStore | None, root: Path, version: str, previous: str | None, action: str, **kw: Any
) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    if store is None:
        return
    try:
        row = store.record_promotion(str(root.resolve()), version, previous, action, **kw)
    except SQLAlchemyError as e:
        print(f"the decision could not be recorded in {store!r}: {e}", file=sys.stderr)
        return
    print(f"recorded as decision {row['id']} in {store!r}")


def run_promote(args: argparse.Namespace) -> int:
    from inspection.bundle import BundleError
    from inspection.data import DatasetError
    from inspection.promotion import PromotionError, promote

    root = Path(args.models).expanduser()
    if not root.is_dir():
        return _fail(
            "promote", f"models root {root} does not exist; create it (mkdir) or pass another --models"
        )
    store, code = _open_store("promote", args.db, args.without_store)
    if code is not None:
        return code
    try:
        result = promote(
            root,
            args.candidate,
            args.golden or None,
            seed=args.seed,
            force_first=args.force_first,
            progress=not args.quiet,
        )
    except (PromotionError, BundleError, DatasetError, FileNotFoundError) as e:
        if store is not None:
            store.close()
        return _fail("promote", e)
    try:
        _report(result)
        if result.action != "unchanged":
            _record(
                store,
                root,
                result.candidate.version,
                result.previous,
                result.action,
                decided_by=_who(args),
                comparison=result.comparison(),
                note="first promotion" if result.first else None,
            )
        if result.action == "promote":
            _track(args.mlflow_uri, result, _who(args))
    finally:
        if store is not None:
            store.close()
    return EXIT_REFUSED if result.action == "refuse" else 0


def _track(uri: str, result: Promotion, decided_by: str) -> None:
    """Log the promoted bundle to MLflow when a tracking URI is given; a tracking failure is only a warning."""
    from inspection.tracking import TrackingError, log_bundle, tracking_uri

    if not tracking_uri(uri):
        return
    golden = result.run.metrics["candidate"].card_entries() if result.run is not None else {}
    params = {"previous": result.previous or "", "decided_by": decided_by, "action": "promote"}
    try:
        run_id = log_bundle(uri, result.candidate.path, golden, params=params)
    except (TrackingError, OSError) as e:
        print(f"the promotion stands, but it could not be logged to MLflow: {e}", file=sys.stderr)
        return
    print(f"logged to MLflow as run {run_id}")


def _report(result: Promotion) -> None:
    from inspection.promotion import render_comparison

    version = result.candidate.version
    run = result.run
    if run is not None and run.unreadable:
        print(f"{len(run.unreadable)} golden photo(s) could not be read and were left out", file=sys.stderr)
    if result.decision is not None:
        print(render_comparison(result.decision, result.previous or "-", version))
    elif run is not None:
        m = run.metrics["candidate"]
        recall = "-" if m.recall is None else f"{100 * m.recall:.1f}%"
        print(
            f"golden set ({run.photos} photos x {len(m.by_noise)} noise types): accuracy {100 * m.accuracy:.1f}%, recall {recall}"
        )
    if result.action == "unchanged":
        print(f"{version} is live already; nothing changed")
    elif result.action == "refuse":
        failed = "; ".join(r.metric for r in result.decision.failed) if result.decision else ""
        print(f"REFUSED: {version} drops more than the tolerance in: {failed}; {result.previous} stays live")
    elif result.first:
        how = "without a golden set (--force-first)" if run is None else "with nothing to compare against"
        print(f"first promotion: no bundle was live, so {version} is live now, {how}")
    else:
        print(f"promoted: {version} is live now (was {result.previous})")


def run_rollback(args: argparse.Namespace) -> int:
    from inspection.bundle import BundleError
    from inspection.promotion import PromotionError, rollback

    root = Path(args.models).expanduser()
    store, code = _open_store("rollback", args.db, args.without_store)
    if code is not None:
        return code
    try:
        history = store.list_promotions(str(root.resolve()), limit=1000) if store is not None else []
        try:
            before, after = rollback(root, to=args.to or None, promotions=history)
        except (PromotionError, BundleError) as e:
            return _fail("rollback", e)
        print(f"rolled back: {after} is live now (was {before})")
        _record(
            store,
            root,
            after,
            before,
            "rollback",
            decided_by=_who(args),
            comparison=None,
            note=args.note or None,
        )
    finally:
        if store is not None:
            store.close()
    return 0
