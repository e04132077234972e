"""3x3 convolutions (stride 1, padding 1) by Winograd's minimal filtering F(4x4, 3x3), on the CPU
(speed.winograd).

Why: G's residual blocks are 73 % of its arithmetic at 128 px, all 3x3 convolutions that
oneDNN's CPU kernels compute directly (oneDNN dropped its x86 Winograd kernels in v3) at about
the matmul peak. F(4x4, 3x3) (Lavin & Gray, 2016) computes each 4x4 output tile from a 6x6 input
tile with 36 products per channel pair instead of 144: the input tiles and the weight are
transformed (sums and small constant multiples), multiplied as 36 matrix products [tiles, C_in]
@ [C_in, C_out], and transformed back. The same convolution, rounded differently: 2.5-8x the
direct kernel's error against float64, about 1e-5 of the output's scale
(benchmarks/winograd_conv.py), which is why it is an option. Measurements: docs/performance.md.

Tensors are NHWC inside, so channels_last activations (speed.channels_last) are read in place and
the result is channels_last. The backward recomputes the transformed input from the saved input
instead of keeping it (2.25x the input's size). It is a torch custom op, so speed.g_recompute
'norms' can tell it from the ops around it and keep its output like a convolution's.
"""

from __future__ import annotations

import torch

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
# The batch is transformed and multiplied a few images at a time, so that a transformed block
# (36 x tiles x channels, the largest tensors here) stays in the last-level cache and its
# freed blocks are reused from glibc's heap rather than mapped afresh, with page faults on first
# touch, for every call (above 32 MiB glibc always maps them): at 128 px a residual conv's
# forward + backward took 194 ms by 4-image chunks (this size) against 250 ms for the whole
# batch of 16 at once, and a whole iteration ran as fast as with the batch at once and glibc
# told to keep large blocks (docs/performance.md).
_CHUNK_BYTES = 10 << 20


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


def _input_rows(taps: list[torch.Tensor]) -> torch.Tensor:
    """_mix(taps, _BT) in 12 passes instead of 22, sharing partial sums between rows (the
    usual factorisation of F(4x4, 3x3)'s input transform); the transform runs twice per
    training pass (forward, and its recomputation in backward), on the largest tensors."""
    d0, d1, d2, d3, d4, d5 = taps
    o = d0.new_empty((_TAPS, *d0.shape))
    torch.add(d4, d2, alpha=-4, out=o[1])  # t = d4 - 4 d2
    torch.add(d3, d1, alpha=-4, out=o[2])  # s = d3 - 4 d1
    o[1].add_(o[2])  # row 1: t + s
    torch.add(o[1], o[2], alpha=-2, out=o[2])  # row 2: t - s
    torch.sub(d4, d2, out=o[3])  # p = d4 - d2
    torch.sub(d3, d1, out=o[4])  # q = d3 - d1
    torch.sub(d0, d2, out=o[0])
    torch.add(o[3], o[0], alpha=4, out=o[0])  # row 0: 4 (d0 - d2) + p
    torch.sub(d5, d3, out=o[5])
    o[5].add_(o[4], alpha=-4)  # row 5: (d5 - d3) - 4 q
    o[3].add_(o[4], alpha=2)  # row 3: p + 2 q
    torch.add(o[3], o[4], alpha=-4, out=o[4])  # row 4: p - 2 q
    return o


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
    v = _input_rows(_strided(xp, 1, t1))  # [6a, N, T1, Wp, C]
    v = _input_rows(_strided(v, 3, t2))  # [6b, 6a, N, T1, T2, C]
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


def _weight_transform_adjoint(du: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The transpose of _weight_transform: dU [36, C_in, C_out] -> dW [C_out, C_in, 3, 3], in
    the weight's memory format."""
    g = weight.new_tensor(_G)
    dw = torch.einsum("ai,bj,back->kcij", g, g, du.view(_TAPS, _TAPS, *du.shape[1:]))
    return dw.contiguous(memory_format=torch.channels_last) if _is_channels_last(weight) else dw


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


def _chunk(n: int, h: int, w: int, c: int) -> int:
    """Images per pass: as many as keep one transformed [36, tiles, C] block near _CHUNK_BYTES."""
    t1, t2 = _tiles(h, w)
    per_image = _TAPS * _TAPS * t1 * t2 * c * 4
    return max(1, min(n, round(_CHUNK_BYTES / per_image)))


@torch.library.custom_op("stargan::winograd_conv3x3", mutates_args=())
def winograd_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.conv2d(x, weight, padding=1) for a [C_out, C_in, 3, 3] weight, no bias, by
    F(4x4, 3x3): x [N, C_in, H, W] -> [N, C_out, H, W] in x's memory format. Differentiable
    once (G's training); not twice (D's gradient penalty would need it: D never uses it)."""
    n, c, h, w = x.shape
    u = _weight_transform(weight)
    xs, y = _nhwc(x), x.new_empty(n, h, w, weight.shape[0])
    step = _chunk(n, h, w, max(c, weight.shape[0]))
    for s in range(0, n, step):
        m = torch.bmm(_input_transform(xs[s : s + step]), u)
        y[s : s + step] = _output_transform(m, min(step, n - s), h, w)
    return _like(x, y)


@winograd_conv3x3.register_fake
def _(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    fmt = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
    return x.new_empty(x.shape[0], weight.shape[0], *x.shape[2:]).contiguous(memory_format=fmt)


def _setup_context(ctx, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
    ctx.save_for_backward(*inputs)


def _backward(ctx, dy: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    x, weight = ctx.saved_tensors
    n, c, h, w = x.shape
    xs, dys = _nhwc(x), _nhwc(dy)
    ut = _weight_transform(weight).transpose(1, 2)
    dx = x.new_empty(n, h, w, c) if ctx.needs_input_grad[0] else None
    du = None
    step = _chunk(n, h, w, max(c, weight.shape[0]))
    for s in range(0, n, step):
        dm = _output_transform_adjoint(dys[s : s + step])
        if dx is not None:
            dx[s : s + step] = _input_transform_adjoint(torch.bmm(dm, ut), min(step, n - s), h, w)
        if ctx.needs_input_grad[1]:
            # The transformed input is recomputed here rather than kept from the forward.
            v = _input_transform(xs[s : s + step]).transpose(1, 2)
            du = torch.bmm(v, dm) if du is None else du.baddbmm_(v, dm)
    return (
        None if dx is None else _like(x, dx),
        None if du is None else _weight_transform_adjoint(du, weight),
    )


winograd_conv3x3.register_autograd(_backward, setup_context=_setup_context)
