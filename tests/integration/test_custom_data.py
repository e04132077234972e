"""The user's own data (issue #28): custom presets chosen for --root, schedules that fit any
--num-iters, a test split sized from the data, dry runs that check all a run needs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from PIL import Image

from conftest import CELEBA_SPEC
from stargan.cli import EXIT_USER_ERROR, main
from stargan.config import ConfigError, TrainConfig
from stargan.data.folder import IgnoredFilesWarning, scan_folder
from stargan.data.labels import LabelLayout, LabelSpec
from stargan.evaluation import Judge, JudgeConfig, save_judge
from stargan.presets import custom_schedule, get_preset, preset_names
from tiny_models import tiny_model_file


def _folder(root, n=20, size=24):
    """One folder per class, ``n`` small PNGs each: the user's own data."""
    for k, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (size, size), (40 * k + i, 90, 200 - 50 * k)).save(
                root / name / f"{i}.png"
            )
    return root


def _dry_run(capsys, *argv):
    code = main(["train", *argv, "--dry-run"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else None), out.err


@pytest.mark.parametrize("name", ["custom-32", "custom-64", "custom-128"])
def test_custom_presets_need_no_judge(name):
    cfg = get_preset(name)
    assert name in preset_names()
    assert cfg.run.eval_every == 0 and cfg.run.eval_judge is None
    assert cfg.data[0].name == "folder"
    assert cfg.optim.d_cls_warmup > 0 and cfg.model.g_output == "mask"  # our CPU recipe


@pytest.mark.parametrize("iters", [1, 2, 7, 500, 200_000])
def test_the_custom_schedule_fits_any_length(iters):
    d = get_preset("custom-64").to_dict()
    d["optim"]["num_iters"] = iters
    for section, values in custom_schedule(iters, judge=True).items():
        d[section].update(values)
    d["run"]["eval_judge"] = "judge.safetensors"
    TrainConfig.from_dict(d)  # valid


def test_root_alone_picks_the_custom_preset_and_sizes_everything(tmp_path, capsys):
    root = _folder(tmp_path / "pets")
    code, cfg, err = _dry_run(capsys, "--root", str(root), "--num-iters", "500")
    assert code == 0, err
    assert "custom-64" in err
    assert cfg["data"][0]["name"] == "folder" and cfg["data"][0]["test_size"] == 4  # 40 images
    assert cfg["optim"]["num_iters_decay"] == 250 and cfg["optim"]["d_cls_warmup"] == 50
    assert cfg["run"]["eval_every"] == 0 and cfg["run"]["sample_every"] == 50
    assert cfg["model"]["n_classes"] == 2


def test_flags_win_over_the_derived_schedule(tmp_path, capsys):
    root = _folder(tmp_path / "pets")
    argv = ["--root", str(root), "--image-size", "32", "--num-iters", "100"]
    code, cfg, err = _dry_run(capsys, *argv, "--num-iters-decay", "10", "--test-size", "6")
    assert code == 0, err
    assert cfg["model"]["image_size"] == 32
    assert cfg["optim"]["num_iters_decay"] == 10 and cfg["data"][0]["test_size"] == 6
    code, cfg, err = _dry_run(capsys, *argv, "--set", "run.sample_every=7")
    assert code == 0, err
    assert cfg["run"]["sample_every"] == 7 and cfg["run"]["save_every"] == 20


def test_dry_run_checks_the_judge(tmp_path, capsys):
    root = _folder(tmp_path / "pets")
    missing = tmp_path / "judge.safetensors"
    code, _, err = _dry_run(capsys, "--root", str(root), "--eval-judge", str(missing))
    assert code == EXIT_USER_ERROR and str(missing) in err
    # The SynthFaces preset on other data: the shipped judge cannot score it, said before
    # training, with the fix.
    argv = ["--preset", "synth-demo", "--dataset", "folder", "--root", str(root)]
    code, _, err = _dry_run(capsys, *argv, "--image-size", "32", "--test-size", "4")
    assert code == EXIT_USER_ERROR and "--eval-judge FILE" in err and "Traceback" not in err
    # A judge trained on the same classes: evaluation comes five times a run.
    layout = LabelLayout((LabelSpec(("cats", "dogs"), "categorical"),))
    save_judge(Judge(JudgeConfig(image_size=32, width=2, blocks=(1,)), layout), missing)
    argv = ["--root", str(root), "--image-size", "32", "--num-iters", "50"]
    code, cfg, err = _dry_run(capsys, *argv, "--eval-judge", str(missing))
    assert code == 0, err
    assert cfg["run"]["eval_every"] == 10


def test_a_short_run_on_the_users_data_trains(tmp_path, capsys):
    root = _folder(tmp_path / "pets", n=10)
    out = tmp_path / "run"
    argv = ["train", "--root", str(root), "--image-size", "32", "--num-iters", "3", "--quiet"]
    assert main([*argv, "--batch-size", "4", "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file()


def test_every_failed_check_is_reported_at_once(capsys):
    code = main(["train", "--preset", "synth-demo", "--num-iters", "500", "--log-every", "0",
                 "--dry-run"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    for field in ("num_iters_decay", "d_cls_warmup", "log_every"):
        assert field in err
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"optim": {"g_lr": -1.0, "n_critic": 0}, "run": {"save_every": 0}})
    assert len(e.value.problems) == 3


def test_train_classifier_help_prints_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "train-classifier", "--help"])
    out = capsys.readouterr().out
    assert "10% of train" in out and "%%" not in out


def test_data_check_says_its_size_sizes_the_test_split_and_names_ignored_files(tmp_path, capsys):
    root = _folder(tmp_path / "pets")
    Image.new("L", (24, 24), 128).save(root / "cats" / "orl.pgm")  # read, as ORL/AT&T ship
    (root / "dogs" / "README.txt").write_text("not an image")
    assert main(["data", "check", str(root), "--format", "folder"]) == 0  # 41 images, no 2,000
    out = capsys.readouterr().out
    assert "checked at 128 px (--image-size)" in out
    assert "1 file(s) not used, not images by their extension (e.g. dogs/README.txt)" in out
    assert out.count("not used") == 1
    assert [line.split()[1:] for line in out.splitlines() if line.startswith("images")] == [
        ["37", "4"]
    ]
    with pytest.warns(IgnoredFilesWarning, match="README.txt"):
        scan_folder(root, "train")


def test_evaluate_any_model_file_on_named_data(tmp_path, capsys):
    """A model file without a training config (as `import-official` writes) is evaluated on
    data named by --dataset; without it, the error names `evaluate` and the fix."""
    model = tiny_model_file(tmp_path / "official.safetensors")
    code = main(["evaluate", "--model", str(model)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "records no training config" in err and "`stargan evaluate`" in err
    assert "--dataset NAME" in err
    judge = tmp_path / "judge.safetensors"
    save_judge(
        Judge(JudgeConfig(image_size=16, width=2, blocks=(1,)), LabelLayout((CELEBA_SPEC,))), judge
    )
    out = tmp_path / "report"
    argv = [
        "evaluate",
        "--model",
        str(model),
        "--dataset",
        "synthfaces-celeba",
        "--judge",
        str(judge),
    ]
    assert main([*argv, "--num", "4", "--no-fid", "--grid", "0", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["path"] == str(model)
    assert results["evaluations"][0]["source"]["name"] == "synthfaces-celeba"


@pytest.mark.parametrize("argv", [["--dataset", "folder"], ["--root", "/nonexistent/pets"]])
def test_only_root_or_dataset_never_ends_in_a_traceback(argv, capsys):
    code, _, err = _dry_run(capsys, *argv)
    assert code == EXIT_USER_ERROR and "Traceback" not in err
    assert "--root" in err or "not a folder" in err


def test_the_readme_recipe_for_your_own_images_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's commands, run as written on a small folder (shortened by flags added at the
    end: fewer iterations, a smaller judge, fewer test images)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("### Your own images", 1)[1].split("```bash\n", 1)[1].split("```")[0]
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    assert [c[:2] for c in commands] == [
        ["stargan", "data"],
        ["stargan", "train"],
        ["stargan", "evaluate"],
        ["stargan", "evaluate"],
        ["stargan", "translate"],
    ]
    monkeypatch.chdir(tmp_path)
    root = _folder(tmp_path / "photos", n=10)
    (root / "cats").rename(root / "smiling")
    (tmp_path / "new").mkdir()
    Image.new("RGB", (30, 30), (90, 60, 40)).save(tmp_path / "new" / "face.jpg")
    shorter = {
        "train": ["--num-iters", "2", "--batch-size", "4", "--quiet"],
        "train-classifier": ["--epochs", "1", "--width", "4"],
        "--run": ["--num", "4", "--no-fid", "--grid", "1"],
    }
    for argv in commands:
        extra = next((v for k, v in shorter.items() if k in argv[1:3]), [])
        assert main([*argv[1:], *extra]) == 0, argv
    out = capsys.readouterr().out
    assert "target accuracy" in out and "doing nothing" in out
    assert (tmp_path / "runs" / "photos" / "report.html").is_file()
    assert any((tmp_path / "out").iterdir())
