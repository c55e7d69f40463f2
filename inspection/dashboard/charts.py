"""Altair charts for the dashboard pages, built from the data frames of the other modules.

Every chart is interactive (tooltips; pan and zoom on time axes) and uses one colour per noise type
throughout, so "periodic" looks the same on every page.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from typing import Any

import altair as alt
import pandas as pd

from inspection import NOISE_TYPES

NOISE_COLORS = alt.Scale(domain=list(NOISE_TYPES), range=["#4c9a2a", "#1f77b4", "#ff7f0e", "#d62728"])
LEVEL_ORDER = ["low", "mid", "high"]
PERCENT = ".1%"
# Axis ticks as 95% or 97.5%: a bare "%" lets Vega pick the digits from the tick step, and over a flat
# series (every value 1.0) it picks six ("100.000000%").
AXIS_PERCENT = ".1~%"
TIME_AXIS = alt.Axis(format="%b %d %H:%M", labelAngle=0, labelOverlap=True, tickCount=8)


def headline_chart(headline: pd.DataFrame) -> alt.Chart:
    """Accuracy, sensitivity and specificity per condition, grouped bars."""
    long = headline.melt(
        id_vars=["label"],
        value_vars=["accuracy", "sensitivity", "specificity"],
        var_name="metric",
        value_name="value",
    ).dropna()
    order = list(headline["label"])
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("metric:N", title=None, axis=alt.Axis(labelAngle=0, labelOverlap=False)),
            xOffset=alt.XOffset("label:N", sort=order),
            y=alt.Y(
                "value:Q",
                title="defect classification",
                scale=alt.Scale(domain=[0.0, 1.0]),
                axis=alt.Axis(format=AXIS_PERCENT),
            ),
            color=alt.Color(
                "label:N",
                title=None,
                sort=order,
                scale=alt.Scale(range=["#4c9a2a", "#d62728", "#1f77b4"]),
                legend=alt.Legend(orient="bottom", direction="horizontal", columns=2),
            ),
            tooltip=["label:N", "metric:N", alt.Tooltip("value:Q", format=PERCENT)],
        )
        .properties(height=280)
    )


def gain_chart(comparison: pd.DataFrame) -> alt.Chart:
    """Accuracy without and with denoising per noise type, and beside them the reference study's figures."""
    frame = comparison.copy()
    is_ref = frame["series"] != "this report"
    frame.loc[is_ref, "noise_type"] = frame.loc[is_ref, "series"].str.replace(
        "reference ", "study ", regex=False
    )
    order = (
        [t for t in NOISE_TYPES if t != "clean"]
        + ["all noisy"]
        + sorted(set(frame.loc[is_ref, "noise_type"]))
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("noise_type:N", title=None, sort=order, axis=alt.Axis(labelAngle=0, labelOverlap=False)),
            xOffset=alt.XOffset("stage:N", sort=["without", "with denoising"]),
            y=alt.Y(
                "accuracy:Q",
                title="defect accuracy on noisy photos",
                scale=alt.Scale(domain=[0.0, 1.0]),
                axis=alt.Axis(format=AXIS_PERCENT),
            ),
            color=alt.Color(
                "stage:N",
                title=None,
                sort=["without", "with denoising"],
                scale=alt.Scale(range=["#bbbbbb", "#1f77b4"]),
                legend=alt.Legend(orient="bottom", direction="horizontal"),
            ),
            opacity=alt.condition(alt.datum.series == "this report", alt.value(1.0), alt.value(0.55)),
            tooltip=["series:N", "noise_type:N", "stage:N", alt.Tooltip("accuracy:Q", format=PERCENT)],
        )
        .properties(height=280)
    )


