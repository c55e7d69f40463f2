"""Models: every known model version with its metrics, and which one is in use."""

import streamlit as st

from inspection.dashboard import charts, ui, versions
from inspection.dashboard.text import shown

st.title("Models")
st.caption("Checkpoint folders under the models directory, and the versions recorded in the database.")

with ui.guard("the models page"):
    src = ui.sources()
    ui.sidebar(src)
    engine = ui.optional_engine(src)
    frame = ui.models_frame(src, engine)
    if frame.empty:
        ui.empty_state(
            f"No model versions in `{src.models_dir}` or in the records database. {versions.FILL_HINT}",
            "inspection train --help   # or: INSPECTION_MODELS=/path/to/models inspection dashboard",
        )
    else:
        in_use = versions.versions_in_use(frame)
        cols = st.columns(max(1, len(in_use)))
        for col, (task, version) in zip(cols, sorted(in_use.items()), strict=False):
            col.metric(f"In use: {shown(task)}", shown(version), border=True)
        st.dataframe(
            frame, hide_index=True, column_config={"in_use": st.column_config.CheckboxColumn("in use")}
        )
        metrics = versions.metrics_long_frame(src.models_dir, engine)
        if not metrics.empty:
            st.subheader("Metrics by version")
            st.altair_chart(charts.metrics_chart(metrics))
