"""benchmarks/conv_small_maps.py runs end to end on a tiny preset, in both memory orders, and
its two forms of each conv agree."""

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "conv_small_maps.py"


@pytest.mark.parametrize("channels_last", [False, True])
def test_times_each_conv_in_both_forms_and_a_whole_d_update(
    tmp_path, monkeypatch, capsys, channels_last
):
    out = tmp_path / "convs.json"
    argv = ["--preset", "synth-tiny", "--reps", "1", "--json", str(out)]
    argv += ["--channels-last"] if channels_last else []
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    result = json.loads(out.read_text())
    assert result["channels_last"] is channels_last
    names = [row["layer"] for row in result["layers"]]
    assert names[-2:] == ["src", "cls"] and names[0] == "conv0"
    for row in result["layers"]:
        assert all(
            row[f"{form}_{what}_ms"] > 0
            for form in ("conv", "gemm")
            for what in ("fwd", "update", "gp")
        )
        assert row["max_abs_diff_out"] < 1e-4 and row["max_rel_diff_grads"] < 1e-4
    assert result["whole_d_update"]["ours_ms"] > 0 and result["whole_d_update"]["conv_ms"] > 0
    assert "whole D update" in capsys.readouterr().out
