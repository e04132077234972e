"""Files from strangers cannot write outside --out, hang, exhaust memory or end in a traceback.

Each crafted file is small (sparse files, FIFOs, links to /dev/zero, forged metadata). The
probe runs every entry point on every crafted file in one process under a 4 GB address-space
limit (as `ulimit -v 4000000`) and checks that each one is refused in under 2 s with exit 2,
one error naming the file, and no traceback or hang.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_model_files import forge_checkpoint

from stargan import checkpoint as ckpt
from stargan.cli import EXIT_USER_ERROR, main
from stargan.files import (
    UnsafeFileError,
    check_name,
    output_path,
    parse_json,
    read_regular,
    safe_stem,
)
from stargan.inference import PACKAGED_MODEL

ROOT = Path(__file__).resolve().parents[2]
AS_LIMIT = 4_000_000 * 1024  # ulimit -v 4000000 (KiB)
FACE = ROOT / "docs" / "synthfaces_expressions.png"


# The bounded reader and the name rule.


def test_read_regular_reads_files_and_links_to_them(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "link.bin").symlink_to(tmp_path / "a.bin")
    assert read_regular(tmp_path / "link.bin", 3) == b"abc"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.symlink_to("/dev/zero"), "character device"),
        (lambda p: os.mkfifo(p), "FIFO"),
        (lambda p: p.mkdir(), "folder"),
        (lambda p: os.truncate(p.touch() or p, 10 << 30), "10,737,418,240 bytes, over the"),
    ],
    ids=["dev-zero-link", "fifo", "folder", "sparse-10GB"],
)
def test_read_regular_refuses_at_once_what_is_not_a_small_regular_file(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(UnsafeFileError, match=message):
        read_regular(path, 1 << 20)


@pytest.mark.parametrize("name", ["Black_Hair", "5_o_Clock_Shadow", "happy", "cat 2", "a.b+c=d-e"])
def test_label_names_that_are_fine(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["../../x", "a/b", "a\\b", "..", ".hidden", "", "x" * 65, "a\x00b", 7, None, "é"]
)
def test_label_names_that_could_become_a_path_or_worse_are_refused(name):
    with pytest.raises(UnsafeFileError, match="not allowed|not a string"):
        check_name(name, "label")


def test_free_text_becomes_a_bounded_plain_file_name():
    assert safe_stem("../../etc/passwd") == "etc_passwd"
    assert safe_stem("..") == "image"
    assert len(safe_stem("é" * 10_000)) <= 80


def test_outputs_stay_inside_the_folder(tmp_path):
    assert output_path(tmp_path, "a.png") == tmp_path / "a.png"
    for bad in ("../a.png", "/etc/a.png", "..", "sub/a.png"):
        with pytest.raises(UnsafeFileError, match="would leave"):
            output_path(tmp_path, bad)


def test_deep_or_huge_json_is_a_value_error_not_a_crash():
    with pytest.raises(UnsafeFileError, match="nested too deeply"):
        parse_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UnsafeFileError, match="not valid JSON"):
        parse_json("1" * 5000)


# Crafted model files.


def _forge_model(path: Path, poison: str | None = None, **meta_changes: str) -> Path:
    """The packaged model with its metadata changed, or the tensor ``poison`` set to NaN, and
    its checksum recomputed (as anyone can): integrity checks pass, so only the validation of
    the contents stands in the way."""
    tensors, meta = ckpt.load_tensors(PACKAGED_MODEL, ckpt.MODEL_FORMAT)
    if poison:
        tensors[poison] = torch.full_like(tensors[poison], math.nan)
    ckpt.save_tensors(path, tensors, {**meta, **meta_changes})
    return path


def _labels(names: list[object]) -> str:
    return json.dumps([{"names": names, "kind": "binary"}])


def test_a_label_that_is_a_path_cannot_make_translate_write_outside_out(tmp_path, capsys):
    model = _forge_model(
        tmp_path / "evil.safetensors",
        labels=_labels(["../../x", "Blond_Hair", "Brown_Hair", "Male", "Young"]),
    )
    out = tmp_path / "deep" / "er" / "out"
    code = main(["translate", "--model", str(model), "--input", str(FACE), "--out", str(out)])
    assert code == EXIT_USER_ERROR
    assert "label name '../../x' is not allowed" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.png"))


def test_input_file_names_are_made_safe_in_outputs(tmp_path):
    weird = tmp_path / "in" / "..a b;$(x).png"
    weird.parent.mkdir()
    shutil.copy(FACE, weird)
    out = tmp_path / "out"
    assert (
        main(["translate", "--input", str(weird.parent), "--out", str(out), "--set", "Male"]) == 0
    )
    assert [p.name for p in out.iterdir()] == ["a_b_x-Male.png"]


def _crafted(tmp_path: Path) -> dict[str, Path]:
    """Crafted files by name; each is the model, judge, config or image a command is handed."""
    d = tmp_path / "crafted"
    d.mkdir()
    files = {
        "dev-zero-link": d / "zero.safetensors",
        "fifo": d / "fifo.safetensors",
        "sparse-10GB": d / "sparse.safetensors",
    }
    files["dev-zero-link"].symlink_to("/dev/zero")
    os.mkfifo(files["fifo"])
    with open(files["sparse-10GB"], "wb") as f:
        f.truncate(10 << 30)
    nested = "[" * 50_000 + "]" * 50_000
    files["nested-metadata"] = _forge_model(d / "nested.safetensors", model_config=nested)
    files["numeric-labels"] = _forge_model(
        d / "numbers.safetensors", labels=_labels([1, 2, 3, 4, 5])
    )
    files["100KB-label"] = _forge_model(
        d / "long.safetensors", labels=_labels(["x" * 100_000, "a", "b", "c", "d"])
    )
    files["path-label"] = _forge_model(
        d / "path.safetensors", labels=_labels(["../../x", "a", "b", "c", "d"])
    )
    files["nan-weights"] = _forge_model(d / "nan.safetensors", poison="D.cls.weight")
    meta = ckpt.read_metadata(PACKAGED_MODEL, ckpt.MODEL_FORMAT)
    config = json.loads(meta["model_config"]) | {"g_conv_dim": 4096, "g_repeat_num": 64}
    files["terabyte-config"] = _forge_model(d / "huge.safetensors", model_config=json.dumps(config))
    files["official-claiming-8GiB"] = d / "forged-G.ckpt"
    files["official-claiming-8GiB"].write_bytes(
        forge_checkpoint((4096, 8, 7, 7), (392, 49, 7, 1), 2**31, legacy=True)
    )
    return files


def _cases(tmp_path: Path, files: dict[str, Path]) -> list[dict[str, object]]:
    out = tmp_path / "out"
    good_run = tmp_path / "good-run"
    good_run.mkdir()
    shutil.copy(PACKAGED_MODEL, good_run / "model.safetensors")
    cases = []
    for kind, f in files.items():
        run = tmp_path / f"run-{kind}"
        (run / "checkpoints").mkdir(parents=True)
        os.symlink(f, run / "model.safetensors")
        os.symlink(f, run / "checkpoints" / "state-00000010.safetensors")
        image = tmp_path / f"image-{kind}.png"
        os.symlink(f, image)
        folder = tmp_path / f"folder-{kind}" / "class_a"
        folder.mkdir(parents=True)
        os.symlink(f, folder / "x.jpg")
        (folder.parent / "class_b").mkdir()
        for name in ("class_a/y.png", "class_b/y.png"):
            shutil.copy(FACE, folder.parent / name)
        state = run / "checkpoints" / "state-00000010.safetensors"
        commands = {  # name: (argv, the path its message must name)
            "translate --model": (["translate", "--model", f, "--input", FACE, "--out", out], f),
            "translate --input": (["translate", "--input", image, "--out", out], image),
            "sample": (["sample", "--model", f, "--out", out / "grid.png"], f),
            "serve": (["serve", "--model", f, "--port", "18765"], f),
            "export": (["export", "--model", f, "--out", out / "g.onnx"], f),
            "evaluate --run": (["evaluate", "--run", run, "--num", "2"], run / "model.safetensors"),
            "evaluate --judge": (["evaluate", "--run", good_run, "--judge", f, "--num", "2"], f),
            "import-official": (
                ["import-official", f, "--attrs", "a", "b", "--out", out / "m.safetensors"],
                f,
            ),
            "train --resume": (
                ["train", "--preset", "synth-demo", "--out", run, "--resume"],
                state,
            ),
            "train --config": (["train", "--config", f, "--out", run, "--dry-run"], f),
            "data check": (
                ["data", "check", folder.parent, "--format", "folder", "--test-size", "1"],
                folder / "x.jpg",
            ),
            "data check attributes": (["data", "check", f, "--format", "celeba"], f),
        }
        cases += [
            {"name": f"{name} / {kind}", "named": str(named), "argv": [str(a) for a in argv]}
            for name, (argv, named) in commands.items()
        ]
    return cases


@pytest.mark.slow
def test_every_entry_point_refuses_every_crafted_file_under_4gb(tmp_path):
    files = _crafted(tmp_path)
    cases = _cases(tmp_path, files)
    probe = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "hostile_probe.py"), str(AS_LIMIT), "10"],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    report = json.loads(probe.stdout)
    failures = []
    for case, got in zip(cases, report["results"], strict=True):
        err = got["stderr"]
        if case["name"].startswith("data check"):
            # A report, not a refusal: exit 1, the crafted file named among the problems.
            ok = got["code"] == 1 and case["named"] in got["stdout"]
        else:
            ok = (
                got["code"] == EXIT_USER_ERROR
                and err.startswith("stargan: error:")
                and case["named"] in err
                and len(err) < 2000
            )
        ok = ok and got["outcome"] == "exit" and got["seconds"] < 2.0
        ok = ok and "Traceback" not in err and "MemoryError" not in err
        if not ok:
            said = f"{err[:300]!r} {got['stdout'][-600:]!r}"
            failures.append(
                f"{case['name']}: {got['outcome']} {got['code']} {got['seconds']}s {said}"
            )
    assert not failures, "\n".join(failures)
    # The figures docs/reliability.md quotes (pytest -s): slowest refusal per crafted file.
    for kind in files:
        times = [g["seconds"] for c, g in zip(cases, report["results"], strict=True)
                 if c["name"].endswith(f"/ {kind}")]  # fmt: skip
        print(f"{kind}: {len(times)} entry points, slowest {max(times):.2f} s")
    print(f"imports {report['import_seconds']} s, peak RSS {report['peak_rss_mib']} MiB")


# The user's own mistakes and machine: one line and exit 2, never a traceback.


@pytest.fixture
def mounted(tmp_path):
    """mount(options) -> a fresh tmpfs folder mounted with those options (root only)."""
    mounts = []

    def mount(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounts)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)])
        if done.returncode != 0:
            pytest.skip("needs mount(8) as root for a full or read-only filesystem")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [("size=16k", "No space left on device"), ("ro", "Read-only file system")],
)
def test_an_output_folder_that_is_full_or_read_only_is_one_line(mounted, capsys, options, message):
    out = mounted(options) / "out"
    if "ro" not in options:
        out.mkdir()
        (out / "filler").write_bytes(b"\0" * 16_000)
    argv = ["translate", "--input", str(FACE), "--out", str(out), "--set", "Male", "--size", "512"]
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("stargan: error: ") and message in err and err.count("\n") == 1


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    argv = ["train", "--preset", "synth-demo", "--out", str(tmp_path / "afile" / "run")]
    argv += ["--num-iters", "2", "--num-iters-decay", "1", "--d-cls-warmup", "0"]
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "afile" in err and "Not a directory" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-threads", "1000000000"], "run.num_threads must be in [0, 512]"),
        (["--set", "optim.g_lr=" + "1" * 5000], "optim.g_lr"),
        (["--set", "optim.g_lr=" + "[" * 50_000], "optim.g_lr"),
        (["--g-lr", "1" * 5000], "expected a finite number"),
    ],
    ids=["threads", "5000-digit-lr", "nested-lr", "5000-digit-flag"],
)
def test_absurd_numbers_are_refused_by_name(tmp_path, capsys, flags, message):
    argv = ["train", "--preset", "synth-demo", "--out", str(tmp_path / "r"), "--dry-run", *flags]
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_files_inside_a_strangers_dataset_folder_cannot_hang_a_reader(tmp_path):
    """The image cache's index and SynthFaces' ground-truth index are read from the dataset's
    folder too: as FIFOs they are refused (the cache is rebuilt), not waited on for ever."""
    from stargan.data.cache import _open_disk_cache
    from stargan.data.synthfaces import load_ground_truth

    os.mkfifo(tmp_path / "cache.json")
    (tmp_path / "cache.u8").write_bytes(bytes(12))
    assert _open_disk_cache(tmp_path / "cache.u8", tmp_path / "cache.json", (1, 2, 2, 3)) is None
    os.mkfifo(tmp_path / "identities.json")
    with pytest.raises(UnsafeFileError, match="FIFO"):
        load_ground_truth(tmp_path)
