"""The review queue: records an engineer should confirm or correct, and the labels they give.

Two kinds of record are queued, in this order:

1. **Review verdicts**: the model handed the part to a person (``verdict='review'``: uncertain, or out of
   distribution), newest first.
2. **Conflicts**: photos of one part at one station got opposite verdicts (``conflict`` is set on every
   scored record of that part). They are grouped by part, the part with the newest photo first, so the
   photos can be compared side by side.

A record leaves the queue once it has a label. Labels are written with
:meth:`inspection.store.records.RecordStore.add_label`, the same call the service's engineer-only
``POST /v1/inspections/{id}/label`` makes: beside the model's verdict, never over it, the newest one holding.
Who may label is decided by :func:`labeller` from the dashboard's login; the labels are attributed to the
signed-in user.

Texts meant for Markdown-rendering calls come out escaped with
:func:`inspection.dashboard.text.escape_markdown`, as in :mod:`inspection.dashboard.parts`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Subquery, Table, case, exists, func, inspect, select, union
from sqlalchemy.exc import SQLAlchemyError

from inspection.dashboard.auth import is_loopback
from inspection.dashboard.config import AuthSettings
from inspection.dashboard.text import escape_markdown
from inspection.store.export import normalise_kind
from inspection.store.models import LABEL_VERDICTS, STATUS_OK, Inspection, Label
from inspection.store.records import RecordStore

log = logging.getLogger(__name__)
T = cast(Table, Inspection.__table__)
L = cast(Table, Label.__table__)

SECTION_REVIEW = "review"
SECTION_CONFLICT = "conflict"
SECTION_TITLES = {SECTION_REVIEW: "Review verdicts", SECTION_CONFLICT: "Photos of one part that disagree"}
QUEUE_COLUMNS = (
    "id",
    "created_at",
    "station_id",
    "part_id",
    "verdict",
    "defect_probability",
    "threshold",
    "kind",
    "review_reason",
    "ood",
    "ood_score",
    "noise_type",
    "noise_probability",
    "denoiser",
    "image_key",
    "image_path",
    "conflict",
)
LABEL_COLUMNS = ("label_verdict", "label_kind", "labelled_by", "labelled_at")
PAGE_SIZE = 10  # records per page: each one shows a decoded photo
# Labels written without a login (loopback only) carry this name, so nobody mistakes them for a person's.
NO_LOGIN_NAME = "dashboard (no login)"
# The same limits as the service's label endpoint (inspection.service.routes.inspections.LabelIn).
KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_NOTE = 2000
MAX_LABELLER = 64  # labels.labelled_by is String(64)


class LabelRefused(ValueError):
    """A label cannot be stored; the message (plain text) says why and what to do."""


class QueueCounts(NamedTuple):
    """Exact counts of the queue under the page's filters."""

    review: int  # records with the review verdict
    conflict: int  # records of parts whose photos disagree (review verdicts among them counted above)
    conflict_parts: int  # parts those records belong to

    @property
    def total(self) -> int:
        return self.review + self.conflict


@dataclass(frozen=True)
class QueueGroup:
    """What the page shows as one card: one review record, or the queued photos of one conflicting part."""

    section: str  # SECTION_REVIEW or SECTION_CONFLICT
    station_id: str
    part_id: str | None
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class Labeller:
    """Who this session labels as, or why it may not label.

    ``name`` is what ``labels.labelled_by`` gets (None: this session may not label); ``attributed`` says
    whether that name is a signed-in person; ``note`` is a Markdown-safe sentence for the page.
    """

    name: str | None
    attributed: bool
    note: str

    @property
    def can_label(self) -> bool:
        return self.name is not None


def _section() -> ColumnElement[int]:
    """0 for a review verdict, 1 for any other queued record (a conflict)."""
    return case((T.c.verdict == SECTION_REVIEW, 0), else_=1)


def _queued(stations: list[str] | None, include_labelled: bool) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [
        T.c.status == STATUS_OK,
        (T.c.verdict == SECTION_REVIEW) | T.c.conflict.is_(True),
    ]
    if stations:
        conds.append(T.c.station_id.in_(stations))
    if not include_labelled:
        conds.append(~exists().where(L.c.inspection_id == T.c.id))
    return conds


def labels_ready(engine: Engine) -> bool:
    """Whether the database has the ``labels`` table (a store migrated before labels existed has not)."""
    return inspect(engine).has_table(L.name)