def reliability_chart(frame: pd.DataFrame) -> alt.LayerChart | alt.FacetChart:
    """Reliability diagram: mean predicted probability against how often it came true, per bin and model,
    dots sized by photos, beside the diagonal of perfect calibration."""
    unit = alt.Scale(domain=[0.0, 1.0])
    fmt = alt.Axis(format=AXIS_PERCENT)
    diagonal = alt.Chart(pd.DataFrame({"p": [0.0, 1.0]})).mark_line(color="#888", strokeDash=[4, 4])
    diagonal = diagonal.encode(x=alt.X("p:Q", scale=unit, axis=fmt), y=alt.Y("p:Q", scale=unit, axis=fmt))
    base = alt.Chart(frame).encode(
        x=alt.X("mean_probability:Q", title="predicted probability (bin mean)", scale=unit, axis=fmt),
        y=alt.Y("observed:Q", title="observed frequency", scale=unit, axis=fmt),
        color=alt.Color(
            "model:N",
            title=None,
            scale=alt.Scale(range=["#1f77b4", "#ff7f0e"]),
            legend=alt.Legend(orient="bottom"),
        ),
    )
    lines = base.mark_line(strokeWidth=1.5)
    dots = base.mark_circle(opacity=0.85).encode(
        size=alt.Size("n:Q", title="photos", scale=alt.Scale(type="sqrt", range=[25, 500]), legend=None),
        tooltip=[
            "model:N",
            alt.Tooltip("low:Q", format=PERCENT, title="bin from"),
            alt.Tooltip("high:Q", format=PERCENT, title="bin to"),
            alt.Tooltip("n:Q", title="photos"),
            alt.Tooltip("mean_probability:Q", format=PERCENT),
            alt.Tooltip("observed:Q", format=PERCENT),
        ],
    )
    return alt.layer(diagonal, lines, dots).properties(height=300)


def confusion_chart(confusion: pd.DataFrame) -> alt.LayerChart:
    """Heatmap of the noise classifier's confusion matrix, rows true, columns predicted, with counts."""
    order = list(dict.fromkeys(confusion["true"]))
    base = alt.Chart(confusion).encode(
        x=alt.X("predicted:N", sort=order, title="predicted", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("true:N", sort=order, title="true"),
    )
    heat = base.mark_rect().encode(
        color=alt.Color("share:Q", title="share of row", scale=alt.Scale(scheme="blues", domain=[0, 1])),
        tooltip=["true:N", "predicted:N", "count:Q", alt.Tooltip("share:Q", format=PERCENT)],
    )
    text = base.mark_text(fontSize=14).encode(
        text="count:Q", color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black"))
    )
    return (heat + text).properties(height=280)


def level_curves_chart(frame: pd.DataFrame, *, title: str = "noise classification accuracy") -> alt.Chart:
    """Accuracy against noise level bin, one curve per noise type."""
    return (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=70))
        .encode(
            x=alt.X("level_bin:N", sort=LEVEL_ORDER, title="noise level", axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "accuracy:Q", title=title, scale=alt.Scale(zero=False), axis=alt.Axis(format=AXIS_PERCENT)
            ),
            color=alt.Color("noise_type:N", title="noise type", scale=NOISE_COLORS),
            tooltip=["noise_type:N", "level_bin:N", alt.Tooltip("accuracy:Q", format=PERCENT)],
        )
        .properties(height=280)
        .interactive()
    )


def quality_box_chart(samples: pd.DataFrame, metric: str) -> alt.FacetChart:
    """Distribution of ``metric`` (``psnr`` or ``ssim``) per denoising method, one panel per noise type.

    Methods are told apart by colour, named in the legend: a panel is too narrow for every method's name under
    its box.
    """
    title = {"psnr": "PSNR (dB)", "ssim": "SSIM"}.get(metric, metric)
    order = [t for t in NOISE_TYPES if t in set(samples["noise_type"])]
    methods = sorted(set(samples["method"]))
    return (
        alt.Chart(samples)
        .mark_boxplot(extent="min-max", size=18)
        .encode(
            x=alt.X("method:N", title=None, sort=methods, axis=None),
            y=alt.Y(f"{metric}:Q", title=title, scale=alt.Scale(zero=False)),
            color=alt.Color(
                "method:N",
                title="method",
                sort=methods,
                scale=alt.Scale(domain=methods, scheme="tableau10"),
                legend=alt.Legend(orient="bottom", direction="horizontal"),
            ),
            tooltip=["noise_type:N", "method:N", "level_bin:N", alt.Tooltip(f"{metric}:Q", format=".3g")],
        )
        # Three panels of six methods fit a 1400 px window beside the sidebar (at 56 px the third was cut off).
        .properties(width=alt.Step(38), height=240)
        .facet(column=alt.Column("noise_type:N", title=None, sort=order))
        .resolve_scale(x="independent")
    )


