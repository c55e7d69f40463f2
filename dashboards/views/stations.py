"""Stations: what each station is seeing over time, and a warning when one drifts from its own baseline or when
most of its recent photos lie beyond the range of the models' training photos."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from inspection.dashboard import charts, stations, ui
from inspection.ood import WARN_SHARE, WARN_WINDOW

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
        ood = ui.station_ood(url, str(src.models_dir))
        out_of_range = ood[ood["ood_warning"].notna()]
        for row in out_of_range.itertuples():
            st.warning(stations.ood_warning(row.station_id, row.ood_warning), icon=":material/explore_off:")

        summary = ui.station_summary(url)
        total, scored = int(summary["records"].sum()), int(summary["scored"].sum())
        c = st.columns(5)
        c[0].metric("Records", f"{total:,}", border=True)
        c[1].metric("Stations", len(summary), border=True)
        c[2].metric(
            "Defect rate", ui.percent(summary["defective"].sum() / scored if scored else None), border=True
        )
        c[3].metric("Stations drifting", len(drifted), border=True)
        c[4].metric(
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
        ood_share = f"OOD, last {WARN_WINDOW}"
        ood_cols = ood[["station_id", "ood_share", "ood_photos"]].rename(
            columns={"ood_share": ood_share, "ood_photos": "checked"}
        )
        table = summary.merge(drift_cols, on="station_id", how="left")
        order = list(table.columns)
        order.insert(order.index("defect_rate") + 1, ood_share)  # beside the defect rate: what to trust it by
        st.dataframe(
            table.merge(ood_cols, on="station_id", how="left"),
            hide_index=True,
            column_order=[*order, "checked"],
            column_config={
                "defect_rate": st.column_config.NumberColumn("defect rate", format="percent"),
                "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.3f"),
                "mix moved": st.column_config.NumberColumn(format="percent"),
                "confidence change": st.column_config.NumberColumn(format="%+.3f"),
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
