"""Models: a card per bundle version (training data and fingerprint, validation, golden set, promotion decision,
parent), every known model version listed once, and which one is in use."""

import streamlit as st

from inspection.dashboard import cards, charts, ui, versions
from inspection.dashboard.text import escape_markdown, shown


def show_card(card: cards.ModelCard) -> None:
    """One bundle version's card: text first, then numbers, then the tables behind them."""
    with st.container(border=True):
        title = f"#### `{card.version}`" + (" · live" if card.live else "")
        st.markdown(title)
        if card.problem:
            st.error(f"This bundle cannot be read: {escape_markdown(card.problem)}", icon=":material/error:")
            return
        if card.synthetic_only:
            st.badge("Synthetic data only", icon=":material/science:", color="orange")
        st.markdown(cards.card_summary(card))
        metrics = cards.headline_metrics(card)
        if metrics:
            st.markdown("**Validation** (held-out training photos)")
            for row in range(0, len(metrics), 4):
                for col, (label, value) in zip(st.columns(4), metrics[row : row + 4], strict=False):
                    col.metric(label, f"{value:.3g}" if abs(value) >= 1.5 else f"{value:.1%}")
        st.markdown("**Golden set**")
        if card.golden:
            st.caption(cards.golden_caption(card))
            g = card.golden
            c = st.columns(4)
            for col, key in zip(
                c, ("accuracy", "recall", "balanced_accuracy", "decided without review"), strict=True
            ):
                col.metric(key.replace("_", " "), ui.percent(g.get(key)))
        else:
            st.caption("Not evaluated on the golden set (a promotion with --golden writes these numbers).")
        st.markdown("**Promotion**")
        st.markdown(escape_markdown(cards.decision_text(card)))
        comparison = cards.comparison_frame(card.promotion)
        if not comparison.empty:
            st.dataframe(
                comparison,
                hide_index=True,
                column_config={
                    "live": st.column_config.NumberColumn(format="percent"),
                    "candidate": st.column_config.NumberColumn(format="percent"),
                },
            )
        with st.expander("Training data, all validation metrics and the commands"):
            st.dataframe(cards.training_frame(card), hide_index=True)
            st.dataframe(cards.validation_frame(card), hide_index=True)
            golden = cards.golden_frame(card)
            if not golden.empty:
                st.dataframe(golden, hide_index=True)
            if card.commands:
                st.code("\n".join(card.commands), language="bash")


st.title("Models")
st.caption(
    "Bundles and checkpoint folders under the models directory, and the versions recorded in the database."
)

with ui.guard("the models page"):
    src = ui.sources()
    ui.sidebar(src)
    engine = ui.optional_engine(src)
    frame = ui.models_frame(src, engine)
    bundle_cards = cards.bundle_cards(src.models_dir, engine)
    if frame.empty and not bundle_cards:
        ui.empty_state(
            f"No model versions in `{src.models_dir}` or in the records database. {versions.FILL_HINT}",
            "inspection train --help   # or: INSPECTION_MODELS=/path/to/models inspection dashboard",
        )
    else:
        in_use = versions.versions_in_use(frame)
        cols = st.columns(max(1, len(in_use)))
        for col, (task, version) in zip(cols, sorted(in_use.items()), strict=False):
            col.metric(f"In use: {shown(task)}", shown(version), border=True)
        if bundle_cards:
            st.subheader("Model cards")
            for card in bundle_cards:
                show_card(card)
        st.subheader("Model versions")
        st.dataframe(
            frame, hide_index=True, column_config={"in_use": st.column_config.CheckboxColumn("in use")}
        )
        metrics = versions.metrics_long_frame(src.models_dir, engine)
        if not metrics.empty:
            st.subheader("Metrics by version")
            st.altair_chart(charts.metrics_chart(metrics))
