"""The D update's forwards, two ways with the same maths: real + fake in one forward and the
interpolates in a second (the trainer's step), against all three in one forward with the
gradient penalty taken from its interpolate rows (D has no batch-dependent layers, so each
row's output is the same either way).

    python benchmarks/d_forwards.py --preset celeba-128 --speed cpu-128 --threads 2 --reps 8
    taskset -c 1 python benchmarks/d_forwards.py --preset synth-demo --threads 1 --reps 40

One forward saves a call but makes the penalty's input gradient, and the double backward
after it, run over all 3N rows (N of them needed): every conv's backward-data pass then
computes zeros for the 2N real and fake rows. Both variants are timed alternately, with D
computed as training computes it under the preset's speed settings, or --speed's profile
(kernels, memory order); the script first checks that their losses and D's gradients agree.
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

from stargan import losses
from stargan.accel import use_cpu_kernels
from stargan.config import SPEED_PROFILES
from stargan.models import build_discriminator
from stargan.presets import get_preset

sys.path.insert(0, str(Path(__file__).parent))
from conv_small_maps import max_rel_diff

GP_WEIGHT = 10.0


def d_update_variants(
    preset: str, speed: str | None = None
) -> tuple[torch.nn.Module, dict[str, Callable[[], float]]]:
    """The preset's D (its kernels and memory order from the preset's speed settings, or the
    profile ``speed``) and the two D updates on one random batch; each call runs forward,
    penalty and backward, leaves D's gradients in place and returns the loss."""
    cfg = get_preset(preset)
    settings = SPEED_PROFILES[speed] if speed else cfg.speed
    layout = torch.channels_last if settings.channels_last else torch.contiguous_format
    d = build_discriminator(cfg.model)
    if settings.cpu_kernels:
        use_cpu_kernels(d)
    d = d.to(memory_format=layout)
    n, size = cfg.optim.batch_size, cfg.model.image_size
    x_real = torch.rand(n, 3, size, size) * 2 - 1
    x_fake = (torch.rand(n, 3, size, size) * 2 - 1).contiguous(memory_format=layout)
    labels = (torch.rand(n, cfg.model.n_classes) < 0.5).float()
    alpha = torch.rand(n)

    def loss_of(src_real, src_fake, cls_real, src_hat, x_hat) -> torch.Tensor:
        loss = losses.d_adversarial_loss("wgan-gp", src_real, src_fake)
        loss = loss + losses.classification_loss("binary", cls_real, labels)
        return loss + GP_WEIGHT * losses.gradient_penalty(src_hat, x_hat)

    def two() -> float:
        src, cls = d(torch.cat([x_real, x_fake]))
        x_hat = losses.interpolate(x_real, x_fake, alpha)
        loss = loss_of(src[:n], src[n:], cls[:n], d(x_hat)[0], x_hat)
        loss.backward()
        return loss.item()

    def one() -> float:
        x_hat = losses.interpolate(x_real, x_fake, alpha)
        src, cls = d(torch.cat([x_real, x_fake, x_hat]))
        loss = loss_of(src[:n], src[n : 2 * n], cls[:n], src[2 * n :], x_hat)
        loss.backward()
        return loss.item()

    return d, {"two forwards (trainer)": two, "one forward": one}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument("--speed", choices=list(SPEED_PROFILES), help="instead of the preset's")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=5, help="timed D updates per variant")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, variants = d_update_variants(args.preset, args.speed)

    losses_and_grads = {}  # also the warm-up (oneDNN picks its kernels on the first calls)
    for name, update in variants.items():
        loss = update()
        losses_and_grads[name] = (loss, [p.grad.clone() for p in d.parameters()])
        d.zero_grad(set_to_none=True)
    (loss_a, grads_a), (loss_b, grads_b) = losses_and_grads.values()
    agreement = {
        "loss_rel_diff": abs(loss_a - loss_b) / abs(loss_a),
        "grad_max_rel_diff": max_rel_diff(grads_a, grads_b),
    }

    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(args.reps):
        for name in names if i % 2 == 0 else names[::-1]:  # alternate: drift hits both alike
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
            d.zero_grad(set_to_none=True)

    rows = [
        {"variant": name, "median_ms": 1e3 * statistics.median(t), "best_ms": 1e3 * min(t)}
        for name, t in times.items()
    ]
    print(
        f"{args.preset}: D update (batch {get_preset(args.preset).optim.batch_size}), "
        f"{torch.get_num_threads()} thread(s), {args.reps} alternating repetitions"
    )
    for r in rows:
        print(f"  {r['variant']:24s} median {r['median_ms']:8.1f} ms   best {r['best_ms']:8.1f} ms")
    print(
        f"  same maths: loss {agreement['loss_rel_diff']:.1e} and D's gradients "
        f"{agreement['grad_max_rel_diff']:.1e} apart (relative)"
    )
    if args.json:
        meta = {
            "preset": args.preset,
            "speed": args.speed,
            "threads": torch.get_num_threads(),
            "reps": args.reps,
        }
        with open(args.json, "w") as f:
            json.dump({**meta, "rows": rows, **agreement}, f, indent=2)


if __name__ == "__main__":
    main()
