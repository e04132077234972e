"""oneDNN's direct 3x3 convolution against Winograd's minimal filtering F(4x4, 3x3) on G's
residual-block convs (C -> C, stride 1, padding 1: 73 % of G's arithmetic at 128 px), in
the preset's memory order and batch: forward without autograd (D-only iterations), forward +
backward to input and weight (G's update), and each one's error against float64.

    python benchmarks/winograd_conv.py --preset celeba-128 --threads 2 --reps 7

F(4x4, 3x3) (Lavin & Gray, 2016) computes each 4x4 output tile from a 6x6 input tile with 36
products per channel pair instead of 144: the input tiles and the weight are transformed
(sums and small constant multiples), multiplied as 36 matrix products [tiles, C_in] @ [C_in,
C_out], and transformed back. oneDNN dropped its x86 Winograd kernels in v3, so this one is
written with torch ops (NHWC inside; the backward recomputes the transformed input instead of
keeping it). The trainer does not use it: docs/performance.md has the figures and why.
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

from stargan.presets import get_preset

sys.path.insert(0, str(Path(__file__).parent))
from conv_small_maps import max_rel_diff

# Lavin & Gray's F(4x4, 3x3) at the points 0, +-1, +-2: input (B^T), weight (G) and output
# (A^T) transforms. Rows are the tile positions each transform produces.
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_AT = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)
_B = tuple(zip(*_BT, strict=True))  # the adjoints, for the backward
_A = tuple(zip(*_AT, strict=True))
_TILE, _TAPS = 4, 6  # output and input tile sizes


def _mix(taps: list[torch.Tensor], mat: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    """[len(mat), *tap shape]: row r is sum_i mat[r][i] * taps[i] (zeros skipped).

    The transforms' matrices are small, sparse and fixed, so this is a handful of
    elementwise passes writing straight into the result, not a matmul over copied tiles."""
    out = taps[0].new_empty((len(mat), *taps[0].shape))
    for r, row in enumerate(mat):
        first = True
        for tap, c in zip(taps, row, strict=True):
            if c == 0:
                continue
            if first:
                torch.mul(tap, c, out=out[r])
                first = False
            else:
                out[r].add_(tap, alpha=c)
    return out


def _strided(x: torch.Tensor, dim: int, tiles: int) -> list[torch.Tensor]:
    """The 6 taps of ``tiles`` overlapping input tiles (stride 4) along ``dim``: tap i holds
    positions 4t + i."""
    span = _TILE * (tiles - 1) + 1
    return [x.narrow(dim, i, span).unfold(dim, 1, _TILE).squeeze(-1) for i in range(_TAPS)]


def _tiles(h: int, w: int) -> tuple[int, int]:
    return -(-h // _TILE), -(-w // _TILE)


def _input_transform(x: torch.Tensor) -> torch.Tensor:
    """x [N, H, W, C] (NHWC) -> V [36, N*T1*T2, C], zero padding 1 (and up to whole tiles)."""
    n, h, w, c = x.shape
    t1, t2 = _tiles(h, w)
    xp = x.new_zeros(n, _TILE * t1 + 2, _TILE * t2 + 2, c)
    xp[:, 1 : h + 1, 1 : w + 1] = x
    v = _mix(_strided(xp, 1, t1), _BT)  # [6a, N, T1, Wp, C]
    v = _mix(_strided(v, 3, t2), _BT)  # [6b, 6a, N, T1, T2, C]
    return v.view(_TAPS * _TAPS, n * t1 * t2, c)


def _input_transform_adjoint(dv: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """The transpose of _input_transform: dV [36, N*T1*T2, C] -> dx [N, H, W, C]."""
    t1, t2 = _tiles(h, w)
    c = dv.shape[-1]
    dv = dv.view(_TAPS, _TAPS, n, t1, t2, c)
    per_col = _mix(list(dv), _B)  # [6j, 6a, N, T1, T2, C]
    dv1 = dv.new_zeros(_TAPS, n, t1, _TILE * t2 + 2, c)
    for j, part in zip(_strided(dv1, 3, t2), per_col, strict=True):
        j.add_(part)  # the tiles overlap: their contributions add up
    per_row = _mix(list(dv1), _B)  # [6i, N, T1, Wp, C]
    dxp = dv.new_zeros(n, _TILE * t1 + 2, _TILE * t2 + 2, c)
    for i, part in zip(_strided(dxp, 1, t1), per_row, strict=True):
        i.add_(part)
    return dxp[:, 1 : h + 1, 1 : w + 1]


def _weight_transform(weight: torch.Tensor) -> torch.Tensor:
    """[C_out, C_in, 3, 3] -> U [36, C_in, C_out]."""
    g = weight.new_tensor(_G)
    u = torch.einsum("ai,bj,kcij->back", g, g, weight)
    return u.reshape(_TAPS * _TAPS, weight.shape[1], weight.shape[0])


def _output_transform(m: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """M [36, N*T1*T2, C_out] -> y [N, H, W, C_out] (a view of a contiguous NHWC tensor)."""
    t1, t2 = _tiles(h, w)
    m = m.view(_TAPS, _TAPS, n, t1, t2, -1)
    y = _mix(list(m.unbind(1)), _AT)  # [4i, 6b, N, T1, T2, K]
    y = _mix(list(y.unbind(1)), _AT)  # [4j, 4i, N, T1, T2, K]
    y = y.permute(2, 3, 1, 4, 0, 5).reshape(n, _TILE * t1, _TILE * t2, -1)
    return y[:, :h, :w]


def _output_transform_adjoint(dy: torch.Tensor) -> torch.Tensor:
    """The transpose of _output_transform: dy [N, H, W, C_out] -> dM [36, N*T1*T2, C_out]."""
    n, h, w, k = dy.shape
    t1, t2 = _tiles(h, w)
    full = dy.new_zeros(n, _TILE * t1, _TILE * t2, k)
    full[:, :h, :w] = dy
    full = full.view(n, t1, _TILE, t2, _TILE, k)
    dm = _mix(list(full.unbind(2)), _A)  # [6a, N, T1, T2, 4j, K]
    dm = _mix(list(dm.unbind(4)), _A)  # [6b, 6a, N, T1, T2, K]
    return dm.view(_TAPS * _TAPS, n * t1 * t2, k)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _like(x: torch.Tensor, nhwc: torch.Tensor) -> torch.Tensor:
    """An NHWC result as [N, C, H, W] in x's memory format (channels_last as it is)."""
    y = nhwc.contiguous().permute(0, 3, 1, 2)
    return y if _is_channels_last(x) else y.contiguous()


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class WinogradConv3x3(torch.autograd.Function):
    """F.conv2d(x, weight, padding=1) for a [C_out, C_in, 3, 3] weight, no bias, by
    F(4x4, 3x3): x [N, C_in, H, W] -> [N, C_out, H, W] in x's memory format."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, weight: torch.Tensor):
        ctx.save_for_backward(x, weight)
        n, _, h, w = x.shape
        m = torch.bmm(_input_transform(_nhwc(x)), _weight_transform(weight))
        return _like(x, _output_transform(m, n, h, w))

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, dy: torch.Tensor):
        x, weight = ctx.saved_tensors
        n, _, h, w = x.shape
        dm = _output_transform_adjoint(_nhwc(dy))
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dv = torch.bmm(dm, _weight_transform(weight).transpose(1, 2))
            dx = _like(x, _input_transform_adjoint(dv, n, h, w))
        if ctx.needs_input_grad[1]:
            # The transformed input is recomputed here rather than kept from the forward.
            du = torch.bmm(_input_transform(_nhwc(x)).transpose(1, 2), dm)
            g = weight.new_tensor(_G)
            du = du.view(_TAPS, _TAPS, *du.shape[1:])
            dw = torch.einsum("ai,bj,back->kcij", g, g, du)
        return dx, dw


def winograd_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return WinogradConv3x3.apply(x, weight)


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
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=5, help="timed calls per variant (median kept)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = get_preset(args.preset)
    layout = torch.channels_last if cfg.run.channels_last else torch.contiguous_format
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
        f"{'NHWC' if cfg.run.channels_last else 'NCHW'}, {torch.get_num_threads()} thread(s), "
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
        meta = {"preset": args.preset, "threads": torch.get_num_threads(), "reps": args.reps}
        with open(args.json, "w") as f:
            json.dump({**meta, "rows": rows, "error_vs_float64": accuracy}, f, indent=2)


if __name__ == "__main__":
    main()
