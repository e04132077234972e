"""benchmarks/d_forwards.py: the trainer's two D forwards and the one-forward variant compute
the same losses and gradients, and both are timed."""

import json
import runpy
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "d_forwards.py"


def test_both_variants_agree_and_are_timed(tmp_path, monkeypatch):
    out = tmp_path / "d.json"
    argv = ["--preset", "synth-tiny", "--reps", "2", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    result = json.loads(out.read_text())
    assert [r["variant"] for r in result["rows"]] == ["two forwards (trainer)", "one forward"]
    assert all(r["median_ms"] > 0 and r["best_ms"] <= r["median_ms"] for r in result["rows"])
    assert result["loss_rel_diff"] < 1e-6 and result["grad_max_rel_diff"] < 1e-5