def station_series_chart(frame: pd.DataFrame, field: str, title: str, *, percent: bool = False) -> alt.Chart:
    """One line per station over time, with a dot per bucket so a single bucket shows; drag to pan, scroll to
    zoom."""
    axis = alt.Axis(format=AXIS_PERCENT) if percent else alt.Axis()
    return (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=40), interpolate="monotone")
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=TIME_AXIS),
            # padding: a dot on the largest value (one bucket) stays inside the plot, not half cut off
            y=alt.Y(f"{field}:Q", title=title, axis=axis, scale=alt.Scale(zero=True, padding=8)),
            color=alt.Color("station_id:N", title="station"),
            tooltip=[
                alt.Tooltip("station_id:N"),
                alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"),
                alt.Tooltip(f"{field}:Q", format=PERCENT if percent else ",.3g"),
            ],
        )
        .properties(height=240)
        .interactive(bind_y=False)
    )


P_CHART_DATA = "p_chart"


def p_chart(frame: pd.DataFrame, width: int = 820) -> dict[str, Any]:
    """Each station's defect rate per bucket against its control limits, one row per station, as a Vega-Lite
    spec for ``st.vega_lite_chart`` carrying its rows as a named dataset.

    The grey band is the fleet's limits, the dashed lines the station's own (absent for a new station); a red
    dot lies outside either. Takes :func:`inspection.dashboard.spc.p_chart_frame` rows. The spec is built
    through Altair once (:func:`p_chart_spec`): building and converting this layered facet chart took
    0.1-0.15 s of every render of the Stations page.
    """
    data = frame.assign(
        mid=frame["time"] + (frame["time_end"] - frame["time"]) / 2,
        state=frame["outside"].map(lambda s: "outside limits" if s else "within limits"),
    )
    digest = hashlib.sha256(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes()).hexdigest()
    name = f"{P_CHART_DATA}-{digest[:16]}"  # by content, as Streamlit names an Altair chart's data
    spec = copy.deepcopy(p_chart_spec(width))
    spec["data"] = {"name": name}
    spec["datasets"] = {name: data}
    return spec


@functools.cache
def p_chart_spec(width: int) -> dict[str, Any]:
    """The p-chart's Vega-Lite spec, reading the dataset named :data:`P_CHART_DATA`."""
    # Channels as objects, not "field:type" strings: Altair turns each string through a from_dict that costs
    # ~15 ms here, which made this chart take a third of a second to build.
    x = alt.X("time:T", title="time (UTC)", axis=TIME_AXIS)
    end = alt.X2("time_end:T")
    y_axis = alt.Axis(format=AXIS_PERCENT)
    band = (
        alt.Chart()
        .mark_rect(color="#bbbbbb", opacity=0.35)
        .encode(
            x=x,
            x2=end,
            y=alt.Y("fleet_lcl:Q", title="defect rate", axis=y_axis, scale=alt.Scale(zero=True, padding=8)),
            y2=alt.Y2("fleet_ucl:Q"),
        )
    )
    fleet_rate = alt.Chart().mark_rule(color="#888888").encode(x=x, x2=end, y=alt.Y("fleet_rate:Q"))
    own = [
        alt.Chart().mark_rule(color="#1f77b4", strokeDash=dash).encode(x=x, x2=end, y=alt.Y(f"{col}:Q"))
        for col, dash in (("own_rate", [1, 0]), ("own_lcl", [4, 3]), ("own_ucl", [4, 3]))
    ]
    line = alt.Chart().mark_line(color="#333333", strokeWidth=1).encode(x=alt.X("mid:T"), y=alt.Y("p:Q"))
    dots = (
        alt.Chart()
        .mark_circle(size=45, opacity=1)
        .encode(
            x=alt.X("mid:T"),
            y=alt.Y("p:Q"),
            color=alt.Color(
                "state:N",
                title=None,
                scale=alt.Scale(domain=["within limits", "outside limits"], range=["#333333", "#d62728"]),
                legend=alt.Legend(orient="bottom", direction="horizontal"),
            ),
            tooltip=[
                alt.Tooltip("station_id:N"),
                alt.Tooltip("time:T", format="%Y-%m-%d %H:%M", title="from"),
                alt.Tooltip("scored:Q"),
                alt.Tooltip("defective:Q"),
                alt.Tooltip("p:Q", format=PERCENT, title="defect rate"),
                alt.Tooltip("outside:N", title="outside the limits of"),
                alt.Tooltip("fleet_lcl:Q", format=PERCENT, title="fleet lower limit"),
                alt.Tooltip("fleet_ucl:Q", format=PERCENT, title="fleet upper limit"),
                alt.Tooltip("own_lcl:Q", format=PERCENT, title="own lower limit"),
                alt.Tooltip("own_ucl:Q", format=PERCENT, title="own upper limit"),
            ],
        )
    )
    spec = (
        alt.layer(band, fleet_rate, *own, line, dots, data=alt.NamedData(P_CHART_DATA))
        .properties(height=110, width=width)
        .facet(row=alt.Row("station_id:N", title=None))
        .to_dict()
    )
    spec.pop("config", None)  # Altair's default theme (a 300 px view); the chart configures nothing itself
    return spec