def review_queue(
    engine: Engine,
    *,
    stations: list[str] | None = None,
    include_labelled: bool = False,
    limit: int = PAGE_SIZE,
    offset: int = 0,
) -> pd.DataFrame:
    """The queued records in queue order: review verdicts newest first, then conflicts grouped by part.

    Args:
        stations: only these stations (None or empty: all).
        include_labelled: keep records that already have a label (their newest label is in the
            ``label_*`` and ``labelled_*`` columns; those are empty for an unlabelled record).
        limit, offset: paging over records, in queue order.

    Returns:
        One row per record: :data:`QUEUE_COLUMNS`, ``section`` (``review`` or ``conflict``) and
        :data:`LABEL_COLUMNS`.
    """
    queued = _queued_in_order(stations, include_labelled)
    newest = (
        select(L.c.inspection_id, func.max(L.c.id).label("label_id")).group_by(L.c.inspection_id).subquery()
    )
    stmt = (
        select(
            *(queued.c[c] for c in QUEUE_COLUMNS),
            queued.c.rank,
            L.c.verdict.label("label_verdict"),
            L.c.kind.label("label_kind"),
            L.c.labelled_by,
            L.c.created_at.label("labelled_at"),
        )
        .outerjoin(newest, newest.c.inspection_id == queued.c.id)
        .outerjoin(L, L.c.id == newest.c.label_id)
        .order_by(
            queued.c.rank,
            queued.c.group_at.desc(),
            queued.c.station_id,
            queued.c.part_id,
            queued.c.created_at.desc(),
            queued.c.id.desc(),
        )
        .limit(max(1, int(limit)))
        .offset(max(0, int(offset)))
    )
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for row in rows:
        row["section"] = SECTION_REVIEW if row.pop("rank") == 0 else SECTION_CONFLICT
        row["conflict"] = bool(row["conflict"])
    return pd.DataFrame(rows, columns=[*QUEUE_COLUMNS, "section", *LABEL_COLUMNS])


def _queued_in_order(stations: list[str] | None, include_labelled: bool) -> Subquery:
    """The queued records with their section (``rank``: 0 review, 1 conflict) and the time their group sorts
    by (``group_at``): a conflicting part sorts by its newest queued photo, so its photos stay together."""
    section = _section()
    group_newest = func.max(T.c.created_at).over(partition_by=(section, T.c.station_id, T.c.part_id))
    return (
        select(
            *(T.c[c] for c in QUEUE_COLUMNS),
            section.label("rank"),
            case((section == 0, T.c.created_at), else_=group_newest).label("group_at"),
        )
        .where(*_queued(stations, include_labelled))
        .subquery()
    )


def count_queue(
    engine: Engine, *, stations: list[str] | None = None, include_labelled: bool = False
) -> QueueCounts:
    """Exact counts of the queue under the same filters as :func:`review_queue`."""
    section = _section()
    conds = _queued(stations, include_labelled)
    by_section = select(section.label("rank"), func.count()).where(*conds).group_by(section)
    parts = (
        select(T.c.station_id, T.c.part_id)
        .where(*conds, section == 1)
        .group_by(T.c.station_id, T.c.part_id)
        .subquery()
    )
    with engine.connect() as conn:
        counts = {int(rank): int(n) for rank, n in conn.execute(by_section)}
        n_parts = int(conn.execute(select(func.count()).select_from(parts)).scalar_one())
    return QueueCounts(counts.get(0, 0), counts.get(1, 0), n_parts)


def group_queue(queue: pd.DataFrame) -> list[QueueGroup]:
    """The queue as cards, in queue order: one per review record, one per conflicting part."""
    groups: list[QueueGroup] = []
    for item in queue.to_dict("records"):
        item = {k: (None if _missing(v) else v) for k, v in item.items()}
        last = groups[-1] if groups else None
        if (
            item["section"] == SECTION_CONFLICT
            and last is not None
            and last.section == SECTION_CONFLICT
            and (last.station_id, last.part_id) == (item["station_id"], item["part_id"])
        ):
            last.items.append(item)
        else:
            groups.append(QueueGroup(item["section"], item["station_id"], item["part_id"], [item]))
    return groups


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT


def kinds_seen(engine: Engine) -> list[str]:
    """Every defect kind the model gave or a label named, sorted: the choices offered when labelling."""
    stmt = union(
        select(T.c.kind.label("kind")).where(T.c.kind.is_not(None)),
        select(L.c.kind.label("kind")).where(L.c.kind.is_not(None)),
    )
    with engine.connect() as conn:
        return sorted({str(k) for (k,) in conn.execute(stmt) if str(k).strip()})


