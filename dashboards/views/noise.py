"""Noise: how well the frequency-domain classifier names the noise type, and what each type looks like."""

import streamlit as st

from inspection import NOISE_TYPES
from inspection.dashboard import charts, reports, ui

st.title("Noise")
st.caption("The noise-type classifier reads each photo's log-magnitude Fourier spectrum.")

with ui.guard("the noise page"):
    src = ui.sources()
    ui.sidebar(src)
    refs = ui.require_reports(src)
    if refs:
        ref = ui.pick_report(refs, key="noise_report")
        report = ui.load_report(ref)
        acc = reports.noise_accuracy(report)
        recall = (report.get("noise_classifier") or {}).get("recall") or {}
        cols = st.columns(1 + len(recall))
        cols[0].metric("Noise-type accuracy", ui.percent(acc), border=True)
        for col, t in zip(cols[1:], [t for t in NOISE_TYPES if t in recall], strict=False):
            col.metric(f"Recall: {t}", ui.percent(recall[t]), border=True)

        left, right = st.columns(2)
        with left:
            st.subheader("Confusion matrix")
            confusion = reports.confusion_frame(report)
            if confusion.empty:
                ui.empty_state("This report has no confusion matrix.")
            else:
                st.altair_chart(charts.confusion_chart(confusion), width="stretch")
        with right:
            st.subheader("Accuracy against noise level")
            levels = reports.accuracy_by_level_frame(report)
            if levels.empty:
                ui.empty_state("This report has no accuracy-by-level breakdown.")
            else:
                st.altair_chart(charts.level_curves_chart(levels), width="stretch")

        st.subheader("Example photos and their spectra")
        st.caption(
            "Periodic interference makes sharp off-centre peaks; Gaussian and salt-and-pepper noise lift the "
            "high-frequency floor; a clean photo shows neither."
        )
        entries = reports.gallery_entries(report, ref.path)
        if not entries:
            ui.empty_state("This report has no example photos.")
        for col, entry in zip(st.columns(max(1, len(entries))), entries, strict=False):
            with col:
                st.markdown(f"**{entry.noise_type}**")
                ui.image(entry.noisy, "photo")
                ui.image(entry.spectrum, "spectrum")
