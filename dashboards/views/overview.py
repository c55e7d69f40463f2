"""Overview: does the noise routing pay off? Headline defect metrics, the gain per noise type, how often
denoising erases a defect, how the routing copes with realistic noise it never trained on, and whether the
models' probabilities are calibrated."""

from typing import Any

import streamlit as st

from inspection.dashboard import charts, reports, ui

ECE_HELP = (
    "Expected calibration error: over bins of predicted probability, the photo-weighted gap between the "
    "probability and how often it came true (0 is perfect; 0.03 means off by 3 points on average)."
)
ERASURE_HELP = (
    "Share of defective parts that are called defective on the clean photo but ok after noise and routed "
    "denoising: defects the denoiser wiped out along with the noise."
)


def erasure_section(report: dict[str, Any]) -> None:
    st.subheader("Defect erasure")
    c1, c2 = st.columns([1, 3])
    c1.metric(
        "Defects erased by denoising", ui.percent(report["defect_erasure"]), border=True, help=ERASURE_HELP
    )
    c2.caption(
        ERASURE_HELP + " Lower is better; it is the cost of denoising that the gain above does not show."
    )


def realistic_section(report: dict[str, Any]) -> None:
    st.subheader("Realistic noise, never trained on")
    st.caption(
        "Defect accuracy on noise kinds the noise classifier never saw, without denoising and with routed "
        "denoising; *safe path* counts photos the router passed through untouched for want of confidence."
    )
    st.dataframe(
        reports.realistic_frame(report),
        hide_index=True,
        column_config={
            "kind": "noise kind",
            "without": st.column_config.NumberColumn("without denoising", format="percent"),
            "with_denoising": st.column_config.NumberColumn("with routed denoising", format="percent"),
            "gain": st.column_config.NumberColumn("gain (pts)", format="%+.1f pts"),
            "safe_path": st.column_config.NumberColumn("safe path"),
            "routes": "routed to",
        },
    )


def calibration_section(report: dict[str, Any]) -> None:
    st.subheader("Calibration: do the probabilities mean what they say?")
    errors = reports.calibration_errors(report)
    c1, c2, c3 = st.columns([1, 1, 2])
    for col, (name, label) in zip(
        (c1, c2), (("noise", "noise type"), ("defect", "P(defective)")), strict=True
    ):
        value = errors[name]
        col.metric(f"ECE, {label}", "n/a" if value is None else f"{value:.3f}", border=True, help=ECE_HELP)
    c3.caption(
        ECE_HELP + " The router sends a photo down the safe path when its noise probability is low, and the "
        "threshold on P(defective) sets the verdict, so both rely on these numbers."
    )
    st.altair_chart(charts.reliability_chart(reports.calibration_frame(report)), width="stretch")
    st.caption(
        "A dot per bin of predicted probability, sized by its photos; on the dashed diagonal a probability comes "
        "true as often as it says. Noise type: clean and noisy copies of every test photo; P(defective): the "
        "clean photos and the routed noisy copies."
    )


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
        if reports.is_synthetic(latest):
            st.badge(
                "Synthetic data: these numbers are from generated photos, not from photos of real parts",
                icon=":material/science:",
                color="orange",
            )
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
            help="In percentage points (pts) of defect accuracy on noisy photos",
        )
        cols[-1].caption(f"{ref['source']}: {ref['noisy_before']:.1%} → {ref['noisy_after']:.1%}")

        left, right = st.columns([1, 1])
        with left:
            st.subheader("Defect metrics by condition")
            st.altair_chart(charts.headline_chart(headline), width="stretch")
        with right:
            st.subheader("Gain per noise type, beside the reference study")
            st.altair_chart(charts.gain_chart(reports.gain_comparison_frame(latest)), width="stretch")

        st.dataframe(
            reports.in_points(reports.gain_per_type(latest), ["gain"]),
            hide_index=True,
            column_config={
                "noise_type": "noise type",
                "without": st.column_config.NumberColumn("without denoising", format="percent"),
                "with_denoising": st.column_config.NumberColumn("with routed denoising", format="percent"),
                "gain": st.column_config.NumberColumn("gain (pts)", format="%+.1f pts"),
            },
        )
        if latest.get("defect_erasure") is not None:
            erasure_section(latest)
        if latest.get("realistic"):
            realistic_section(latest)
        if latest.get("calibration"):
            calibration_section(latest)

        st.subheader("Compare with an earlier report")
        earlier_refs = refs[1:]
        if not earlier_refs:
            ui.empty_state("Only one report so far; the next evaluation run will appear here for comparison.")
        else:
            earlier_ref = ui.pick_report(earlier_refs, key="compare_report", label="Compare with")
            table = reports.compare_reports(latest, ui.load_report(earlier_ref))
            st.caption(f"**{latest_ref.id}** (latest) against **{earlier_ref.id}**; changes in points (pts)")
            st.dataframe(reports.compare_display(table), hide_index=True)
