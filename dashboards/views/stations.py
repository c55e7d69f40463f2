"""Stations: what each station is seeing over time, and a warning when one drifts from its own baseline."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from inspection.dashboard import charts, stations, ui

st.title("Stations")
st.caption("From the records database. Times are UTC.")

with ui.guard("the stations page"):
    src = ui.sources()
    ui.sidebar(src)
    engine = ui.require_db(src)
    if engine is not None:
        url = src.db_url
        with st.sidebar.expander("Drift rule", expanded=False):
            recent_h = st.slider("Recent window (hours)", 6, 72, 24, step=6, key="recent_h")
            baseline_d = st.slider("Baseline window (days)", 1, 30, 7, key="baseline_d")
            st.caption(
                "Alarm when the noise mix moves by ≥15% (and χ² p<0.001) or mean confidence falls by ≥0.10."
            )

        findings = ui.station_drift(url, float(recent_h), float(baseline_d))
        drifted = [f for f in findings if f.drifted]
        for f in drifted:
            st.warning(stations.drift_warning(f), icon=":material/warning:")
        if findings and not drifted:
            st.success("No station drifts from its own baseline.", icon=":material/check_circle:")

        summary = ui.station_summary(url)
        total, scored = int(summary["records"].sum()), int(summary["scored"].sum())
        c = st.columns(4)
        c[0].metric("Records", f"{total:,}", border=True)
        c[1].metric("Stations", len(summary), border=True)
        c[2].metric(
            "Defect rate", ui.percent(summary["defective"].sum() / scored if scored else None), border=True
        )
        c[3].metric("Stations drifting", len(drifted), border=True)

        span = ui.time_span(url)
        ranges = {"All records": None, "Last 7 days": timedelta(days=7), "Last 24 hours": timedelta(hours=24)}
        choice = (
            st.segmented_control("Time range", list(ranges), default="All records", key="range")
            or "All records"
        )
        start = span.end - ranges[choice] if ranges[choice] and span else None
        window = (span.end - (start or span.start)) if span else timedelta(days=1)
        full = (span.end - span.start) if span else window
        per_station = int(total / max(1, len(summary)) * min(1.0, window / full if full else 1.0))
        bucket, bucket_name = stations.choose_bucket(window, per_station=per_station)
        series = ui.station_timeseries(url, bucket, start, None)
        st.caption(f"One point per {bucket_name}.")
        st.caption(stations.unauthenticated_line(ui.unauthenticated_attempts(url, start, None)))

        left, right = st.columns(2)
        with left:
            st.subheader("Parts scored")
            st.altair_chart(
                charts.station_series_chart(series, "scored", f"parts per {bucket_name}"), width="stretch"
            )
        with right:
            st.subheader("Defect rate")
            st.altair_chart(
                charts.station_series_chart(series, "defect_rate", "defect rate", percent=True),
                width="stretch",
            )

        st.subheader("Mean noise confidence")
        st.altair_chart(
            charts.station_series_chart(series, "mean_confidence", "mean confidence"), width="stretch"
        )
        st.subheader("Noise-type mix")
        st.altair_chart(charts.noise_mix_chart(ui.noise_mix(url, bucket, start, None)))

        st.subheader("Per station")
        drift_cols = pd.DataFrame(
            [
                {
                    "station_id": f.station_id,
                    "drift": f.status,
                    "mix moved": f.tv_distance,
                    "confidence change": f.confidence_change,
                }
                for f in findings
            ],
            columns=["station_id", "drift", "mix moved", "confidence change"],
        )
        st.dataframe(
            summary.merge(drift_cols, on="station_id", how="left"),
            hide_index=True,
            column_config={
                "defect_rate": st.column_config.NumberColumn("defect rate", format="percent"),
                "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.3f"),
                "mix moved": st.column_config.NumberColumn(format="percent"),
                "confidence change": st.column_config.NumberColumn(format="%+.3f"),
                "first": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                "last": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            },
        )
