"""Run a benchmark and append its result, with the date, machine, torch version and commit, to
the dated results of its family: benchmarks/results/<script name>.json (a JSON list, newest
last). The docs quote current figures; the results files keep every run.

    python benchmarks/record.py -- \
        python benchmarks/train_speed.py --preset celeba-128 --mode both --threads 2
    python benchmarks/record.py --conditions "core 1, core 0 busy" -- \
        taskset -c 1 python benchmarks/infer_speed.py --preset celeba-128 --threads 1
    python benchmarks/record.py --to experiments/results/synthfaces_runs.json \
        --from-json runs/d25/s0/results.json --pick evaluations.0.summary.overall \
        --command "stargan train --preset synth-demo --seed 0 --out runs/d25/s0"

The benchmark command gets `--json FILE` added and its output passes through; the record's
"figures" is that JSON as the script wrote it, so every record of a family has the script's
field names. --from-json records a JSON file already written instead (--pick a dotted path
inside it to keep only that part).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
# /proc/cpuinfo flag -> the name the docs use; the ones that decide which kernels run.
FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512-BF16", "amx_tile": "AMX"}


def machine() -> dict:
    """CPU model (with family and model numbers, as lscpu gives them), kernel-relevant flags
    and core count of this machine."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in info:
        cpu += f" (family {info['cpu family']} model {info.get('model', '?')})"
    present = set(info.get("flags", "").split())
    flags = [name for flag, name in FLAGS.items() if flag in present]
    return {"cpu": cpu, "flags": flags, "cores": os.cpu_count()}


def commit() -> str | None:
    """Short hash of HEAD, with '+changes' when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], check=False).returncode
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def pick(data: object, path: str | None) -> object:
    for key in path.split(".") if path else ():
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--to", type=Path, help="results file (default: by the benchmark's name)")
    p.add_argument("--conditions", help="load, pinning, what else ran")
    p.add_argument("--note", help="anything else a reader needs")
    p.add_argument("--from-json", type=Path, help="record this JSON file; run nothing")
    p.add_argument("--pick", help="with --from-json: keep this dotted path of it")
    p.add_argument("--command", help="with --from-json: the command that produced it")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the benchmark command")
    args = p.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd

    now = datetime.datetime.now(datetime.timezone.utc)
    if args.from_json:
        if args.to is None:
            p.error("--from-json needs --to")
        figures = pick(json.loads(args.from_json.read_text()), args.pick)
        command = args.command
    else:
        scripts = [a for a in cmd if a.endswith(".py")]
        if not scripts:
            p.error("give a benchmark command after --, e.g. -- python benchmarks/train_speed.py")
        args.to = args.to or RESULTS / f"{Path(scripts[0]).stem}.json"
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            subprocess.run([*cmd, "--json", str(out)], check=True)
            figures = json.loads(out.read_text())
        command = shlex.join(cmd)

    record = {
        "date": now.strftime("%Y-%m-%d"),
        "time_utc": now.strftime("%H:%M"),
        "machine": machine(),
        "torch": torch_version(),
        "python": platform.python_version(),
        "commit": commit(),
        "command": command,
        "conditions": args.conditions,
        "preset": figures.get("preset") if isinstance(figures, dict) else None,
        "threads": figures.get("threads") if isinstance(figures, dict) else None,
        "figures": figures,
        "note": args.note,
        "source": "benchmarks/record.py",
    }
    records = json.loads(args.to.read_text()) if args.to.is_file() else []
    records.append({k: v for k, v in record.items() if v is not None})
    args.to.parent.mkdir(parents=True, exist_ok=True)
    args.to.write_text(json.dumps(records, indent=1) + "\n")
    print(f"appended to {args.to} ({len(records)} records)", file=sys.stderr)


if __name__ == "__main__":
    main()
