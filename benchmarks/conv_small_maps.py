"""nn.Conv2d against SmallMapConv2d (unfold + one GEMM) on each of D's convs, as training
uses them: the D update (forward on real + fake, backward to weights and input) and the
gradient penalty (forward on the interpolates, input gradient with its graph, backward).

    taskset -c 1 python benchmarks/conv_small_maps.py --preset celeba-128 --threads 1
    python benchmarks/conv_small_maps.py --threads 2 --layers conv4 conv5 src cls

--channels-last puts weights and inputs in NHWC memory order, as speed.channels_last (the
cpu-128 speed profile) trains. Every layer is timed in both forms whatever its output size
(the library only takes the GEMM path for maps of at most SmallMapConv2d.max_positions
pixels); the outputs and gradients of the two forms are compared too. The whole D update is
timed with D as speed.cpu_kernels computes it and with every conv nn.Conv2d.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from torch import nn

from stargan.accel.kernels import SmallMapConv2d
from stargan.presets import get_preset


def d_convs(preset: str) -> list[tuple[str, nn.Conv2d, int]]:
    """(name, conv, input side) for D's trunk convs (conv0 = main.0, conv1 = main.2, ...)
    and its two heads."""
    cfg = get_preset(preset).model
    convs, dim, side = [], cfg.d_conv_dim, cfg.image_size
    c_in = 3
    for i in range(cfg.d_repeat_num):
        convs.append((f"conv{i}", nn.Conv2d(c_in, dim, 4, 2, 1), side))
        c_in, dim, side = dim, dim * 2, side // 2
    convs.append(("src", nn.Conv2d(c_in, 1, 3, 1, 1, bias=False), side))
    convs.append(("cls", nn.Conv2d(c_in, 5, side, bias=False), side))
    return convs


def as_gemm(conv: nn.Conv2d) -> SmallMapConv2d:
    """The same layer (shared parameters) computed as unfold + GEMM at any output size."""
    out = SmallMapConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        bias=conv.bias is not None,
    )
    out.weight, out.bias = conv.weight, conv.bias
    out.max_positions, out.min_patch = 10**9, 0
    return out


def max_rel_diff(want: list[torch.Tensor], got: list[torch.Tensor]) -> float:
    """The largest difference between paired tensors, each over its reference's largest
    magnitude."""
    return max(
        ((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item()
        for a, b in zip(want, got, strict=True)
    )


def best_of(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up (oneDNN picks its kernels on the first call)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def d_update(layer: nn.Module, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    x = x.detach().requires_grad_(True)
    params = [p for p in layer.parameters()]
    return list(torch.autograd.grad(layer(x), [x, *params], g))


def penalty(layer: nn.Module, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    x = x.detach().requires_grad_(True)
    (gx,) = torch.autograd.grad(layer(x), x, g, create_graph=True)
    # A lone linear layer's input gradient does not depend on its bias: weight only.
    return list(torch.autograd.grad(gx.square().sum(), [layer.weight]))


def time_layer(
    label: str,
    layer: nn.Module,
    x2: torch.Tensor,
    g2: torch.Tensor,
    x1: torch.Tensor,
    g1: torch.Tensor,
    reps: int,
) -> dict[str, float]:
    def forward() -> None:
        with torch.no_grad():
            layer(x2)

    return {
        f"{label}_fwd_ms": 1e3 * best_of(forward, reps),
        f"{label}_update_ms": 1e3 * best_of(lambda: d_update(layer, x2, g2), reps),
        f"{label}_gp_ms": 1e3 * best_of(lambda: penalty(layer, x1, g1), reps),
    }


def whole_d_update(
    preset: str, n: int, reps: int, memory_format: torch.memory_format
) -> dict[str, float]:
    """The D update of training (real + fake in one forward, gradient penalty on the
    interpolates, backward) with D as speed.cpu_kernels computes it, and with every conv left
    to nn.Conv2d."""
    from stargan import losses
    from stargan.accel import use_cpu_kernels
    from stargan.models import build_discriminator

    cfg = get_preset(preset).model
    d = build_discriminator(cfg)
    use_cpu_kernels(d)
    d = d.to(memory_format=memory_format)
    x = torch.rand(2 * n, 3, cfg.image_size, cfg.image_size) * 2 - 1
    x = x.contiguous(memory_format=memory_format)
    labels = (torch.rand(n, cfg.n_classes) < 0.5).float()
    alpha = torch.rand(n)

    def step() -> None:
        src, cls = d(x)
        loss = losses.d_adversarial_loss("wgan-gp", src[:n], src[n:])
        loss = loss + losses.classification_loss("binary", cls[:n], labels)
        x_hat = losses.interpolate(x[:n], x[n:], alpha)
        loss = loss + 10 * losses.gradient_penalty(d(x_hat)[0], x_hat)
        d.zero_grad(set_to_none=True)
        loss.backward()

    out = {"ours_ms": 1e3 * best_of(step, reps)}
    small = [m for m in d.modules() if isinstance(m, SmallMapConv2d)]
    for m in small:
        m.max_positions = 0  # every conv is nn.Conv2d again
    out["conv_ms"] = 1e3 * best_of(step, reps)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument("--batch", type=int, default=None, help="default: the preset's batch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (best is kept)")
    p.add_argument("--layers", nargs="+", help="only these (e.g. conv4 conv5 src cls)")
    p.add_argument(
        "--channels-last", action="store_true", help="weights and inputs in NHWC memory order"
    )
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = args.batch or get_preset(args.preset).optim.batch_size
    rows = []
    for name, conv, side in d_convs(args.preset):
        if args.layers and name not in args.layers:
            continue
        conv = conv.to(memory_format=memory_format)
        gemm = as_gemm(conv)
        x2 = torch.randn(2 * n, conv.in_channels, side, side)  # real + fake in one forward
        x2 = x2.contiguous(memory_format=memory_format)
        x1 = x2[:n].clone()  # the interpolates
        y = conv(x2)
        g2, g1 = torch.randn_like(y), torch.randn_like(y[:n])
        row = {
            "layer": name,
            "shape": f"{conv.in_channels}->{conv.out_channels} k{conv.kernel_size[0]} "
            f"{side}->{y.shape[-1]}",
            "positions": y.shape[-1] * y.shape[-2],
        }
        for label, layer in (("conv", conv), ("gemm", gemm)):
            row |= time_layer(label, layer, x2, g2, x1, g1, args.reps)
        with torch.no_grad():
            row["max_abs_diff_out"] = (conv(x2) - gemm(x2)).abs().max().item()
        row["max_rel_diff_grads"] = max_rel_diff(d_update(conv, x2, g2), d_update(gemm, x2, g2))
        rows.append(row)
        print(
            f"{name:5s} {row['shape']:24s} fwd {row['conv_fwd_ms']:7.1f} -> "
            f"{row['gemm_fwd_ms']:7.1f} ms | D update {row['conv_update_ms']:7.1f} -> "
            f"{row['gemm_update_ms']:7.1f} ms | GP {row['conv_gp_ms']:7.1f} -> "
            f"{row['gemm_gp_ms']:7.1f} ms | diff out {row['max_abs_diff_out']:.1e} "
            f"grads(rel) {row['max_rel_diff_grads']:.1e}",
            flush=True,
        )
    whole = {}
    if not args.layers:
        whole = whole_d_update(args.preset, n, args.reps, memory_format)
        print(
            f"whole D update (forward 2N + GP on N + backward): nn.Conv2d everywhere "
            f"{whole['conv_ms']:.1f} ms -> speed.cpu_kernels {whole['ours_ms']:.1f} ms "
            f"({whole['conv_ms'] / whole['ours_ms']:.2f}x)"
        )
    if args.json:
        meta = {
            "preset": args.preset,
            "batch": n,
            "threads": torch.get_num_threads(),
            "channels_last": args.channels_last,
        }
        with open(args.json, "w") as f:
            json.dump({**meta, "layers": rows, "whole_d_update": whole}, f, indent=2)


if __name__ == "__main__":
    main()
