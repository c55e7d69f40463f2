import json

import pytest

from inspection import summary


def test_summary_rewrites_only_the_sections_named(tmp_path, monkeypatch):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text("{}")
    (tmp_path / "bench.json").write_text("{}")
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"generalisation": {"x": 1}, "bench": "old", "realistic": "old"}))
    monkeypatch.setattr(summary, "summarise", lambda r, b, s: {"bench": "new", "realistic": {"jpeg": 0.9}})
    args = [str(tmp_path / "report"), str(tmp_path / "bench.json"), "--out", str(out)]

    assert summary.main([*args, "--sections", "realistic"]) == 0
    assert json.loads(out.read_text()) == {
        "generalisation": {"x": 1},
        "bench": "old",
        "realistic": {"jpeg": 0.9},
    }
    assert summary.main(args) == 0
    assert json.loads(out.read_text())["bench"] == "new"
    with pytest.raises(SystemExit):
        summary.main([*args, "--sections", "realistc"])