def noise_mix_chart(frame: pd.DataFrame, bucket_seconds: int, width: int = 820) -> alt.FacetChart:
    """Share of each noise type per bucket, stacked bars one bucket wide, one row per station.

    The stack is laid out here (``top``, ``bottom``) rather than by Vega-Lite, which does not stack bars that
    span ``x`` to ``x2``.
    """
    order = list(NOISE_TYPES)
    data = frame.assign(
        time_end=frame["time"] + pd.Timedelta(seconds=bucket_seconds),
        rank=frame["noise_type"].map({t: i for i, t in enumerate(order)}),
    ).sort_values(["station_id", "time", "rank"])
    data["top"] = data.groupby(["station_id", "time"])["share"].cumsum()
    data["bottom"] = data["top"] - data["share"]
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=TIME_AXIS),
            x2=alt.X2("time_end:T"),
            y=alt.Y(
                "bottom:Q", title="share", axis=alt.Axis(format=AXIS_PERCENT), scale=alt.Scale(domain=[0, 1])
            ),
            y2=alt.Y2("top:Q"),
            color=alt.Color("noise_type:N", title="noise type", scale=NOISE_COLORS, sort=order),
            tooltip=[
                alt.Tooltip("station_id:N"),
                alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("noise_type:N"),
                alt.Tooltip("n:Q"),
                alt.Tooltip("share:Q", format=PERCENT),
            ],  # fmt: skip
        )
        .properties(height=90, width=width)
        .facet(row=alt.Row("station_id:N", title=None))
    )


def probabilities_chart(frame: pd.DataFrame) -> alt.Chart:
    """The noise classifier's probability per type for one photo."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=AXIS_PERCENT)),
            y=alt.Y("noise_type:N", sort=list(NOISE_TYPES), title=None, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color("noise_type:N", scale=NOISE_COLORS, legend=None),
            tooltip=["noise_type:N", alt.Tooltip("probability:Q", format=PERCENT)],
        )
        .properties(height=160)
    )


def metrics_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """Each numeric metric across model versions, one small panel per task and metric."""
    data = frame.assign(panel=frame["task"] + " · " + frame["metric"])
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("version:N", title=None, axis=alt.Axis(labelAngle=-30, labelOverlap=False)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=True)),  # bars start at zero, or they mislead
            color=alt.Color("version:N", legend=None),
            tooltip=["task:N", "version:N", "metric:N", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(width=170, height=150)
        .facet(facet=alt.Facet("panel:N", title=None), columns=4)
        .resolve_scale(x="independent", y="independent")
    )
