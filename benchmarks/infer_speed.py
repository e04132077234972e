"""Translation latency of G for a preset's model shape (random weights): PyTorch eager (NCHW,
and NHWC as `stargan translate --channels-last` runs it), torch.compile (opt-in) and ONNX
Runtime, at batch 1 and batched.

    taskset -c 1 python benchmarks/infer_speed.py --preset celeba-128 --threads 1
    python benchmarks/infer_speed.py --preset celeba-128 --batches 1 16 --compile --json out.json

Each backend runs ``--warmup`` untimed calls per batch size, then ``--reps`` timed ones; the
table gives the median time per call and per image, and images/s. torch.compile's first
calls (tracing and code generation, per batch size, with inductor's caches off so that
every run compiles from scratch) are timed apart as its compile time; the
ONNX export time is given too. Times are for G alone: image decoding and label inference
(D) are not included.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from stargan.data.labels import LabelLayout, LabelSpec
from stargan.inference import StarGAN
from stargan.models import build_generator
from stargan.presets import get_preset

Call = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def time_calls(args: argparse.Namespace, fn: Call, x: torch.Tensor, c: torch.Tensor) -> list[float]:
    cuda = torch.device(args.device).type == "cuda"
    times = []
    for i in range(args.warmup + args.reps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(x, c)
        if cuda:
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return times


def row(backend: str, batch: int, times: list[float], **extra: float) -> dict:
    median = statistics.median(times)
    return {
        "backend": backend,
        "batch": batch,
        "ms_per_call": 1e3 * median,
        "ms_per_image": 1e3 * median / batch,
        "images_per_s": batch / median,
        "ms_per_call_min": 1e3 * min(times),
        **extra,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--threads", type=int, default=0, help="torch and ONNX Runtime threads")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda (torch backends)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="also time torch.compile(G)")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip ONNX Runtime")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = get_preset(args.preset)
    names = cfg.data[0].selected_attrs or tuple(f"label{i}" for i in range(5))
    layout = LabelLayout((LabelSpec(names, "binary"),))
    model_cfg = dataclasses.replace(cfg.model, c_dim=layout.c_dim, n_classes=layout.n_classes)
    torch.manual_seed(0)
    g = build_generator(model_cfg).eval().to(args.device)
    size = model_cfg.image_size
    inputs = {
        n: (torch.rand(n, 3, size, size) * 2 - 1, (torch.rand(n, layout.c_dim) < 0.5).float())
        for n in args.batches
    }
    rows, notes = [], {}

    def eager(net: torch.nn.Module) -> Call:
        def call(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return net(x.to(args.device), c.to(args.device)).cpu()

        return call

    g_nhwc = copy.deepcopy(g).to(memory_format=torch.channels_last)
    for backend, net in (("eager", g), ("eager NHWC", g_nhwc)):
        for n, (x, c) in inputs.items():
            rows.append(row(backend, n, time_calls(args, eager(net), x, c)))

    if args.compile:
        from torch._inductor import config as inductor_config

        # A cold compile, as a fresh install sees it: no code reused from earlier runs.
        inductor_config.force_disable_caches = True
        compiled_g = torch.compile(g)

        def compiled(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return compiled_g(x.to(args.device), c.to(args.device)).cpu()

        for n, (x, c) in inputs.items():
            t0 = time.perf_counter()
            compiled(x, c)  # compiles for this batch size
            first = time.perf_counter() - t0
            times = time_calls(args, compiled, x, c)
            compile_s = first - statistics.median(times)
            rows.append(row("torch.compile", n, times, compile_s=compile_s))

    if args.onnx:
        from stargan.export import export_onnx
        from stargan.onnx_runtime import read_onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "G.onnx"
            model = StarGAN(g.cpu(), model_cfg, layout, Path("random-weights"))
            t0 = time.perf_counter()
            export_onnx(model, path)
            notes["onnx_export_s"] = time.perf_counter() - t0
            onnx_g = read_onnx(path, threads=args.threads or None)[0]
            g.to(args.device)
            for n, (x, c) in inputs.items():
                rows.append(row("onnxruntime", n, time_calls(args, onnx_g, x, c)))

    print(
        f"{args.preset}: G at {size} px, {sum(p.numel() for p in g.parameters()):,} parameters, "
        f"device {args.device}, {torch.get_num_threads()} torch thread(s); median of {args.reps}"
    )
    header = ("backend", "batch", "ms/call", "ms/image", "images/s", "compile s")
    print(f"{header[0]:15s}" + "".join(f"{h:>12s}" for h in header[1:]))
    for r in rows:
        compile_s = f"{r['compile_s']:.1f}" if "compile_s" in r else "-"
        print(
            f"{r['backend']:15s}{r['batch']:>12d}{r['ms_per_call']:>12.1f}"
            f"{r['ms_per_image']:>12.1f}{r['images_per_s']:>12.2f}{compile_s:>12s}"
        )
    if "onnx_export_s" in notes:
        print(f"ONNX export (with its check against PyTorch): {notes['onnx_export_s']:.1f} s")
    if args.json:
        result = {
            "preset": args.preset,
            "device": args.device,
            "threads": torch.get_num_threads(),
            "rows": rows,
            **notes,
        }
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
