"""Part lookup: find records by part, station, verdict, kind, noise type, OOD flag and day, count and export
them all; one part's photo, spectrum, denoised photo, noise type, verdict and the models that judged it
(``/part-lookup?part=ID`` or ``?record=N`` links straight to it); and the review queue, where an engineer
confirms or corrects the model (``/part-lookup?view=Review+queue``).

Nothing here imports torch: the models (and torch) load only when an engineer switches on *Denoise this photo* or
*Show where the model looked* (the defect model's heat map beside the photo)."""

from datetime import UTC, datetime, time
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from inspection import NOISE_TYPES
from inspection.dashboard import charts, config, heatmap, images, parts, review, ui
from inspection.dashboard.text import escape_markdown, shown

TABS = ["Find a part", "Review queue"]


def find_a_part(src: config.Sources, url: str) -> None:
    """Search by id, station, verdict, kind, noise type, OOD flag and day; list, count and export the matches;
    then one record: photo, spectrum, denoised photo, verdict. ``?part=ID`` and ``?record=N`` link here."""
    linked = st.query_params.get("record")
    query = linked_record(linked) if linked is not None else part_filters(url)
    if query is None:
        return
    found, total = ui.query_parts(url, query)
    if found.empty:
        ui.empty_state("No record matches; loosen the filters (an id prefix needs a trailing *).")
        return
    c1, c2 = st.columns([3, 2], vertical_alignment="center")
    c1.caption(parts.count_caption(total, len(found)))
    with c2:
        export_buttons(url, query)
    st.dataframe(found, hide_index=True, height=200)
    labels = parts.record_labels(found)
    record_id = st.selectbox("Record", list(labels), format_func=labels.get, key="record")
    record = ui.get_part(url, int(record_id))
    if record is None:
        ui.empty_state(f"Record {record_id} is gone from the database.")
    else:
        show_record(src, record)


def denoised_view(src: config.Sources, record: dict[str, Any], gray: Any, column: Any) -> None:
    """The record's photo denoised again, on request: the denoisers (and torch) load only then."""
    if not column.toggle("Denoise this photo", key="denoise", help="Rebuild it with the record's denoiser"):
        column.caption("Switch on *Denoise this photo* to see it as the pipeline's denoiser left it.")
        return
    pipe, why = (
        ui.pipeline(str(src.models_dir)) if ui.pipeline_enabled() else (None, "models are switched off")
    )
    view = parts.denoised_view(gray, record, pipe)
    if view.image is not None:
        column.image(view.image, caption=f"denoised ({view.note})", width="stretch")
    else:
        column.info(f"No denoised view: {view.note}" + (f" ({shown(why)})." if why and pipe is None else "."))


def heat_map(src: config.Sources, record: dict[str, Any], gray: Any, column: Any) -> None:
    """Where the defect model looked, on request: the models (and torch) load only then."""
    on = st.query_params.get("heat") == "1"  # a link with &heat=1 opens with the heat map on
    if not column.toggle(
        "Show where the model looked", value=on, key="heat_map", help="The defect model's heat map"
    ):
        column.caption(
            "Switch on *Show where the model looked* for the defect model's heat map on this photo."
        )
        return
    pipe, why = (
        ui.pipeline(str(src.models_dir)) if ui.pipeline_enabled() else (None, "models are switched off")
    )
    view = heatmap.heat_map_view(gray, record, pipe)
    if view.image is not None:
        column.image(view.image, caption="where the defect model looked", width="stretch")
        column.caption(view.note)
    else:
        column.info(f"No heat map: {view.note}" + (f" ({shown(why)})." if why and pipe is None else "."))


def linked_record(value: str) -> parts.PartQuery | None:
    """The query for a ``?record=N`` link, with a way back to the search; None when N is not a record id."""
    if st.button("Search all parts", icon=":material/search:", key="unlink"):
        del st.query_params["record"]
        st.rerun()
    if not value.strip().isdigit():
        st.error(f"The link names record {escape_markdown(value)}; a record id is a whole number.")
        return None
    st.caption(f"Linked record #{int(value)}.")
    return parts.PartQuery(record_id=int(value))


def part_filters(url: str) -> parts.PartQuery:
    """The search form; its part id comes from a ``?part=ID`` link and goes back into the URL to share."""
    if "part_id" not in st.session_state:
        st.session_state["part_id"] = st.query_params.get("part", "")
    st.caption(
        "Find a part by its id (end with * for a prefix), or filter by station, verdict, kind and day."
    )
    c1, c2, c3 = st.columns([2, 2, 2])
    part_id = c1.text_input("Part id", key="part_id", placeholder="e.g. P1-0000042 or P1-00000*").strip()
    if part_id:
        st.query_params["part"] = part_id
    elif "part" in st.query_params:
        del st.query_params["part"]
    stations = c2.multiselect("Stations", ui.list_stations(url), key="stations")
    start, end = day_range(c3, url)
    c4, c5, c6, c7 = st.columns([2, 2, 2, 1])
    verdicts = c4.multiselect("Verdict", ["ok", "defective", "review"], key="verdicts")
    kinds = c5.multiselect("Defect kind", ui.defect_kinds(url), key="kinds")
    noise_types = c6.multiselect("Noise type", list(NOISE_TYPES), key="noise_types")
    ood = c7.selectbox("Out of distribution", list(parts.OOD_CHOICES), key="ood")
    return parts.PartQuery(
        part_id=part_id or None, stations=tuple(stations), verdicts=tuple(verdicts), kinds=tuple(kinds),
        noise_types=tuple(noise_types), ood=parts.OOD_CHOICES[ood], start=start, end=end,
    )  # fmt: skip


