"""Part lookup: one part's photo, spectrum, denoised photo, noise type, verdict and the models that judged it."""

from datetime import UTC, datetime, time

import streamlit as st

from inspection.dashboard import charts, images, parts, ui
from inspection.dashboard.text import shown

st.title("Part lookup")
st.caption("Find a part by its id (end with * for a prefix), or by station and day.")

with ui.guard("the part lookup page"):
    src = ui.sources()
    ui.sidebar(src)
    engine = ui.require_db(src)
    if engine is not None:
        url = src.db_url
        c1, c2, c3 = st.columns([2, 2, 2])
        part_id = c1.text_input("Part id", key="part_id", placeholder="e.g. P1-0000042 or P1-00000*")
        station_ids = c2.multiselect("Stations", ui.list_stations(url), key="stations")
        span = ui.time_span(url)
        days = c3.date_input(
            "Days (UTC)",
            value=(),
            key="days",
            min_value=span.start.date() if span else None,
            max_value=span.end.date() if span else None,
        )
        start = end = None
        if isinstance(days, (tuple, list)) and len(days) >= 1:
            start = datetime.combine(days[0], time.min, tzinfo=UTC)
            end = datetime.combine(days[-1], time.max, tzinfo=UTC)

        found = ui.find_parts(url, part_id or None, tuple(station_ids), start, end)
        if found.empty:
            ui.empty_state("No record matches; loosen the filters (an id prefix needs a trailing *).")
        else:
            st.caption(
                f"{len(found)} matching record{'' if len(found) == 1 else 's'}, newest first (at most {parts.MAX_ROWS})."
            )
            st.dataframe(found, hide_index=True, height=200)
            labels = parts.record_labels(found)
            record_id = st.selectbox("Record", list(labels), format_func=labels.get, key="record")
            record = ui.get_part(url, int(record_id))
            if record is None:
                ui.empty_state(f"Record {record_id} is gone from the database.")
            else:
                m = st.columns(4)
                m[0].metric("Verdict", shown(record.get("verdict") or record.get("status")), border=True)
                m[1].metric("Defect probability", ui.percent(record.get("defect_probability")), border=True,
                            help=f"threshold {shown(record.get('threshold'))}")  # fmt: skip
                m[2].metric("Noise type", shown(record.get("noise_type")), border=True)
                m[3].metric("Denoiser", shown(record.get("denoiser")), border=True)
                rejected = parts.rejection_note(record)
                if rejected:
                    st.warning(rejected, icon=":material/block:")
                conflict = parts.conflict_note(record)
                if conflict:
                    st.warning(conflict, icon=":material/compare_arrows:")

                photo = ui.record_photo(src, record)
                p1, p2, p3 = st.columns(3)
                if photo.gray is None:
                    p1.info(photo.note)
                else:
                    p1.image(photo.gray, caption="photo", width="stretch")
                    p2.image(images.spectrum_image(photo.gray), caption="spectrum", width="stretch")
                    pipe, why = (
                        ui.pipeline(str(src.models_dir))
                        if ui.pipeline_enabled()
                        else (None, "models are switched off")
                    )
                    view = parts.denoised_view(photo.gray, record, pipe)
                    if view.image is not None:
                        p3.image(view.image, caption=f"denoised ({view.note})", width="stretch")
                    else:
                        p3.info(
                            f"No denoised view: {view.note}"
                            + (f" ({shown(why)})." if why and pipe is None else ".")
                        )

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
