"""The quick start (issue #28): `scripts/demo.sh` installs the package alone and ends with its
figures, read from the results.json `stargan evaluate` writes; `scripts/test.sh` installs the
test tools."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stargan.evaluation.headline import headline, main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "docs" / "shipped-model" / "results.json"


def _results(**overall):
    return {
        "evaluations": [
            {
                "source": {"dataset": 0, "name": "synthfaces-celeba", "n_images": 500},
                "summary": {"0": overall, "overall": overall},
            }
        ]
    }


def test_the_headline_gives_accuracy_and_psnr_beside_doing_nothing():
    text = headline(
        _results(accuracy=92.04, do_nothing_accuracy=12.5, gt_psnr=22.93, do_nothing_gt_psnr=19.48)
    )
    assert "synthfaces-celeba, 500 test images" in text
    assert "target accuracy     92.0 %  (doing nothing: 12.5 %)" in text
    assert "ground-truth PSNR   22.9 dB (doing nothing: 19.5 dB)" in text


def test_without_ground_truth_the_headline_says_so():
    text = headline(_results(accuracy=80.0, do_nothing_accuracy=50.0))
    assert "80.0 %" in text and "no ground truth" in text and "PSNR   " not in text


def test_the_headline_reads_a_results_file(capsys):
    assert main([str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    shipped = json.loads(SHIPPED.read_text())["evaluations"][0]["summary"]["overall"]
    assert f"{shipped['accuracy']:.1f} %" in out and f"{shipped['gt_psnr']:.1f} dB" in out


def test_a_file_that_is_not_results_is_an_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "r.json").write_text("{}")
    assert main([str(tmp_path / "r.json")]) == 1
    assert "stargan evaluate" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json")]) == 1


def test_the_demo_ends_with_the_evaluation_whose_headline_comes_last():
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert demo.rstrip().splitlines()[-1].startswith(".venv/bin/stargan evaluate --run")
    assert "bash scripts/setup.sh runtime" in demo
    assert "bash scripts/setup.sh dev" in (ROOT / "scripts" / "test.sh").read_text()
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("kind", "target"), [("runtime", "-e ."), ("dev", "-e .[dev]")])
def test_setup_installs_what_each_script_needs(tmp_path, kind, target):
    # A stand-in .venv whose python logs what pip would be asked to install.
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n')
    python.chmod(0o755)
    subprocess.run(["bash", "scripts/setup.sh", kind], cwd=tmp_path, check=True)
    calls = (python.parent / "calls").read_text().splitlines()
    assert calls[0].endswith("torch==2.13.0")
    assert calls[1].endswith(target)
    bad = subprocess.run(["bash", "scripts/setup.sh", "all"], cwd=tmp_path, capture_output=True)
    assert bad.returncode == 2 and b"runtime|dev" in bad.stderr
