"""benchmarks/infer_speed.py runs end to end on a tiny preset and reports every backend."""

import json
import runpy
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "infer_speed.py"


def test_reports_eager_in_both_memory_orders_and_onnx_runtime(tmp_path, monkeypatch, capsys):
    out = tmp_path / "infer.json"
    argv = ["--preset", "synth-tiny", "--batches", "1", "2", "--warmup", "0", "--reps", "1"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv, "--json", str(out)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rows = json.loads(out.read_text())["rows"]
    assert [(r["backend"], r["batch"]) for r in rows] == [
        (backend, n) for backend in ("eager", "eager NHWC", "onnxruntime") for n in (1, 2)
    ]
    assert all(r["ms_per_call"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert "eager NHWC" in capsys.readouterr().out
