"""oneDNN's direct 3x3 convolution against Winograd's minimal filtering F(4x4, 3x3) on G's
residual-block convs (C -> C, stride 1, padding 1: 73 % of G's arithmetic at 128 px), in
the preset's batch and the memory order of its speed settings (or of --speed's profile):
forward without autograd (D-only iterations), forward + backward to input and weight (G's
update), and each one's error against float64.

    python benchmarks/winograd_conv.py --preset celeba-128 --speed cpu-128 --threads 2 --reps 9

The Winograd convolution is speed.winograd's (stargan.accel.winograd).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from stargan.accel.winograd import winograd_conv3x3
from stargan.config import SPEED_PROFILES
from stargan.presets import get_preset

sys.path.insert(0, str(Path(__file__).parent))
from conv_small_maps import max_rel_diff


def direct_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, weight, padding=1)


Conv = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def forward_and_grads(conv: Conv, x: torch.Tensor, w: torch.Tensor, dy: torch.Tensor):
    """[output, input gradient, weight gradient] of one training pass."""
    x, w = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
    y = conv(x, w)
    return [y.detach(), *torch.autograd.grad(y, [x, w], dy)]


def errors(conv: Conv, x: torch.Tensor, w: torch.Tensor, dy: torch.Tensor) -> dict[str, float]:
    """Largest error of the output and of each gradient against float64, relative to the
    largest magnitude of the float64 result."""
    exact = forward_and_grads(direct_conv3x3, x.double(), w.double(), dy.double())
    got = forward_and_grads(conv, x, w, dy)
    return {
        name: max_rel_diff([e], [g.double()])
        for name, e, g in zip(("out", "grad_x", "grad_w"), exact, got, strict=True)
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument("--speed", choices=list(SPEED_PROFILES), help="instead of the preset's")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=5, help="timed calls per variant (median kept)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = get_preset(args.preset)
    nhwc = (SPEED_PROFILES[args.speed] if args.speed else cfg.speed).channels_last
    layout = torch.channels_last if nhwc else torch.contiguous_format
    c, side = cfg.model.g_conv_dim * 4, cfg.model.image_size // 4  # the residual blocks
    n = cfg.optim.batch_size
    x = torch.randn(n, c, side, side).contiguous(memory_format=layout)
    w = (torch.randn(c, c, 3, 3) / (3 * c**0.5)).contiguous(memory_format=layout)
    dy = torch.randn(n, c, side, side).contiguous(memory_format=layout)
    variants = {"direct (oneDNN)": direct_conv3x3, "winograd F(4x4,3x3)": winograd_conv3x3}

    def inference(conv: Conv) -> Callable[[], object]:
        def run() -> None:
            with torch.no_grad():
                conv(x, w)

        return run

    passes = {
        "forward": inference,
        "forward+backward": lambda conv: lambda: forward_and_grads(conv, x, w, dy),
    }
    rows = []
    for pass_name, make in passes.items():
        calls = {name: make(conv) for name, conv in variants.items()}
        times: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():
            call()  # warm-up: oneDNN picks its kernels on the first call
        for i in range(args.reps):
            names = list(calls) if i % 2 == 0 else list(calls)[::-1]  # drift hits both alike
            for name in names:
                t0 = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - t0)
        rows += [
            {"pass": pass_name, "variant": name, "median_ms": 1e3 * statistics.median(t)}
            for name, t in times.items()
        ]
    accuracy = {name: errors(conv, x, w, dy) for name, conv in variants.items()}
    macs = n * side * side * c * c * 9
    print(
        f"{args.preset}: G's residual conv {c}->{c} 3x3 on {side}x{side}, batch {n}, "
        f"{'NHWC' if nhwc else 'NCHW'}, {torch.get_num_threads()} thread(s), "
        f"{macs / 1e9:.2f} GMAC direct"
    )
    for r in rows:
        print(f"  {r['pass']:17s} {r['variant']:20s} median {r['median_ms']:8.1f} ms")
    for name, err in accuracy.items():
        print(
            f"  error vs float64, {name:20s} output {err['out']:.1e}  input grad "
            f"{err['grad_x']:.1e}  weight grad {err['grad_w']:.1e}"
        )
    if args.json:
        meta = {
            "preset": args.preset,
            "speed": args.speed,
            "threads": torch.get_num_threads(),
            "reps": args.reps,
        }
        with open(args.json, "w") as f:
            json.dump({**meta, "rows": rows, "error_vs_float64": accuracy}, f, indent=2)


if __name__ == "__main__":
    main()