def day_range(column: Any, url: str) -> tuple[datetime | None, datetime | None]:
    span = ui.time_span(url)
    days = column.date_input(
        "Days (UTC)",
        value=(),
        key="days",
        min_value=span.start.date() if span else None,
        max_value=span.end.date() if span else None,
    )
    if isinstance(days, (tuple, list)) and len(days) >= 1:
        return datetime.combine(days[0], time.min, tzinfo=UTC), datetime.combine(
            days[-1], time.max, tzinfo=UTC
        )
    return None, None


def export_buttons(url: str, query: parts.PartQuery) -> None:
    """Every matching record (not only those listed) as CSV, and as Parquet where pyarrow is installed."""

    def every() -> Any:  # built when the button is pressed, not on every rerun
        return parts.query_parts(ui.engine(url), query, limit=None, columns=parts.EXPORT_COLUMNS)

    b1, b2 = st.columns(2)
    b1.download_button(
        "Export CSV", lambda: parts.export_csv(every()), file_name="parts.csv", mime="text/csv",
        icon=":material/download:", key="export_csv", on_click="ignore",
    )  # fmt: skip
    if parts.parquet_available():
        b2.download_button(
            "Export Parquet", lambda: parts.export_parquet(every()), file_name="parts.parquet",
            mime="application/vnd.apache.parquet", icon=":material/download:", key="export_parquet",
            on_click="ignore",
        )  # fmt: skip
    else:
        b2.caption("Parquet export needs pyarrow (`pip install pyarrow`); CSV works without it.")


def show_record(src: config.Sources, record: dict[str, Any]) -> None:
    """One record: verdict, probabilities, notes, photo, spectrum, denoised photo and the models that judged it."""
    m = st.columns(5)
    m[0].metric("Verdict", shown(record.get("verdict") or record.get("status")), border=True)
    m[1].metric("Defect probability", ui.percent(record.get("defect_probability")), border=True,
                help=f"threshold {shown(record.get('threshold'))}")  # fmt: skip
    m[2].metric("Noise type", shown(record.get("noise_type")), border=True)
    m[3].metric("Denoiser", shown(record.get("denoiser")), border=True)
    m[4].metric("Out of distribution", parts.ood_value(record), border=True, help=parts.ood_help(record))
    for note, icon in ((parts.rejection_note(record), ":material/block:"),
                       (parts.conflict_note(record), ":material/compare_arrows:"),
                       (parts.ood_note(record), ":material/explore_off:")):  # fmt: skip
        if note:
            st.warning(note, icon=icon)
    photo = ui.record_photo(src, record)
    p1, p2, p3, p4 = st.columns(4)
    if photo.gray is None:
        p1.info(photo.note)
    else:
        p1.image(photo.gray, caption="photo", width="stretch")
        heat_map(src, record, photo.gray, p2)
        p3.image(images.spectrum_image(photo.gray), caption="spectrum", width="stretch")
        denoised_view(src, record, photo.gray, p4)
    left, right = st.columns(2)
    with left:
        st.subheader("Noise probabilities")
        probs = parts.probabilities_frame(record)
        if probs.empty:
            st.caption("none recorded")
        else:
            st.altair_chart(charts.probabilities_chart(probs), width="stretch")
    with right:
        st.subheader("Judged by")
        st.dataframe(parts.versions_frame(record), hide_index=True)
        st.caption(parts.record_caption(record))


