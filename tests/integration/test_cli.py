"""The `stargan` command end to end on the embedded data, as a user would run it."""

import json

import pytest
from PIL import Image

from stargan.cli import EXIT_USER_ERROR, main
from stargan.data.grid import title_strip

TINY = ["--preset", "synth-tiny", "--quiet"]


def test_train_then_translate_then_sample(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    assert (run / "model.safetensors").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir())[-1] == "step-00000020.png"

    # Translate a folder of images the user has (here: exported SynthFaces PNGs).
    assert (
        main(["data", "synth", "--out", str(tmp_path / "faces"), "--num", "3", "--size", "32"]) == 0
    )
    out = tmp_path / "out"
    code = main(
        [
            "translate",
            "--model",
            str(run / "model.safetensors"),
            "--input",
            str(tmp_path / "faces" / "images"),
            "--out",
            str(out),
            "--target",
            "Blond_Hair",
            "--target",
            "Male=1,Young=0",
            "--grid",
        ]
    )
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 * 2 + 1 and "grid.png" in names
    assert "000001-Blond_Hair.png" in names and "000001-Male+Young=0.png" in names
    with Image.open(out / "000001-Blond_Hair.png") as im:
        assert im.size == (128, 128)  # a 16 px model's outputs, at MIN_OUTPUT_SIZE
    titles = title_strip(["input", "Blond_Hair", "Male+Young=0"], 128).shape[0]
    with Image.open(out / "grid.png") as im:  # 3 rows; input + 2 targets; 2 px gaps; titled
        assert im.size == (3 * 130 + 2, titles + 3 * 130 + 2)

    assert (
        main(
            [
                "sample",
                "--model",
                str(run / "model.safetensors"),
                "--out",
                str(tmp_path / "grid.png"),
                "--num",
                "4",
            ]
        )
        == 0
    )
    with Image.open(tmp_path / "grid.png") as im:
        # input + 5 attributes; 4 rows under a strip of column titles
        assert im.size[0] == 6 * 18 + 2 and im.size[1] > 4 * 18 + 2 + 8


def test_dry_run_prints_the_resolved_config(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                *TINY,
                "--out",
                str(tmp_path),
                "--batch-size",
                "2",
                "--set",
                "optim.g_lr=0.0003",
                "--selected-attrs",
                "Male",
                "Young",
                "--dry-run",
            ]
        )
        == 0
    )
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["optim"]["batch_size"] == 2 and cfg["optim"]["g_lr"] == 0.0003
    assert cfg["data"][0]["selected_attrs"] == ["Male", "Young"]
    assert cfg["model"]["c_dim"] == 2  # derived from the labels
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--selected-attrs", "Blonde_Hair"], "Blond_Hair"),
        (["--set", "optim.learning_rate=1"], "unknown field 'learning_rate'"),
        (["--n-critic", "0"], "n_critic must be >= 1"),
        (["--dataset", "imagenet"], "registered formats"),
    ],
)
def test_user_errors_are_explained(tmp_path, capsys, argv, message):
    assert main(["train", *TINY, "--out", str(tmp_path), "--dry-run", *argv]) == EXIT_USER_ERROR
    assert message in capsys.readouterr().err


def test_translate_refuses_a_broken_model_file(tmp_path, capsys):
    (tmp_path / "m.safetensors").write_bytes(b"\x00" * 100)
    code = main(
        [
            "translate",
            "--model",
            str(tmp_path / "m.safetensors"),
            "--input",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == EXIT_USER_ERROR
    assert "m.safetensors" in capsys.readouterr().err


def test_joint_model_translates_across_datasets(tmp_path):
    run = tmp_path / "joint"
    tiny = [
        "--image-size",
        "16",
        "--g-conv-dim",
        "8",
        "--d-conv-dim",
        "8",
        "--g-repeat-num",
        "1",
        "--d-repeat-num",
        "4",
        "--num-iters",
        "4",
        "--num-iters-decay",
        "2",
        "--num-images",
        "32",
        "--test-size",
        "8",
        "--batch-size",
        "4",
        "--sample-every",
        "2",
    ]
    assert main(["train", "--preset", "synth-joint", "--quiet", "--out", str(run), *tiny]) == 0
    with Image.open(run / "samples" / "step-00000004.png") as im:
        # Rows: 8 CelebA-like + 8 RaFD-like faces; columns: input + 5 attributes + 8 expressions.
        assert im.size[0] == 14 * 18 + 2 and im.size[1] > 16 * 18 + 2 + 8  # + titles
    main(["data", "synth", "--out", str(tmp_path / "faces"), "--num", "2", "--size", "16"])
    out = tmp_path / "out"
    code = main(
        [
            "translate",
            "--model",
            str(run / "model.safetensors"),
            "--input",
            str(tmp_path / "faces" / "images"),
            "--out",
            str(out),
            "--set",
            "expression=happy",
            "--target",
            "Blond_Hair",
        ]
    )
    assert code == 0
    assert len(list(out.glob("000001-*.png"))) == 2


def test_dry_run_leaves_an_existing_run_untouched(tmp_path, capsys):
    assert main(["train", *TINY, "--out", str(tmp_path)]) == 0
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    for flag in ("--overwrite", "--resume"):
        assert main(["train", *TINY, "--out", str(tmp_path), "--dry-run", flag]) == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def _subcommands(parser, prefix=()):
    """Every command path of the parser, nested ones included."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in action.choices.items():
            yield (*prefix, name)
            yield from _subcommands(sub, (*prefix, name))


def test_every_command_prints_its_help(capsys):
    """--help formats every option's text (a bare '%' in a config docstring once crashed
    `stargan train --help`)."""
    from stargan.cli import build_parser

    commands = list(_subcommands(build_parser()))
    assert ("train",) in commands and ("data", "synth") in commands
    for command in commands:
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--help"])
        assert exit_.value.code == 0, command
        assert "usage:" in capsys.readouterr().out


def test_translate_with_the_packaged_model_notes_its_domain(tmp_path, capsys):
    from stargan.inference import PACKAGED_MODEL

    if not PACKAGED_MODEL.is_file():
        pytest.skip("no packaged model in this install")
    Image.new("RGB", (40, 40), (90, 60, 40)).save(tmp_path / "photo.png")
    argv = ["translate", "--input", str(tmp_path / "photo.png"), "--target", "Blond_Hair"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "packaged model was trained on 32 px cartoon faces (SynthFaces)" in err
    assert len([line for line in err.splitlines() if "cartoon" in line]) == 1
    assert main([*argv, "--model", str(PACKAGED_MODEL), "--out", str(tmp_path / "b")]) == 0
    assert "cartoon" not in capsys.readouterr().err  # a model named by the user: no note


def test_resume_names_the_settings_that_changed(tmp_path, capsys):
    assert main(["train", *TINY, "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["train", *TINY, "--out", str(tmp_path), "--resume", "--num-iters", "22"]) == 0
    err = capsys.readouterr().err
    assert "resuming with changed settings: optim.num_iters 20 -> 22" in err
    assert main(["train", *TINY, "--out", str(tmp_path), "--resume", "--num-iters", "22"]) == 0
    assert "changed settings" not in capsys.readouterr().err  # the same command: nothing to say
