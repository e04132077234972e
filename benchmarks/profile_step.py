"""Where a training iteration's time goes: one D-only and one D+G step of our Trainer under
torch.profiler, grouped into kinds of work, each with its FLOPs and achieved GFLOP/s, beside
the machine's fp32 matmul peak. It explains what keeps train_speed.py's "% of peak" below 100.

    taskset -c 1 python benchmarks/profile_step.py --preset celeba-128 --speed cpu-128 --json p.json
    python benchmarks/profile_step.py --preset synth-demo --trace trace.json   # Chrome trace

Times are the profiler's self CPU times of aten operators (each microsecond counted once, in
the operator that spent it), weighted like train_speed.py's per-iteration figure:
((n_critic - 1) * D-only + D+G) / n_critic, of steps on the preset's first dataset (a joint
preset's iteration is one such step per dataset). FLOPs come from train_speed.py's counter (the same
formulas as torch.utils.flop_counter) on the same two steps, by operator; operators that count
no FLOPs (normalisation, activations, elementwise arithmetic, Adam) are memory-bound work that
caps the whole step's fraction of peak however fast the convolutions run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import typing
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from stargan.config import SPEED_PROFILES, GRecompute

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import FlopCount, make_trainer, peak_gflops

# Kinds of work, matched in order against aten operator names (self time lands in the leaf
# operator: mkldnn_convolution, convolution_backward, mm, ...).
KINDS: tuple[tuple[str, str], ...] = (
    ("convolution backward", r"convolution_backward|conv.*backward"),
    # G's transposed convolutions run through the same operators as the others.
    ("convolution forward", r"convolution|conv2d|mkldnn_conv"),
    ("matrix products (D's tiny-map convs)", r"^aten::(mm|addmm|bmm|matmul|linear)$"),
    ("im2col / col2im (tiny-map convs)", r"im2col|col2im|unfold|fold"),
    ("instance norm", r"batch_norm|group_norm|instance_norm"),
    ("activations", r"relu|leaky|threshold|tanh|sigmoid|elu"),
    ("Adam", r"adam|_foreach|lerp|addcdiv|addcmul"),
    ("copies and layout", r"copy|clone|contiguous|cat|stack|to_|_to_copy|empty|zeros|fill"),
)
OTHER = "other elementwise and bookkeeping"
# FLOP counter operator names -> the kind that spends their time.
FLOP_KINDS = {
    "aten.convolution": "convolution forward",
    "aten.convolution_backward": "convolution backward",
    "aten.mm": "matrix products (D's tiny-map convs)",
    "aten.addmm": "matrix products (D's tiny-map convs)",
    "aten.bmm": "matrix products (D's tiny-map convs)",
}


def kind_of(name: str) -> str:
    for kind, pattern in KINDS:
        if re.search(pattern, name):
            return kind
    return OTHER


def profile_steps(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(args, "ours", tmp)
        n_critic = trainer.cfg.optim.n_critic
        flip = trainer.cfg.data[0].flip
        x, label = trainer.streams[0].next()
        for update_g in (False, True):  # warm-up: oneDNN primitives, allocator
            trainer.train_step(0, x, label, update_g, flip=flip)
        seconds: dict[bool, Counter[str]] = {}
        ops: Counter[str] = Counter()
        flops: dict[bool, Counter[str]] = {}
        wall: dict[bool, float] = {}
        for update_g in (False, True):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                trainer.train_step(0, x, label, update_g, flip=flip)
            if args.trace and update_g:
                prof.export_chrome_trace(args.trace)
            seconds[update_g] = Counter()
            for event in prof.key_averages():
                if event.key.startswith("aten::"):
                    seconds[update_g][kind_of(event.key)] += event.self_cpu_time_total / 1e6
                    ops[event.key] += (
                        event.self_cpu_time_total / 1e6 * (1 if update_g else n_critic - 1)
                    )
            events = prof.events()
            wall[update_g] = (
                max(e.time_range.end for e in events) - min(e.time_range.start for e in events)
            ) / 1e6
            with FlopCount() as fc:
                trainer.train_step(0, x, label, update_g, flip=flip)
            flops[update_g] = Counter()
            for op, f in fc.by_op.items():
                flops[update_g][FLOP_KINDS.get(op, OTHER)] += f
    weight = {False: (n_critic - 1) / n_critic, True: 1 / n_critic}
    kinds = [k for k, _ in KINDS] + [OTHER]
    total_s = sum(weight[g] * sum(seconds[g].values()) for g in (False, True))
    rows = {}
    for kind in kinds:
        s = sum(weight[g] * seconds[g][kind] for g in (False, True))
        f = sum(weight[g] * flops[g][kind] for g in (False, True))
        rows[kind] = {
            "s_per_iter": s,
            "share_of_time": s / total_s,
            "gflop_per_iter": f / 1e9,
            "gflops": f / 1e9 / s if s and f else 0.0,
        }
    return {
        "n_critic": n_critic,
        "op_s_per_iter": total_s,
        "wall_s_per_iter": sum(weight[g] * wall[g] for g in (False, True)),
        "kinds": rows,
        "top_ops_s_per_cycle": dict(ops.most_common(args.top)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu only: the profile is of CPU operators")
    p.add_argument(
        "--speed",
        choices=list(SPEED_PROFILES),
        help="speed settings from this profile instead of the preset's (e.g. cpu-128)",
    )
    p.add_argument(
        "--g-recompute",
        choices=typing.get_args(GRecompute),
        help="override speed.g_recompute",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        help="speed.precision 'bf16' (G's and D's forwards under bf16 autocast); the peak is "
        "then the faster of an fp32 and a bf16 matmul",
    )
    p.add_argument("--top", type=int, default=15, help="operators listed by self time")
    p.add_argument("--peak-size", type=int, default=4096)
    p.add_argument("--peak-reps", type=int, default=3)
    p.add_argument("--trace", help="write the D+G step's Chrome trace here")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.device != "cpu":
        p.error("--device: only cpu is profiled by this script (train_speed.py times CUDA)")
    args.channels_last = args.compile_g = args.winograd = None  # the preset's or --speed's
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "preset": args.preset,
        "speed": args.speed,
        "threads": torch.get_num_threads(),
        **profile_steps(args),
    }
    result["peak_gflops_fp32"] = peak_gflops(args, torch.float32)
    if args.bf16:
        result["peak_gflops_bf16"] = peak_gflops(args, torch.bfloat16)
    peak = max(result["peak_gflops_fp32"], result.get("peak_gflops_bf16", 0.0))
    flop_total = sum(r["gflop_per_iter"] for r in result["kinds"].values())
    result["percent_of_peak_at_profiled_op_time"] = (
        100 * flop_total / result["op_s_per_iter"] / peak
    )

    dtype = "fp32" if peak == result["peak_gflops_fp32"] else "bf16"
    print(
        f"{args.preset}, {result['threads']} thread(s)"
        + (", bf16 autocast" if args.bf16 else "")
        + f"; matmul peak {peak:.1f} GFLOP/s ({dtype})"
    )
    header = ("s/iter", "share", "GFLOP", "GFLOP/s", "% peak")
    print(f"{'kind of work':40s} " + " ".join(f"{h:>8s}" for h in header))
    for kind, r in sorted(result["kinds"].items(), key=lambda kv: -kv[1]["s_per_iter"]):
        pct = f"{100 * r['gflops'] / peak:7.1f}%" if r["gflops"] else ""
        gf = f"{r['gflops']:8.1f}" if r["gflops"] else ""
        print(
            f"{kind:40s} {r['s_per_iter']:8.3f} {100 * r['share_of_time']:7.1f}% "
            f"{r['gflop_per_iter']:8.1f} {gf:>8s} {pct:>7s}"
        )
    pct = result["percent_of_peak_at_profiled_op_time"]
    print(
        f"operators' self time {result['op_s_per_iter']:.3f} s/iter "
        f"(wall {result['wall_s_per_iter']:.3f}); {flop_total:.1f} GFLOP/iter: {pct:.1f} % of peak"
    )
    print("top operators by self time, s per n_critic cycle:")
    for op, s in result["top_ops_s_per_cycle"].items():
        print(f"  {op:50s} {s:8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
