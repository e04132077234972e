"""Seconds per training iteration for a preset, on random data of the preset's shape: our
Trainer's step against the official 2018 release's step structure (tests/reference_step.py,
the copy kept for tests/unit/test_official_step_parity.py).

    taskset -c 1 python benchmarks/train_speed.py --preset celeba-128 --iters 10 --threads 1
    python benchmarks/train_speed.py --preset celeba-128 --mode both --json out.json
    python benchmarks/train_speed.py --preset synth-demo --iters 50 --mode ours
    python benchmarks/train_speed.py --device cuda --bf16 --channels-last --cudnn-benchmark
    python benchmarks/train_speed.py --preset celeba-128 --speed cpu-128 --mode both

Our step computes as the preset's speed settings say (stargan.config.SpeedConfig), or as the
profile --speed names, with --channels-last, --g-recompute, --compile-g, --winograd, --bf16,
--plain-convs and --plain-norms on top. The reference computes as the release: speed profile
'plain' (torch's own kernels, NCHW, eager, nothing recomputed), with --bf16 in both modes.

An iteration is one D update (and a G update every n_critic-th) per dataset of the preset, as
in training (a joint preset's iteration takes a CelebA batch, then a RaFD batch: two steps,
as in the release's train_multi); we time whole n_critic cycles so the mean is the true
average cost per iteration. Each dataset's labels are the preset's own (CelebA's selected
attributes, RaFD's 8 expressions one-hot, the mask vector in joint presets), so G's input
and D's classifier have the preset's sizes.

--mode ours | reference: that step in this process (peak RSS is this process's).
--mode both: the two steps side by side in this process, interleaved iteration by iteration
  (ours first on even iterations, reference first on odd ones, so load drift on a shared
  machine hits both alike), on the same seed, data and random draws. Their loss terms must
  agree to float rounding: during the warm-up (one n_critic cycle) the reference takes our
  weights, Adam state and generator before each step, and the largest difference of each term
  over those lockstep steps is judged against LOCKSTEP_RTOL (of the term, or of the largest
  loss term); the differences over the free-running timed iterations are printed too. Peak
  RSS comes from a fresh subprocess per mode (one warm-up cycle each), so each mode's figure
  is its own.

FLOPs: after timing, one D-only and one D+G iteration (every dataset's steps) are run under
a dispatch-mode counter (torch.utils.flop_counter's formulas for convolutions and matrix
products, gradient penalty's double backward included) and averaged over an n_critic cycle.
Achieved GFLOP/s is that over s/iter; the machine's peak is the best of a few large fp32
matmuls timed in the same process (with --bf16 also bf16 ones, and the faster dtype is the
ceiling).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
import typing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from stargan.accel.kernels import GroupNormInstanceNorm, SmallMapConv2d, WinogradConv2d, swap
from stargan.config import (
    SPEED_PROFILES,
    DataConfig,
    GRecompute,
    RunConfig,
    SpeedConfig,
    auto_speed,
)
from stargan.data import celeba
from stargan.data.labels import LabelSpec
from stargan.data.synthfaces import DEFAULT_SELECTED_ATTRS, EXPRESSIONS
from stargan.presets import get_preset
from stargan.training.trainer import Trainer

# The reference step is a copy kept for the tests (tests/unit/test_official_step_parity.py).
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from reference_step import as_reference, copy_state

MODES = ("ours", "reference")
LOCKSTEP_RTOL = 1e-4
"""Largest relative loss difference accepted between the modes' steps taken from the same
state (the warm-up's lockstep cycle): float rounding alone, as the maths is the same. Over the
free-running timed iterations the differences grow (each mode's rounding moves its weights
apart), so those are reported, not judged. A term also agrees within LOCKSTEP_RTOL of the
largest loss term: some terms are sums that cancel (both-128's RaFD G/loss: -7.61 + 2.09 +
10 x 0.547 = -0.042) or differences of means near zero (WGAN's D/adv at a fresh D, 1e-8), so
the rounding of their parts is a large share of them."""


class RandomData(torch.utils.data.Dataset):
    def __init__(self, spec, n: int, size: int) -> None:
        self.label_spec, self.n, self.size = spec, n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        n_labels = self.label_spec.n_labels
        if self.label_spec.kind == "categorical":
            label = torch.zeros(n_labels)
            label[torch.randint(n_labels, (), generator=g)] = 1.0
        else:
            label = (torch.rand(n_labels, generator=g) < 0.5).float()
        return torch.rand(3, self.size, self.size, generator=g) * 2 - 1, label


RAFD_LIKE = ("rafd", "synthfaces-rafd")
CELEBA_LIKE = {"celeba": celeba.DEFAULT_ATTRS, "synthfaces-celeba": DEFAULT_SELECTED_ATTRS}
"""CelebA-like formats, each with the attributes it selects when the config names none."""


def label_spec(data: DataConfig) -> LabelSpec:
    """The labels a preset's dataset gives, without its files: CelebA-like sets their selected
    attributes (binary), RaFD-like ones the 8 expressions (categorical; RaFD's folders name
    them)."""
    if data.name in RAFD_LIKE:
        return LabelSpec(EXPRESSIONS, "categorical")
    if data.name in CELEBA_LIKE:
        return LabelSpec(data.selected_attrs or CELEBA_LIKE[data.name], "binary")
    raise ValueError(
        f"train_speed.py cannot tell the labels of dataset {data.name!r} without its files; "
        f"it knows {(*CELEBA_LIKE, *RAFD_LIKE)}"
    )


class FlopCount(TorchDispatchMode):
    """FLOPs of convolutions and matrix products (forward, backward, double backward) run
    while active. torch's FlopCounterMode has the same formulas but its module hooks break
    autograd.grad, which the gradient penalty needs."""

    def __init__(self) -> None:
        super().__init__()
        self.by_op: Counter[str] = Counter()

    def __torch_dispatch__(self, func, _types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.by_op[str(func._overloadpacket)] += formula(*args, **kwargs, out_val=out)
        return out


def _plain(args: argparse.Namespace) -> tuple[bool, bool]:
    """(--plain-convs, --plain-norms); absent from the namespaces of scripts without them."""
    return getattr(args, "plain_convs", False), getattr(args, "plain_norms", False)


def _base_speed(args: argparse.Namespace) -> SpeedConfig:
    """Our step's speed settings before the flags: --speed's profile, else the preset's, else
    what `stargan train` chooses for the preset's size and --device (config.auto_speed)."""
    profile = getattr(args, "speed", None)
    cfg = get_preset(args.preset)
    if profile is None and cfg.speed == SpeedConfig():
        profile = auto_speed(cfg.model.image_size, torch.device(args.device).type)
    speed = SPEED_PROFILES[profile] if profile else cfg.speed
    return dataclasses.replace(speed, winograd=speed.winograd and not getattr(args, "bf16", False))


def speed_for(args: argparse.Namespace, mode: str) -> SpeedConfig:
    """The speed settings of ``mode``'s trainer. Ours: --speed's profile, else the preset's,
    with --[no-]channels-last, --g-recompute, --[no-]compile-g, --[no-]winograd, --bf16 and
    --plain-* on top. The reference: the release's computation (profile 'plain': torch's own
    kernels, NCHW tensors, eager G, nothing recomputed), in --bf16's precision too."""
    precision = "bf16" if args.bf16 else "fp32"
    if mode == "reference":
        return dataclasses.replace(SPEED_PROFILES["plain"], precision=precision)
    base = _base_speed(args)
    flags = {
        name: getattr(args, name)
        for name in ("channels_last", "compile_g", "winograd")
        if getattr(args, name) is not None
    }
    return dataclasses.replace(
        base,
        # --plain-convs or --plain-norms: built without, the other half put back (make_trainer).
        cpu_kernels=base.cpu_kernels and not any(_plain(args)),
        g_recompute=args.g_recompute or base.g_recompute,
        precision=precision,
        **flags,
    )


def make_trainer(args: argparse.Namespace, mode: str, tmp: str) -> Trainer:
    cfg = get_preset(args.preset)
    size, batch = cfg.model.image_size, cfg.optim.batch_size
    speed = speed_for(args, mode)
    cfg = type(cfg)(
        model=cfg.model,
        loss=cfg.loss,
        # The GAN step is what is timed: a preset's D-classifier warm-up (synth-demo's first
        # 200 iterations update D's classifier alone) would replace it in every timed iteration.
        optim=dataclasses.replace(cfg.optim, d_cls_warmup=0),
        data=cfg.data,
        run=RunConfig(
            out_dir=str(Path(tmp) / mode), sample_every=0, save_every=10**9, device=args.device
        ),
        speed=speed,
    )
    datasets = [RandomData(label_spec(d), 4 * batch, size) for d in cfg.data]
    trainer = Trainer(cfg, datasets=datasets)
    if mode == "reference":
        return as_reference(trainer)  # the release's step and per-tensor Adam
    plain_convs, plain_norms = _plain(args)
    if _base_speed(args).cpu_kernels and plain_convs != plain_norms:
        # speed.cpu_kernels is both kernels, so ours was built without: the one not asked plain
        # goes back in (in place, before the first pass: a compiled G traces what it finds).
        for net in (trainer.G, trainer.D):
            if not plain_norms:
                swap(net, lambda m: type(m) is nn.InstanceNorm2d, GroupNormInstanceNorm)
            if not plain_convs:
                swap(net, lambda m: type(m) is nn.Conv2d and m.stride != (1, 1), SmallMapConv2d)
    return trainer


def sync(args: argparse.Namespace) -> None:
    if torch.device(args.device).type == "cuda":
        torch.cuda.synchronize()


def losses_of(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith("lr/")}


def timed_iteration(args: argparse.Namespace, trainer: Trainer) -> tuple[float, dict]:
    sync(args)
    t0 = time.perf_counter()
    metrics = trainer.train_iteration()
    sync(args)
    trainer.step += 1
    return time.perf_counter() - t0, metrics


@contextlib.contextmanager
def direct_convs(net: nn.Module) -> Iterator[None]:
    """``net``'s Winograd convs (--winograd) computed as nn.Conv2d inside."""
    winograd = [m for m in net.modules() if type(m) is WinogradConv2d]
    for m in winograd:
        m.__class__ = nn.Conv2d
    try:
        yield
    finally:
        for m in winograd:
            m.__class__ = WinogradConv2d


def count_flops(args: argparse.Namespace, trainer: Trainer) -> dict[str, float]:
    """FLOPs of one iteration (every dataset's steps), averaged over an n_critic cycle (its
    weights move on)."""
    n_critic = trainer.cfg.optim.n_critic
    counts = {}
    for update_g in (False, True):
        # Eager and direct: a compiled G (--compile-g) computes the same convolutions, which
        # the dispatch-mode counter only sees outside compiled graphs, and Winograd's
        # (--winograd) count as the convolutions they compute (the achieved GFLOP/s is then
        # effective: fewer products were made).
        with (
            direct_convs(trainer.G),
            torch.compiler.set_stance("force_eager"),
            FlopCount() as fc,
        ):
            for k, (stream, data) in enumerate(zip(trainer.streams, trainer.cfg.data, strict=True)):
                for _ in range(data.ratio):
                    x, label = stream.next()
                    trainer.train_step(k, x, label, update_g, flip=data.flip)
        counts[update_g] = fc
    total = (n_critic - 1) * sum(counts[False].by_op.values()) + sum(counts[True].by_op.values())
    return {
        "gflop_d_only_iter": sum(counts[False].by_op.values()) / 1e9,
        "gflop_d_and_g_iter": sum(counts[True].by_op.values()) / 1e9,
        "gflop_per_iter": total / n_critic / 1e9,
        "gflop_by_op_d_and_g_iter": {k: v / 1e9 for k, v in counts[True].by_op.items()},
    }


def peak_gflops(args: argparse.Namespace, dtype: torch.dtype) -> float:
    """Best of ``--peak-reps`` square matmuls of side ``--peak-size``: the machine's ceiling."""
    n = args.peak_size
    a = torch.randn(n, n, device=args.device).to(dtype)
    b = torch.randn(n, n, device=args.device).to(dtype)
    a @ b  # warm-up
    best = math.inf
    for _ in range(args.peak_reps):
        sync(args)
        t0 = time.perf_counter()
        a @ b
        sync(args)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def reset_peak_rss() -> bool:
    """Restart the peak-RSS count (Linux: VmHWM), so imports and set-up do not set it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """The process's peak resident memory since :func:`reset_peak_rss` (or its start)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarise(trainer: Trainer, times: list[float], n_critic: int) -> dict[str, float]:
    batch = trainer.cfg.optim.batch_size
    d_only = [t for i, t in enumerate(times) if (i + 1) % n_critic]
    with_g = [t for i, t in enumerate(times) if not (i + 1) % n_critic]
    total = sum(times)
    return {
        "s_per_iter": total / len(times),
        "images_per_s": batch * len(times) / total,
        "s_per_d_only_iter": sum(d_only) / max(len(d_only), 1),
        "s_per_d_and_g_iter": sum(with_g) / max(len(with_g), 1),
    }


def run(args: argparse.Namespace, modes: tuple[str, ...]) -> dict:
    """Warm up, then time ``args.iters`` iterations of each mode, interleaved; losses kept."""
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {m: make_trainer(args, m, tmp) for m in modes}
        n_critic = next(iter(trainers.values())).cfg.optim.n_critic
        iters = -(-args.iters // n_critic) * n_critic
        warmup = n_critic if args.warmup is None else args.warmup
        reset_peak_rss()  # the nets and optimisers stay counted: they are resident
        lockstep = {m: [] for m in modes}
        warmup_s = dict.fromkeys(modes, 0.0)
        for _ in range(warmup):
            if len(modes) > 1:
                # Each warm-up step starts the reference from our state, so the two steps'
                # losses differ by that one step's rounding alone (the check of identical maths).
                copy_state(trainers["ours"], trainers["reference"])
            for m, trainer in trainers.items():
                dt, metrics = timed_iteration(args, trainer)
                warmup_s[m] += dt
                lockstep[m].append(losses_of(metrics))
        times = {m: [] for m in modes}
        losses = {m: [] for m in modes}
        for i in range(iters):
            order = modes if i % 2 == 0 else modes[::-1]
            for m in order:
                dt, metrics = timed_iteration(args, trainers[m])
                times[m].append(dt)
                losses[m].append(losses_of(metrics))
        rss = peak_rss_mib()
        out = {"iterations": iters, "warmup": warmup, "modes": {}}
        for m, trainer in trainers.items():
            out["modes"][m] = summarise(trainer, times[m], n_critic)
            # What the warm-up cost beyond as many steady iterations: one-off work such as
            # torch.compile's (--compile-g) or oneDNN's first-call kernel selection.
            out["modes"][m]["warmup_s"] = warmup_s[m]
            out["modes"][m]["one_off_s"] = warmup_s[m] - warmup * out["modes"][m]["s_per_iter"]
            out["modes"][m]["losses"] = losses[m]
            out["modes"][m]["lockstep_losses"] = lockstep[m]
            if len(modes) == 1:
                out["modes"][m]["peak_rss_mib"] = rss
                if torch.device(args.device).type == "cuda":
                    out["modes"][m]["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        if args.flops:
            for m, trainer in trainers.items():
                out["modes"][m] |= count_flops(args, trainer)
    return out


def rss_in_subprocess(args: argparse.Namespace, mode: str) -> dict:
    """Peak memory of ``mode`` alone: a fresh process runs one n_critic cycle of it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rss.json"
        cmd = [sys.executable, __file__, "--mode", mode, "--preset", args.preset]
        cmd += ["--threads", str(args.threads), "--device", args.device]
        cmd += [
            flag
            for flag in (
                "--bf16",
                "--cudnn-benchmark",
                "--plain-convs",
                "--plain-norms",
            )
            if getattr(args, flag[2:].replace("-", "_"))
        ]
        if args.g_recompute:
            cmd += ["--g-recompute", args.g_recompute]
        if args.speed:
            cmd += ["--speed", args.speed]
        for name in ("channels_last", "compile_g", "winograd"):
            flag = "--" + name.replace("_", "-")
            if getattr(args, name) is not None:
                cmd += [flag if getattr(args, name) else "--no-" + flag[2:]]
        cmd += ["--warmup", "0", "--iters", "1", "--no-flops", "--peak-reps", "0"]
        cmd += ["--json", str(out)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())["modes"][mode]
    return {k: result[k] for k in ("peak_rss_mib", "peak_cuda_mib") if k in result}


def lockstep_error(difference: dict[str, float], scale: float) -> float:
    """One term's lockstep difference (from loss_differences), judged against LOCKSTEP_RTOL:
    relative to the term or to ``scale``, the largest |value| of any loss term over the
    lockstep steps, whichever is smaller."""
    return min(difference["max_rel"], difference["max_abs"] / scale)


def lockstep_agrees(difference: dict[str, float], scale: float) -> bool:
    """The difference is float rounding."""
    return lockstep_error(difference, scale) <= LOCKSTEP_RTOL


def largest_loss(metrics: list[dict[str, float]]) -> float:
    return max(abs(v) for m in metrics for v in m.values())


def loss_differences(ours: list[dict], ref: list[dict]) -> dict[str, dict[str, float]]:
    """Per loss term: the largest |ours - reference| over the iterations, that over the
    largest |loss| (relative), and the first iteration where they differ at all."""
    names = sorted({k for m in ours for k in m} & {k for m in ref for k in m})
    out = {}
    for name in names:
        pairs = [(a[name], b[name]) for a, b in zip(ours, ref, strict=True) if name in a]
        diffs = [abs(a - b) for a, b in pairs]
        scale = max(max(abs(a), abs(b)) for a, b in pairs)
        first = next(
            (
                i
                for i, (a, b) in enumerate(zip(ours, ref, strict=True))
                if a.get(name) != b.get(name)
            ),
            None,
        )
        out[name] = {
            "max_abs": max(diffs),
            "max_rel": max(diffs) / scale if scale else 0.0,
            "first_differing_iteration": first,
        }
    return out


def print_table(result: dict) -> None:
    cols = [
        ("s/iter", "s_per_iter", "{:.3f}"),
        ("img/s", "images_per_s", "{:.2f}"),
        ("s/D iter", "s_per_d_only_iter", "{:.3f}"),
        ("s/D+G iter", "s_per_d_and_g_iter", "{:.3f}"),
        ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
        ("peak CUDA MiB", "peak_cuda_mib", "{:.0f}"),
        ("GFLOP/iter", "gflop_per_iter", "{:.1f}"),
        ("GFLOP/s", "achieved_gflops", "{:.1f}"),
        ("% of peak", "percent_of_peak", "{:.1f}"),
    ]
    modes = result["modes"]
    cols = [c for c in cols if any(c[1] in r for r in modes.values())]
    print(f"{'mode':10s}" + "".join(f"{title:>15s}" for title, _, _ in cols))
    for m, r in modes.items():
        cells = [fmt.format(r[key]) if key in r else "-" for _, key, fmt in cols]
        print(f"{m:10s}" + "".join(f"{c:>15s}" for c in cells))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument("--mode", choices=[*MODES, "both"], default="ours")
    p.add_argument(
        "--iters", type=int, default=10, help="timed iterations (rounded up to n_critic)"
    )
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations (default n_critic)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument(
        "--bf16",
        action="store_true",
        help="speed.precision 'bf16' in both modes: G's and D's forwards under bf16 autocast",
    )
    p.add_argument(
        "--speed",
        choices=list(SPEED_PROFILES),
        help="our step's speed settings from this profile (stargan.config.SPEED_PROFILES) "
        "instead of the preset's; the flags below override it",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="override speed.channels_last (G and D in NHWC memory order; ours only, the "
        "reference keeps the release's NCHW)",
    )
    p.add_argument(
        "--compile-g",
        action=argparse.BooleanOptionalAction,
        help="override speed.compile_g (G's training passes through torch.compile; ours only, "
        "the reference's G stays eager)",
    )
    p.add_argument(
        "--winograd",
        action=argparse.BooleanOptionalAction,
        help="override speed.winograd (G's residual convs by F(4x4, 3x3) on the CPU; ours "
        "only, the reference's stay direct)",
    )
    p.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark")
    p.add_argument(
        "--plain-convs",
        action="store_true",
        help="our D computes its tiny-map convs with nn.Conv2d too, as the reference's always "
        "does (half of speed.cpu_kernels off: no SmallMapConv2d), to measure what that gains",
    )
    p.add_argument(
        "--plain-norms",
        action="store_true",
        help="our G's instance norms use instance_norm's kernel too, as the reference's always "
        "do (half of speed.cpu_kernels off: no GroupNormInstanceNorm), to measure what it gains",
    )
    p.add_argument(
        "--g-recompute",
        choices=typing.get_args(GRecompute),
        help="override speed.g_recompute (what G's training passes keep for backward; ours "
        "only, the reference keeps the release's step)",
    )
    p.add_argument("--no-flops", dest="flops", action="store_false", help="skip FLOP counting")
    p.add_argument("--peak-size", type=int, default=4096, help="side of the peak-FLOP/s matmul")
    p.add_argument("--peak-reps", type=int, default=3, help="its repetitions (0: skip)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    speed = speed_for(args, "ours")

    modes = MODES if args.mode == "both" else (args.mode,)
    result = {
        "preset": args.preset,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "bf16": args.bf16,
        "speed": args.speed,
        "channels_last": speed.channels_last,
        "compile_g": speed.compile_g,
        "winograd": speed.winograd,
        "plain_convs": args.plain_convs,
        "plain_norms": args.plain_norms,
        "g_recompute": speed.g_recompute,
        "batch_size": get_preset(args.preset).optim.batch_size,
        "image_size": get_preset(args.preset).model.image_size,
        **run(args, modes),
    }
    if args.mode == "both":
        for m in modes:
            result["modes"][m] |= rss_in_subprocess(args, m)
        ours, ref = result["modes"]["ours"], result["modes"]["reference"]
        result["speedup"] = ref["s_per_iter"] / ours["s_per_iter"]
        result["lockstep_differences"] = loss_differences(
            ours["lockstep_losses"], ref["lockstep_losses"]
        )
        result["loss_differences"] = loss_differences(ours["losses"], ref["losses"])
    if args.peak_reps:
        result["peak_gflops_fp32"] = peak_gflops(args, torch.float32)
        if args.bf16:
            result["peak_gflops_bf16"] = peak_gflops(args, torch.bfloat16)
        # The ceiling is the faster of the two (CPUs without bf16 units run bf16 slower).
        peak = max(result["peak_gflops_fp32"], result.get("peak_gflops_bf16", 0.0))
        for r in result["modes"].values():
            if "gflop_per_iter" in r:
                r["achieved_gflops"] = r["gflop_per_iter"] / r["s_per_iter"]
                r["percent_of_peak"] = 100 * r["achieved_gflops"] / peak

    print(
        f"{args.preset}: {result['image_size']} px, batch {result['batch_size']}, "
        f"{result['iterations']} timed iterations after {result['warmup']} warm-up, "
        f"device {args.device}, {result['threads']} thread(s)"
        + (", bf16 autocast" if args.bf16 else "")
        + (f", ours speed {args.speed!r}" if args.speed else "")
        + (", ours channels_last" if speed.channels_last else "")
        + (", ours compiled G" if speed.compile_g else "")
        + (", ours Winograd residual convs" if speed.winograd else "")
        + (", plain convs (no GEMM path)" if args.plain_convs else "")
        + (", plain norms (instance_norm's kernel)" if args.plain_norms else "")
    )
    print_table(result)
    for m, r in result["modes"].items():
        print(
            f"{m} warm-up: {r['warmup_s']:.1f} s for {result['warmup']} iteration(s), "
            f"{r['one_off_s']:.1f} s more than as many timed ones (one-off work)"
        )
    if "peak_gflops_fp32" in result:
        print(f"machine peak: {result['peak_gflops_fp32']:.1f} GFLOP/s fp32 matmul", end="")
        bf16 = result.get("peak_gflops_bf16")
        print(f", {bf16:.1f} GFLOP/s bf16" if bf16 else "")
    if "speedup" in result:
        print(f"speedup of ours over reference: {result['speedup']:.2f}x")
        lockstep, free = result["lockstep_differences"], result["loss_differences"]
        print(
            "ours vs reference, largest difference of each loss term (relative: over the "
            "term's largest |value|)\n  - lockstep: the warm-up's steps, each mode's taken from "
            "the same state\n  - free-running: the timed iterations, where each mode's "
            "rounding has moved its weights apart"
        )
        print(
            f"  {'term':8s} {'lockstep abs':>13s} {'lockstep rel':>13s} {'free abs':>10s} "
            f"{'free rel':>10s}"
        )
        for name, d in free.items():
            step = lockstep.get(name)
            step_abs, step_rel = (
                ("-", "-") if step is None else (f"{step['max_abs']:.2g}", f"{step['max_rel']:.2g}")
            )
            print(
                f"  {name:8s} {step_abs:>13s} {step_rel:>13s} "
                f"{d['max_abs']:10.3g} {d['max_rel']:10.2g}"
            )
        if lockstep:
            scale = largest_loss(ours["lockstep_losses"])
            worst = max(lockstep_error(d, scale) for d in lockstep.values())
            print(
                f"losses {'agree' if worst <= LOCKSTEP_RTOL else 'DIFFER'} within "
                f"{LOCKSTEP_RTOL:g} relative (of the term or of the largest term, {scale:.3g}) "
                f"when both steps start from the same state (worst {worst:.2g}, over "
                f"{len(ours['lockstep_losses'])} steps)"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
