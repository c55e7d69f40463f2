"""Overview: does the noise routing pay off? Headline defect metrics and the gain per noise type."""

import streamlit as st

from inspection.dashboard import charts, reports, ui

st.title("Overview")
st.caption("Defect classification on clean photos, on noisy photos as they come, and after routed denoising.")

with ui.guard("the overview"):
    src = ui.sources()
    ui.sidebar(src)
    refs = ui.require_reports(src)
    if refs:
        latest_ref = refs[0]
        latest = ui.load_report(latest_ref)
        facts = reports.report_summary(latest)
        st.caption(
            f"Latest report **{latest_ref.id}** · {facts['dataset']} ({facts['n_images']} images) · "
            f"commit {facts['commit']} · models {', '.join(f'{k} {v}' for k, v in facts['models'].items())}"
        )

        headline = reports.headline_table(latest)
        cols = st.columns(len(headline) + 1)
        for col, row in zip(cols, headline.itertuples(), strict=False):
            col.metric(row.label, ui.percent(row.accuracy), border=True, help="defect accuracy")
            col.caption(
                f"sensitivity {ui.percent(row.sensitivity)} · specificity {ui.percent(row.specificity)}"
            )
        ref = reports.reference_figures(latest)
        gain = reports.overall_gain(latest)
        cols[-1].metric(
            "Gain from denoising",
            ui.points(gain) or "n/a",
            delta=f"reference {ref['model']}: {ui.points(ref['gain'])}",
            delta_color="off",
            border=True,
        )
        cols[-1].caption(f"{ref['source']}: {ref['noisy_before']:.1%} → {ref['noisy_after']:.1%}")

        left, right = st.columns([1, 1])
        with left:
            st.subheader("Defect metrics by condition")
            st.altair_chart(charts.headline_chart(headline), width="stretch")
        with right:
            st.subheader("Gain per noise type, beside the reference study")
            st.altair_chart(charts.gain_chart(reports.gain_comparison_frame(latest)), width="stretch")

        gains = reports.gain_per_type(latest)
        st.dataframe(
            gains,
            hide_index=True,
            column_config={
                "noise_type": "noise type",
                "without": st.column_config.NumberColumn("without denoising", format="percent"),
                "with_denoising": st.column_config.NumberColumn("with routed denoising", format="percent"),
                "gain": st.column_config.NumberColumn("gain", format="percent"),
            },
        )

        st.subheader("Compare with an earlier report")
        earlier_refs = refs[1:]
        if not earlier_refs:
            ui.empty_state("Only one report so far; the next evaluation run will appear here for comparison.")
        else:
            earlier_ref = ui.pick_report(earlier_refs, key="compare_report", label="Compare with")
            table = reports.compare_reports(latest, ui.load_report(earlier_ref))
            st.caption(f"**{latest_ref.id}** (latest) against **{earlier_ref.id}**")
            st.dataframe(
                table,
                hide_index=True,
                column_config={
                    "latest": st.column_config.NumberColumn(format="percent"),
                    "earlier": st.column_config.NumberColumn(format="percent"),
                    "change": st.column_config.NumberColumn(format="percent"),
                },
            )
