"""SynthFaces rendering speed: images per second on one core, per image size.

    PYTHONPATH=src python benchmarks/render_speed.py                       # 32, 64, 128 px
    PYTHONPATH=src python benchmarks/render_speed.py --sizes 64 --n 2000 --json speed.json

Renders --n celeba-style and --n rafd-style faces per size in this process (rendering is
single-threaded numpy + Pillow; a DataLoader with w workers scales it about w-fold). Identities
and states are sampled before the clock starts. Reports the overall wall-clock rate and the
rate of the fastest chunk of 100 images: on a shared machine the best chunk is the steadier
figure (what the code does when it has a core to itself).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from stargan.data.synthfaces import render, sample_identity, sample_state


def measure(style: str, size: int, n: int, seed: int = 0, chunk: int = 100) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    faces = [(sample_identity(rng, style), sample_state(rng, style)) for _ in range(n)]
    render(*faces[0], size)  # warm caches
    times = []
    for start in range(0, n, chunk):
        t = time.perf_counter()
        for identity, state in faces[start : start + chunk]:
            render(identity, state, size)
        times.append((time.perf_counter() - t) / len(faces[start : start + chunk]))
    return {
        "style": style,
        "size": size,
        "n": n,
        "img_s": 1 / np.mean(times),
        "best_chunk_img_s": 1 / min(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--n", type=int, default=1000, help="faces per style and size")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    rows = [measure(style, size, args.n) for size in args.sizes for style in ("celeba", "rafd")]
    print(f"{'style':<8}{'size':>6}{'n':>7}{'img/s':>8}{'best chunk':>12}")
    for r in rows:
        print(
            f"{r['style']:<8}{r['size']:>6}{r['n']:>7}{r['img_s']:>8.0f}"
            f"{r['best_chunk_img_s']:>12.0f}"
        )
    if args.json:
        meta = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
        }
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
