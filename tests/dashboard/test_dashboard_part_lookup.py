"""Part lookup: deep links (``?part=`` and ``?record=``), every filter with the exact count, the export of the
whole query, and a page that leaves torch unloaded until asked to denoise."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from helpers.dashboard import APP
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from inspection.dashboard import db, parts
from inspection.store.models import Inspection

T = Inspection.__table__


def open_lookup(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/part_lookup.py")
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def count(env: dict[str, str], *conds: object) -> int:
    with db.open_engine(env["INSPECTION_DB"]).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(T).where(*conds)).scalar_one())


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_part_link_opens_only_that_part(dashboard_env: dict[str, str]) -> None:
    engine = db.open_engine(dashboard_env["INSPECTION_DB"])
    target = parts.query_parts(
        engine, parts.PartQuery(stations=("line-2",), verdicts=("defective",)), limit=1
    )
    part_id = str(target["part_id"].iloc[0])
    at = open_lookup(part=part_id)
    assert at.text_input(key="part_id").value == part_id
    assert list(at.dataframe[0].value["part_id"]) == [part_id]
    assert "1 matching record, newest first." in captions(at)
    assert [m.value for m in at.metric if m.label == "Verdict"] == ["defective"]
    assert at.selectbox(key="record").options == [parts.record_labels(target)[int(target["id"].iloc[0])]]


def test_record_link_opens_only_that_record(dashboard_env: dict[str, str]) -> None:
    engine = db.open_engine(dashboard_env["INSPECTION_DB"])
    record_id = int(parts.query_parts(engine, parts.PartQuery(stations=("line-3",)), limit=1)["id"].iloc[0])
    at = open_lookup(record=str(record_id))
    assert list(at.dataframe[0].value["id"]) == [record_id]
    assert f"Linked record #{record_id}." in captions(at)
    assert any(f"record #{record_id}" in c for c in captions(at))
    assert (
        at.text_input(key="part_id") is not None if False else not [t for t in at.text_input]
    )  # no search form
    at = open_lookup(record="12abc")
    assert "a record id is a whole number" in at.error[0].value


def test_filters_and_the_exact_count(dashboard_env: dict[str, str]) -> None:
    at = open_lookup()
    assert "4,000 matching records; the newest 200 are listed (export to get them all)." in captions(at)
    assert len(at.dataframe[0].value) == 200
    at.multiselect(key="stations").set_value(["line-2"])
    at.multiselect(key="verdicts").set_value(["ok"])
    at.multiselect(key="noise_types").set_value(["clean", "periodic"])
    at.selectbox(key="ood").set_value("no")
    at.run()
    expected = count(
        dashboard_env, T.c.station_id == "line-2", T.c.verdict == "ok",
        T.c.noise_type.in_(["clean", "periodic"]), T.c.ood.is_(False),
    )  # fmt: skip
    assert 200 < expected < 4000
    assert f"{expected:,} matching records; the newest 200 are listed (export to get them all)." in captions(
        at
    )
    shown = at.dataframe[0].value
    assert set(shown["station_id"]) == {"line-2"} and set(shown["verdict"]) == {"ok"}
    assert set(shown["noise_type"]) <= {"clean", "periodic"} and not shown["ood"].any()


def test_ood_and_kind_filters_count_exactly(dashboard_env: dict[str, str]) -> None:
    engine = db.open_engine(dashboard_env["INSPECTION_DB"])
    flagged = parts.PartQuery(ood=True, stations=("line-4",))
    assert parts.count_parts(engine, flagged) == count(
        dashboard_env, T.c.ood.is_(True), T.c.station_id == "line-4"
    )
    unchecked = parts.count_parts(engine, parts.PartQuery(ood="unknown"))
    assert unchecked == count(dashboard_env, T.c.ood.is_(None)) and unchecked > 0  # the rejected frames
    assert parts.count_parts(engine, parts.PartQuery(kinds=("porosity",))) == 0


def test_csv_export_holds_the_whole_query(dashboard_env: dict[str, str]) -> None:
    engine = db.open_engine(dashboard_env["INSPECTION_DB"])
    query = parts.PartQuery(stations=("line-1",), verdicts=("ok",))
    every = parts.query_parts(engine, query, limit=None, columns=parts.EXPORT_COLUMNS)
    csv = pd.read_csv(io.BytesIO(parts.export_csv(every)))
    with engine.connect() as conn:
        ids = set(
            conn.execute(select(T.c.id).where(T.c.station_id == "line-1", T.c.verdict == "ok")).scalars()
        )
    assert len(csv) == len(ids) > parts.SHOWN_ROWS and set(csv["id"]) == ids
    assert list(csv.columns) == list(parts.EXPORT_COLUMNS)
    assert set(csv["station_id"]) == {"line-1"} and set(csv["verdict"]) == {"ok"}
    assert csv["created_at"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").all()
    assert pd.read_parquet(io.BytesIO(parts.export_parquet(every)))["id"].tolist() == csv["id"].tolist()
    labels = [b.proto.label for b in open_lookup().get("download_button")]
    assert labels == ["Export CSV", "Export Parquet"]


def torch_loaded_after(script: str) -> list[str]:
    """Run ``script`` in a fresh interpreter; it prints whether torch is loaded at each point it asks."""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ},
                          timeout=300, check=True)  # fmt: skip
    return done.stdout.split()


def test_page_modules_leave_torch_unloaded() -> None:
    source = Path(APP).parent / "views" / "part_lookup.py"
    imports = [
        line.split()[1] for line in source.read_text().splitlines() if line.startswith(("import ", "from "))
    ]
    assert not [m for m in imports if m.split(".")[0] == "torch"]
    line = next(
        x for x in source.read_text().splitlines() if x.startswith("from inspection.dashboard import")
    )
    modules = [f"inspection.dashboard.{name.strip()}" for name in line.split(" import ")[1].split(",")]
    script = f"import sys\nimport {', '.join(modules)}\nprint('torch' in sys.modules)\n"
    assert torch_loaded_after(script) == ["False"]


def test_page_leaves_torch_unloaded_until_asked_to_denoise(dashboard_env: dict[str, str]) -> None:
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60); at.run()\n"
        "at.switch_page('views/part_lookup.py'); at.run()\n"
        "assert not at.exception and at.metric\n"
        "print('torch' in sys.modules)\n"
        "at.toggle(key='denoise').set_value(True); at.run()\n"
        "print('torch' in sys.modules)\n"
    )
    assert torch_loaded_after(script) == ["False", "True"]