# --- who labels -------------------------------------------------------------------------------------------


def labeller(settings: AuthSettings, *, user: str | None, host: str | None) -> Labeller:
    """Who this session's labels are attributed to, from the dashboard's login.

    The dashboard has no roles: with a login (``--auth-config`` or ``--auth-header``), every signed-in user
    may label, under their user name. Without a login, labelling is allowed only while the dashboard listens
    on loopback (the developer's-machine mode), under :data:`NO_LOGIN_NAME`; served to the network with
    ``--insecure-no-auth`` (or by a bare ``streamlit run``, which listens everywhere), anyone could write
    training labels, so nobody may.

    Args:
        settings: the login settings (:func:`inspection.dashboard.config.auth_settings`).
        user: the signed-in user's name, or None.
        host: the address the server listens on (Streamlit's ``server.address``), or None when unset.
    """
    if settings.enabled:
        if not user:
            return Labeller(None, False, "Sign in to label.")
        if len(user) > MAX_LABELLER:
            return Labeller(
                None,
                False,
                f"Your user name is longer than {MAX_LABELLER} characters, which a label cannot record; "
                "ask for a shorter one in the login file or proxy.",
            )
        return Labeller(user, True, f"Labels are stored as **{escape_markdown(user)}**.")
    if host and is_loopback(host):
        return Labeller(
            NO_LOGIN_NAME,
            False,
            f"No login: labels are stored as **{escape_markdown(NO_LOGIN_NAME)}**, not attributed to a "
            "person. Start the dashboard with `--auth-config` or `--auth-header` to record who labelled.",
        )
    return Labeller(
        None,
        False,
        "Labelling is off: this dashboard has no login and is reachable beyond this machine, so anyone could "
        "write training labels. Start it with `--auth-config` or `--auth-header` (see docs/dashboard.md).",
    )


def clean_kind(kind: str | None) -> str | None:
    """A defect kind as labels store it: lowercase, folder-safe (``"Cold Shut"`` -> ``cold_shut``); None if blank.

    Raises:
        LabelRefused: the kind has no letter or digit, or is longer than 64 characters.
    """
    if kind is None or not kind.strip():
        return None
    cleaned = normalise_kind(kind)
    if not KIND_RE.match(cleaned):
        raise LabelRefused(
            f"a kind must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit, "
            f"got {kind.strip()!r}"
        )
    return cleaned


