"""benchmarks/winograd_conv.py runs end to end."""

import json
import runpy
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "winograd_conv.py"


def test_times_both_variants_and_reports_their_errors(tmp_path, monkeypatch, capsys):
    out = tmp_path / "winograd.json"
    argv = [str(SCRIPT), "--preset", "synth-tiny", "--reps", "2", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPT), run_name="__main__")
    result = json.loads(out.read_text())
    assert {(r["pass"], r["variant"]) for r in result["rows"]} == {
        (p, v)
        for p in ("forward", "forward+backward")
        for v in ("direct (oneDNN)", "winograd F(4x4,3x3)")
    }
    assert all(r["median_ms"] > 0 for r in result["rows"])
    for err in result["error_vs_float64"].values():
        assert set(err) == {"out", "grad_x", "grad_w"} and all(0 < e < 1e-4 for e in err.values())
    assert "error vs float64" in capsys.readouterr().out
