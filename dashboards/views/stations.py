"""Stations: each station's defect rate on a p-chart against the fleet's and its own control limits, and what
it is seeing over time; warnings when a station is out of control, drifts from its own baseline, or when most of
its recent photos lie beyond the range of the models' training photos."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from inspection.dashboard import charts, spc, stations, ui
from inspection.dashboard.drift import DriftFinding
from inspection.ood import WARN_SHARE, WARN_WINDOW

TABS = {
    "Per station": "Each station's records, defect rate, control and drift verdicts and out-of-range share.",
    "Noise-type mix": "The share of each noise type the router named, per station: a move is noise-mix drift.",
    "Parts scored": "Parts scored per station: the denominators of the p-chart above.",
    "Mean noise confidence": "The router's mean confidence per station: a fall is confidence drift.",
}


def station_table(
    summary: pd.DataFrame, control: stations.DefectControl, findings: list[DriftFinding], ood: pd.DataFrame
) -> None:
    """One row per station: its counts, p-chart and drift verdicts, and its share of photos out of range."""
    ood_share = f"OOD, last {WARN_WINDOW}"
    ood_cols = ood[["station_id", "ood_share", "ood_photos"]].rename(
        columns={"ood_share": ood_share, "ood_photos": "checked"}
    )
    table = summary.merge(stations.control_frame(control), on="station_id", how="left")
    table = table.merge(stations.drift_frame(findings), on="station_id", how="left")
    order = [
        "station_id", "records", "scored", "rejected", "defective", "defect_rate", "control", "held to",
        ood_share, "mean_confidence", "drift", "mix moved", "confidence change", "first", "last", "checked",
    ]  # fmt: skip
    st.dataframe(
        table.merge(ood_cols, on="station_id", how="left"),
        hide_index=True,
        column_order=order,
        column_config={
            "defect_rate": st.column_config.NumberColumn("defect rate", format="percent"),
            "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.3f"),
            "mix moved": st.column_config.NumberColumn(format="percent"),
            "confidence change": st.column_config.NumberColumn(format="%+.3f"),
            "held to": st.column_config.TextColumn(
                help="The references the p-chart holds the station to: its own baseline window, the rest of "
                "the fleet, or both"
            ),
            ood_share: st.column_config.NumberColumn(
                format="percent",
                help=f"Out of distribution: the share of the station's last {WARN_WINDOW} photos that lie "
                "beyond the range of the models' training photos",
            ),
            "checked": st.column_config.NumberColumn(
                help="Photos the share is over: the newest with an out-of-distribution check "
                "(scored by a bundle with an OOD model)"
            ),
            "first": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "last": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )


st.title("Stations")
st.caption("From the records database. Times are UTC.")

with ui.guard("the stations page"):
    src = ui.sources()
    ui.sidebar(src)
    engine = ui.require_db(src)
    if engine is not None:
        url = src.db_url
        with st.sidebar.expander("Drift and control rule", expanded=False):
            recent_h = st.slider("Recent window (hours)", 6, 72, 24, step=6, key="recent_h")
            baseline_d = st.slider("Baseline window (days)", 1, 30, 7, key="baseline_d")
            st.caption(
                "Drift: the noise mix moves by ≥15% (and χ² p<0.001) or mean confidence falls by ≥0.10. "
                "Control: the recent window's defect rate lies outside p̄ ± 3·√(p̄(1−p̄)/n), p̄ being the "
                "rest of the fleet's rate or the station's own over its baseline window."
            )

        ui.prefetch_stations(url, float(recent_h), float(baseline_d), str(src.models_dir))
        control = ui.defect_control(url, float(recent_h), float(baseline_d))
        out_of_control = [f for f in control.findings if f.flagged]
        for f in out_of_control:
            st.warning(stations.defect_warning(f), icon=":material/report:")
        findings = ui.station_drift(url, float(recent_h), float(baseline_d))
        drifted = [f for f in findings if f.drifted]
        for f in drifted:
            st.warning(stations.drift_warning(f), icon=":material/warning:")
        ood = ui.station_ood(url, str(src.models_dir))
        out_of_range = ood[ood["ood_warning"].notna()]
        for row in out_of_range.itertuples():
            st.warning(stations.ood_warning(row.station_id, row.ood_warning), icon=":material/explore_off:")
        ui.show_notes(
            stations.quiet_notes(
                []
                if out_of_control
                else [f.station_id for f in control.findings if f.status == "in control"],
                [f.station_id for f in control.findings if f.status == "insufficient"],
                clear="Every station's defect rate is within its control limits",
                needs=f"scored parts in the recent window and {spc.MIN_REFERENCE} to set its limits",
            )
        )
        ui.show_notes(
            stations.quiet_notes(
                [] if drifted else [f.station_id for f in findings if f.status == "stable"],
                [f.station_id for f in findings if f.status == "insufficient"],
                clear="No station drifts from its own baseline",
                needs="50 scored photos in both the recent and the baseline window",
            )
        )

        summary = ui.station_summary(url)
        total, scored = int(summary["records"].sum()), int(summary["scored"].sum())
        c = st.columns(3)
        c[0].metric("Records", f"{total:,}", border=True)
        c[1].metric("Stations", len(summary), border=True)
        c[2].metric(
            "Defect rate", ui.percent(summary["defective"].sum() / scored if scored else None), border=True
        )
        c = st.columns(3)
        c[0].metric(
            "Stations outside limits",
            len(out_of_control),
            border=True,
            help="Stations whose recent defect rate lies outside their p-chart limits (their own or the fleet's)",
        )
        c[1].metric("Stations drifting", len(drifted), border=True)
        c[2].metric(
            "Stations out of range",
            len(out_of_range),
            border=True,
            help=f"Stations with more than {WARN_SHARE:.0%} of their last {WARN_WINDOW} photos beyond the range "
            "of the models' training photos (out of distribution)",
        )

        span = ui.time_span(url)
        ranges = {"All records": None, "Last 7 days": timedelta(days=7), "Last 24 hours": timedelta(hours=24)}
        choice = (
            st.segmented_control("Time range", list(ranges), default="All records", key="range")
            or "All records"
        )
        start = span.end - ranges[choice] if ranges[choice] and span else None
        bucket, bucket_name = (
            stations.bucket_for(span, ranges[choice]) if span else stations.choose_bucket(timedelta(days=1))
        )
        series = ui.station_timeseries(url, bucket, start, None)
        st.caption(f"One point per {bucket_name}.")
        st.caption(stations.unauthenticated_line(ui.unauthenticated_attempts(url, start, None)))

        st.subheader("Defect rate against control limits (p-chart)")
        st.caption(
            "Grey band: the limits from the rest of the fleet. Dashed blue: the limits from the station's own "
            "baseline window (none yet for a new station). Limits widen where a bucket holds few parts; a red "
            "dot lies outside either."
        )
        st.vega_lite_chart(spec=charts.p_chart(spc.p_chart_frame(series, control.references, bucket)))

        # One tab at a time, the table first: a tab's chart is built and drawn only while it is open (each
        # Vega-Lite chart cost the browser 0.2-0.5 s of the first render). The open tab is in the URL (?view=...),
        # so a link opens the same view.
        old_link = st.query_params.get("chart")  # ?chart=..., links from before the table became a tab
        table_tab, mix_tab, scored_tab, confidence_tab = st.tabs(
            list(TABS),
            default=old_link if old_link in TABS else None,
            key="view",
            on_change="rerun",
            bind="query-params",
        )
        if table_tab.open:
            with table_tab:
                st.caption(TABS["Per station"])
                station_table(summary, control, findings, ood)
        if mix_tab.open:
            with mix_tab:
                st.caption(TABS["Noise-type mix"])
                st.altair_chart(charts.noise_mix_chart(ui.noise_mix(url, bucket, start, None), bucket))
        if scored_tab.open:
            with scored_tab:
                st.caption(TABS["Parts scored"])
                st.altair_chart(
                    charts.station_series_chart(series, "scored", f"parts per {bucket_name}"), width="stretch"
                )
        if confidence_tab.open:
            with confidence_tab:
                st.caption(TABS["Mean noise confidence"])
                st.altair_chart(
                    charts.station_series_chart(series, "mean_confidence", "mean confidence"), width="stretch"
                )