def save_label(
    store: RecordStore,
    record_id: int,
    *,
    verdict: str,
    labeller: Labeller,
    kind: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Store an engineer's label on a record with :meth:`RecordStore.add_label`; returns the stored label.

    ``kind`` is kept only for a defective label (an ok part has no defect kind).

    Raises:
        LabelRefused: this session may not label, the verdict is not ok or defective, the kind or note is
            unusable, or the record is gone.
    """
    if labeller.name is None:
        raise LabelRefused("this session may not label: " + labeller.note.replace("**", ""))
    if verdict not in LABEL_VERDICTS:
        raise LabelRefused(f"a label's verdict must be one of {', '.join(LABEL_VERDICTS)}, got {verdict!r}")
    stored_kind = clean_kind(kind) if verdict == "defective" else None
    stored_note = (note or "").strip() or None
    if stored_note is not None and len(stored_note) > MAX_NOTE:
        raise LabelRefused(f"the note has {len(stored_note)} characters; keep it under {MAX_NOTE}")
    try:
        saved = store.add_label(
            int(record_id), verdict=verdict, kind=stored_kind, note=stored_note, labelled_by=labeller.name
        )
    except SQLAlchemyError as e:
        log.error("label on record %s not stored: %s", record_id, e)
        raise LabelRefused(
            f"the records database refused the write ({type(e).__name__}); check that the dashboard's "
            "database user may insert into the labels table (details in the server log)"
        ) from e
    if saved is None:
        raise LabelRefused(f"record #{int(record_id)} is gone from the database")
    return saved


# --- texts ------------------------------------------------------------------------------------------------


def _label_text(verdict: Any, kind: Any) -> str:
    return f"{escape_markdown(verdict)} ({escape_markdown(kind)})" if kind else escape_markdown(verdict)


def saved_message(label: dict[str, Any], item: dict[str, Any]) -> str:
    """``Record #12 (part P1, station S) labelled defective (crack) by alice.``, escaped for Markdown."""
    return (
        f"Record #{int(item['id'])} (part {escape_markdown(item.get('part_id') or 'n/a')}, station "
        f"{escape_markdown(item.get('station_id'))}) labelled {_label_text(label['verdict'], label.get('kind'))} "
        f"by {escape_markdown(label['labelled_by'])}. It has left the queue."
    )


def counts_caption(counts: QueueCounts, *, include_labelled: bool = False) -> str:
    """``3 records to review: 1 with the review verdict, 2 photos of 1 part that disagree.``"""

    def n(k: int, one: str, many: str) -> str:
        return f"{k:,} {one if k == 1 else many}"

    what = "in the queue, labelled ones included" if include_labelled else "to review"
    return (
        f"{n(counts.total, 'record', 'records')} {what}: {counts.review:,} with the review verdict, "
        f"{n(counts.conflict, 'photo', 'photos')} of {n(counts.conflict_parts, 'part', 'parts')} that disagree."
    )


def item_title(item: dict[str, Any], *, with_part: bool = True) -> str:
    """``Part P1 · station S · 2026-11-20 10:00 UTC · record #12`` (without part and station under a part's
    title), escaped for Markdown."""
    created = item.get("created_at")
    when = f"{created:%Y-%m-%d %H:%M} UTC" if isinstance(created, datetime) else "time unknown"
    if not with_part:
        return f"{when} · record #{int(item['id'])}"
    part = escape_markdown(item.get("part_id")) if item.get("part_id") else "no part id"
    return f"Part {part} · station {escape_markdown(item.get('station_id'))} · {when} · record #{int(item['id'])}"


def conflict_title(group: QueueGroup) -> str:
    """``Part P1 at station S: its photos got opposite verdicts``, escaped for Markdown."""
    part = escape_markdown(group.part_id) if group.part_id else "no part id"
    return f"Part {part} at station {escape_markdown(group.station_id)}: its photos got opposite verdicts"


def facts_frame(item: dict[str, Any]) -> pd.DataFrame:
    """What the model said about the record, as a two-column table (plain text: tables are not Markdown)."""

    def number(value: Any, spec: str) -> str:
        return "n/a" if _missing(value) else format(float(value), spec)

    noise = item.get("noise_type") or "n/a"
    if not _missing(item.get("noise_probability")):
        noise = f"{noise} ({number(item['noise_probability'], '.0%')})"
    rows = [
        ("Model verdict", item.get("verdict") or "n/a"),
        ("P(defective)", number(item.get("defect_probability"), ".1%")),
        ("Threshold", number(item.get("threshold"), ".2f")),
        ("Kind", item.get("kind") or "none given"),
        ("Review reason", item.get("review_reason") or "n/a"),
        ("Out of distribution", _ood_said(item)),
        ("Noise type", noise),
        ("Denoiser", item.get("denoiser") or "n/a"),
    ]
    return pd.DataFrame(rows, columns=["Model", "said"])


def _ood_said(item: dict[str, Any]) -> str:
    """``yes (score 2.41)``, ``no (score 0.37)``, or ``not checked`` (no OOD model judged the photo)."""
    if _missing(item.get("ood")):
        return "not checked"
    said, score = ("yes" if item["ood"] else "no"), item.get("ood_score")
    return said if score is None or _missing(score) else f"{said} (score {float(score):.2f})"


def label_note(item: dict[str, Any]) -> str | None:
    """``Labelled defective (crack) by alice, 2026-11-20 10:00 UTC.`` for a labelled record; None otherwise."""
    if not item.get("label_verdict"):
        return None
    at = item.get("labelled_at")
    when = f", {at:%Y-%m-%d %H:%M} UTC" if isinstance(at, datetime) else ""
    return (
        f"Labelled {_label_text(item['label_verdict'], item.get('label_kind'))} by "
        f"{escape_markdown(item.get('labelled_by'))}{when}."
    )


def kind_options(kinds: list[str], item: dict[str, Any]) -> tuple[list[str], int]:
    """The kind choices for a record (none, then every kind seen) and the index of the model's kind."""
    options = ["", *kinds]
    model_kind = item.get("kind")
    if model_kind and model_kind not in options:
        options.append(str(model_kind))
    return options, options.index(model_kind) if model_kind else 0
