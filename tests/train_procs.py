"""Training in a child process, as a user runs it: the kill and signal tests drive these.

The data is a tiny CelebA-format folder of 16 px PNGs written here (no renderer, decoded in
microseconds), the model has 8-channel nets, and torch runs on one thread so that a run's
numbers do not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

import stargan
from stargan import checkpoint as ckpt

ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
SRC = Path(stargan.__file__).resolve().parents[1]  # the folder holding the stargan package


def write_tiny_celeba(root: Path, n: int = 24, size: int = 16) -> Path:
    """``n`` seeded noise images with seeded attributes, in the official CelebA layout."""
    g = torch.Generator().manual_seed(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = [str(n), " ".join(ATTRS)]
    for i in range(n):
        pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(root / "images" / f"{i:06d}.png")
        values = torch.randint(0, 2, (len(ATTRS),), generator=g) * 2 - 1
        lines.append(f"{i:06d}.png " + " ".join(f"{int(v):2d}" for v in values))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def tiny_config(data_root: Path, iters: int, save_every: int, keep: int = 2) -> dict:
    """A whole run as the JSON a user would pass with --config."""
    return {
        "model": {
            "image_size": 16,
            "g_conv_dim": 8,
            "d_conv_dim": 8,
            "g_repeat_num": 1,
            "d_repeat_num": 3,
        },
        "optim": {
            "batch_size": 4,
            "num_iters": iters,
            "num_iters_decay": iters // 2,
            "n_critic": 2,
        },
        "data": [
            {
                "name": "celeba",
                "root": str(data_root),
                "image_size": 16,
                "crop_size": 16,
                "selected_attrs": list(ATTRS),
                "test_size": 4,
            }
        ],
        "run": {
            "device": "cpu",
            "num_threads": 1,
            "log_every": 1,
            "sample_every": 0,
            "save_every": save_every,
            "keep_checkpoints": keep,
        },
    }


def write_config(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config, indent=2))
    return path


def train_argv(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stargan", "train", "--config", str(config), "--out", str(out),
            "--quiet", *extra]  # fmt: skip


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_to_end(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, env=child_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def last_logged_step(out: Path) -> int:
    """The step of the last complete line of metrics.jsonl (0 when there is none)."""
    try:
        text = (out / "metrics.jsonl").read_text()
    except FileNotFoundError:
        return 0
    for line in reversed(text.splitlines()):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue
    return 0


def wait_for_step(proc: subprocess.Popen, out: Path, beyond: int, timeout: float = 60) -> bool:
    """Poll until the run has logged a step past ``beyond``; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if last_logged_step(out) > beyond:
            return True
        time.sleep(0.005)
    raise TimeoutError(f"no training progress in {out} after {timeout} s")


def checkpoint_step(path: Path) -> int:
    return int(path.name.removeprefix("state-").removesuffix(".safetensors"))


def state_files(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("state-*.safetensors"), reverse=True)


def valid_states(out: Path) -> list[Path]:
    """The checkpoints that stargan's own loader accepts (checksum and format verified)."""
    valid = []
    for path in state_files(out):
        try:
            ckpt.load_tensors(path, ckpt.STATE_FORMAT)
        except ckpt.CheckpointError:
            continue
        valid.append(path)
    return valid


def temporaries(out: Path) -> list[Path]:
    """Files an interrupted atomic write leaves: ``.NAME.RANDOM.tmp``."""
    return [
        p for folder in (out, out / "checkpoints", out / "samples") for p in folder.glob(".*.tmp")
    ]


def final_files(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Every tensor of the run's newest checkpoint and of its model file, loaded and verified
    by stargan's loader."""
    newest = state_files(out)[0]
    state, _ = ckpt.load_tensors(newest, ckpt.STATE_FORMAT)
    model, _ = ckpt.load_tensors(out / "model.safetensors", ckpt.MODEL_FORMAT)
    return {newest.name: state, "model.safetensors": model}


def assert_bitwise_equal(a: dict[str, dict[str, torch.Tensor]], b: dict) -> int:
    """Same files, same tensor names, every tensor equal bit for bit; returns the count."""
    assert a.keys() == b.keys()
    n = 0
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            x, y = a[name][key], b[name][key]
            assert x.dtype == y.dtype and x.shape == y.shape, f"{name}:{key}"
            bits = (t.contiguous().reshape(-1).view(torch.uint8) for t in (x, y))
            assert torch.equal(*bits), f"{name}:{key} differs"
            n += 1
    return n


def metrics_without_time(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time")} for r in records]
