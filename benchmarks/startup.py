"""Start-up time of the `stargan` command: the calls that need no network, against torch's import.

    python benchmarks/startup.py                     # best of 5 per command
    python benchmarks/record.py -- python benchmarks/startup.py --repeat 7

Each command runs in a fresh interpreter, the commands taking turns (so a burst of load on a
shared machine hits all of them alike); the best of --repeat runs is reported with the number
of modules the command imported and whether torch was one. `python -c "import torch"` is the
reference: the commands listed should take a fraction of it.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# Runs the stargan command in-process and reports, on stderr's last line, its module count.
WRAPPER = """
import runpy, sys
sys.argv = ["stargan", *sys.argv[1:]]
try:
    runpy.run_module("stargan", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
print("modules", len(sys.modules), "torch" in sys.modules, file=sys.stderr)
"""


def _dataset(root: Path, n: int = 8) -> Path:
    """Two class folders of ``n`` 64 px PNGs each."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


def _refused_model(path: Path) -> Path:
    """A safetensors header whose metadata is not a model's: refused by its header alone."""
    text = json.dumps({"__metadata__": {"format": "stargan-model/1", "model_config": "["}})
    data = text.encode() + b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(data)) + data)
    return path


def _time(argv: list[str]) -> tuple[float, int | None, bool | None]:
    """(seconds, modules imported, torch imported) of one run of ``argv``."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    last = proc.stderr.strip().splitlines()[-1:] or [""]
    if not last[0].startswith("modules "):
        return seconds, None, None
    _, count, torch = last[0].split()
    return seconds, int(count), torch == "True"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="runs of each command (best is kept)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = _dataset(Path(tmp) / "data")
        model = _refused_model(Path(tmp) / "bad.safetensors")
        image = data / "a" / "0.png"
        stargan = [sys.executable, "-c", WRAPPER]
        commands = {
            "stargan --help": [*stargan, "--help"],
            "stargan translate --help": [*stargan, "translate", "--help"],
            "stargan data check (16 images)": [
                *stargan, "data", "check", str(data), "--format", "folder", "--image-size", "64",
            ],
            "stargan translate (refused model file)": [
                *stargan, "translate", "--model", str(model), "--input", str(image),
                "--out", str(Path(tmp) / "out"),
            ],
            'python -c "import torch"': [
                sys.executable, "-c",
                "import sys, torch; print('modules', len(sys.modules), True, file=sys.stderr)",
            ],
        }  # fmt: skip
        runs: dict[str, list[float]] = {name: [] for name in commands}
        imports: dict[str, tuple[int | None, bool | None]] = {}
        for _ in range(args.repeat):
            for name, argv in commands.items():
                seconds, count, torch = _time(argv)
                runs[name].append(seconds)
                imports[name] = (count, torch)

    reference = min(runs['python -c "import torch"'])
    rows = []
    print(f"{'command':42s} {'best s':>7s} {'median s':>8s} {'modules':>7s}  torch  vs torch")
    for name, times in runs.items():
        count, torch = imports[name]
        best, median = min(times), float(np.median(times))
        rows.append(
            {
                "command": name,
                "best_s": round(best, 3),
                "median_s": round(median, 3),
                "modules": count,
                "imports_torch": torch,
                "of_torch_import": round(best / reference, 3),
            }
        )
        print(
            f"{name:42s} {best:7.3f} {median:8.3f} {count if count is not None else '?':>7} "
            f" {'yes' if torch else 'no ':5s} {best / reference:7.2f}x"
        )
    if args.json:
        sys.path.insert(0, str(Path(__file__).parent))
        from record import machine

        result = {"repeat": args.repeat, "machine": machine(), "rows": rows}
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
