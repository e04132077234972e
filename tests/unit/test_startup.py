"""Start-up: the commands that need no network answer without importing torch (over a second).

Each command runs in a fresh interpreter, which reports whether torch was imported by the
time the command finished; what is asserted is the import, not a time.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Runs `python -m stargan ARGS` in-process and prints, last, whether torch was imported.
WRAPPER = """
import runpy, sys
sys.argv = ["stargan", *sys.argv[1:]]
try:
    runpy.run_module("stargan", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
else:
    code = 0
print("torch imported:", "torch" in sys.modules, "exit:", code)
"""


def _run(*args: object) -> tuple[str, str]:
    """(stdout, stderr) of ``stargan ARGS``; stdout ends with the wrapper's report."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "torch imported:" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def _no_torch(stdout: str) -> bool:
    return stdout.strip().splitlines()[-1].startswith("torch imported: False")


def _tiny_folder(root: Path) -> Path:
    """Two class folders of three 16 px PNGs."""
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


def _safetensors_header_only(path: Path, metadata: dict[str, str]) -> Path:
    """A safetensors file without tensors: only its header, holding ``metadata``."""
    text = json.dumps({"__metadata__": metadata}).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["translate", "--help"],
        ["data", "check", "--help"],
        ["evaluate", "--help"],
        ["presets"],
        ["data", "formats"],
    ],
    ids=lambda a: " ".join(a),
)
def test_help_and_listings_do_not_import_torch(args):
    out, err = _run(*args)
    assert _no_torch(out), out[-500:]
    assert "exit: 0" in out, err[-2000:]


def test_data_check_of_a_folder_dataset_does_not_import_torch(tmp_path):
    root = _tiny_folder(tmp_path / "pets")
    out, err = _run("data", "check", root, "--format", "folder", "--image-size", "16")
    assert "problems: none" in out and "exit: 0" in out, err[-2000:]
    assert _no_torch(out), out[-500:]


def _refused(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "refused"
    d.mkdir()
    files = {"dev-zero-link": d / "zero.safetensors", "folder": d / "dir.safetensors"}
    files["dev-zero-link"].symlink_to("/dev/zero")
    files["folder"].mkdir()
    files["sparse-2GB"] = d / "sparse.safetensors"
    with open(files["sparse-2GB"], "wb") as f:
        f.truncate(2 << 30)
    files["pickle"] = d / "model.pt"
    files["pickle"].write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    files["huge-header"] = d / "header.safetensors"
    files["huge-header"].write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    files["wrong-format"] = _safetensors_header_only(d / "judge.safetensors", {"format": "x"})
    files["malformed-metadata"] = _safetensors_header_only(
        d / "meta.safetensors", {"format": "stargan-model/1", "model_config": "[[[", "labels": ""}
    )
    return files


def test_refused_model_files_are_refused_before_torch(tmp_path):
    image = _tiny_folder(tmp_path / "images") / "cats" / "0.png"
    for kind, path in _refused(tmp_path).items():
        out, err = _run("translate", "--model", path, "--input", image, "--out", tmp_path / "o")
        assert "exit: 2" in out and err.startswith("stargan: error:"), (kind, err[-2000:])
        assert str(path) in err, (kind, err)
        assert _no_torch(out), (kind, out[-500:])


def test_refused_judge_and_official_checkpoint_are_refused_before_torch(tmp_path):
    files = _refused(tmp_path)
    judge = files["dev-zero-link"]
    model = Path(__file__).resolve().parents[2] / "src/stargan/assets/synthfaces-32.safetensors"
    out, err = _run("evaluate", "--model", model, "--judge", judge, "--out", tmp_path / "e")
    assert "exit: 2" in out and str(judge) in err and _no_torch(out), err[-2000:]
    out, err = _run("import-official", files["sparse-2GB"], "--attrs", "a", "--out", tmp_path / "m")
    assert "exit: 2" in out and str(files["sparse-2GB"]) in err, err[-2000:]
    assert _no_torch(out), out[-500:]


def test_the_command_sets_a_short_openmp_spin_before_torch_loads():
    """GOMP_SPINCOUNT is read when torch loads libgomp: the command sets its default first
    (and keeps a user's own value), so a busy neighbour does not stall every barrier."""
    code = (
        "import os, sys\n"
        "from stargan.cli import main\n"
        "main(['presets'])\n"
        "print(os.environ['GOMP_SPINCOUNT'], 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split()[-2:] == ["10000", "False"], out.stderr
    env["GOMP_SPINCOUNT"] = "7"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split()[-2:] == ["7", "False"], out.stderr