def review_queue(src: config.Sources, engine: Engine) -> None:
    """Review verdicts, then parts whose photos disagree; each with a form to confirm or correct the model."""
    st.caption(
        "Parts the model handed to a person (verdict *review*) come first, newest first; then parts whose "
        "photos got opposite verdicts, side by side. Confirm or correct each: the label is stored beside the "
        "model's verdict, never over it, and the record leaves the queue."
    )
    if not review.labels_ready(engine):
        ui.empty_state(
            "This database predates labels, so nothing can be labelled here yet; upgrade its schema.",
            "inspection db upgrade --db URL",
        )
        return
    who = review.labeller(config.auth_settings(), user=ui.signed_in_user(), host=ui.server_address())
    if who.attributed:
        st.caption(who.note)
    else:
        st.warning(who.note, icon=":material/person_off:")
    saved = st.session_state.pop("review_saved", None)
    if saved:
        st.success(saved, icon=":material/check_circle:")

    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    station_ids = c1.multiselect("Stations", ui.list_stations(src.db_url), key="review_stations")
    with_labelled = c2.toggle("Show labelled records too", key="review_labelled")
    counts = review.count_queue(engine, stations=list(station_ids), include_labelled=with_labelled)
    if counts.total == 0:
        ui.empty_state("Nothing to review: no record has the review verdict or disagrees with another photo.")
        return
    st.caption(review.counts_caption(counts, include_labelled=with_labelled))
    queue = review.review_queue(
        engine,
        stations=list(station_ids),
        include_labelled=with_labelled,
        offset=(queue_page(counts.total) - 1) * review.PAGE_SIZE,
    )
    kinds = review.kinds_seen(engine)
    section = None
    for group in review.group_queue(queue):
        if group.section != section:
            section = group.section
            st.subheader(review.SECTION_TITLES[section])
        with st.container(border=True):
            if group.section == review.SECTION_REVIEW:
                queue_item(src, group.items[0], kinds, who)
                continue
            st.markdown(f"**{review.conflict_title(group)}**")
            for row in range(0, len(group.items), 2):  # the photos of one part side by side, two to a row
                for item, column in zip(group.items[row : row + 2], st.columns(2, gap="large"), strict=False):
                    with column:
                        queue_item(src, item, kinds, who, compact=True)


def queue_page(total: int) -> int:
    """The queue page to show (1-based): a page picker when the queue needs more than one."""
    n_pages = -(-total // review.PAGE_SIZE)
    if st.session_state.get("review_page", 1) > n_pages:  # the last page emptied by labelling
        st.session_state["review_page"] = n_pages
    if n_pages == 1:
        return 1
    label = f"Page (of {n_pages}, {review.PAGE_SIZE} records each)"
    return int(st.number_input(label, 1, n_pages, key="review_page"))


def queue_item(
    src: config.Sources, item: dict, kinds: list[str], who: review.Labeller, *, compact: bool = False
) -> None:
    """One queued record: its photo, what the model said, and the label form (below them when compact)."""
    st.markdown(f"**{review.item_title(item, with_part=not compact)}**")
    photo_col, facts_col, *form_col = st.columns([1, 1.3]) if compact else st.columns([1, 1.2, 1.2])
    with photo_col:
        photo = ui.record_photo(src, item)
        if photo.gray is None:
            st.info(photo.note)
        else:
            st.image(photo.gray, width="stretch")
    with facts_col:
        st.dataframe(review.facts_frame(item), hide_index=True, width="stretch")
        labelled = review.label_note(item)
        if labelled:
            st.caption(labelled)
    with form_col[0] if form_col else st.container():
        label_form(src, item, kinds, who)


def label_form(src: config.Sources, item: dict, kinds: list[str], who: review.Labeller) -> None:
    rid = int(item["id"])
    off = not who.can_label
    options, index = review.kind_options(kinds, item)
    with st.form(f"label-{rid}", border=False):
        kind = st.selectbox(
            "Kind", options, index=index, format_func=lambda k: k or "none", key=f"kind-{rid}", disabled=off,
            help="Kept with Confirm defective only. The model's kind is chosen when it gave one.",
        )  # fmt: skip
        new_kind = st.text_input(
            "Or a new kind", key=f"new-kind-{rid}", placeholder="e.g. porosity", disabled=off
        )
        note = st.text_input("Note", key=f"note-{rid}", max_chars=review.MAX_NOTE, disabled=off)
        b1, b2 = st.columns(2)
        ok = b1.form_submit_button("Confirm ok", icon=":material/check:", disabled=off, width="stretch")
        bad = b2.form_submit_button(
            "Confirm defective", icon=":material/report:", disabled=off, width="stretch"
        )
    if ok or bad:
        try:
            label = review.save_label(
                ui.record_store(src.db_url), rid, verdict="ok" if ok else "defective", labeller=who,
                kind=new_kind or kind, note=note,
            )  # fmt: skip
        except review.LabelRefused as e:
            st.error(f"Not labelled: {escape_markdown(e)}", icon=":material/error:")
        else:
            st.session_state["review_saved"] = review.saved_message(label, item)
            st.rerun()


st.title("Part lookup")
with ui.guard("the part lookup page"):
    src = ui.sources()
    ui.sidebar(src)
    engine = ui.require_db(src)
    if engine is not None:
        # Only the open tab runs, and the URL names it: /part-lookup?view=Review+queue opens the queue.
        find_tab, queue_tab = st.tabs(TABS, key="view", on_change="rerun", bind="query-params")
        if find_tab.open:
            with find_tab:
                find_a_part(src, src.db_url)
        if queue_tab.open:
            with queue_tab, ui.guard("the review queue"):
                review_queue(src, engine)
