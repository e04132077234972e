"""The figures a run is judged by, a few lines read from the results.json that
`stargan evaluate` writes: the judge's target accuracy and, where the data has ground truth
(SynthFaces), the PSNR to it, each beside doing nothing (the input returned unchanged).
The quick-start demo ends with them.

Example:
    $ python -m stargan.evaluation.headline runs/demo/results.json
    dataset 0 (synthfaces-celeba, 500 test images):
      target accuracy     97.2 %  (doing nothing: 12.5 %)
      ground-truth PSNR   24.5 dB (doing nothing: 19.5 dB)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _num(v: Any) -> float | None:
    """A figure as written: a number, or a {"mean", "std"} record over seeds."""
    if isinstance(v, Mapping):
        v = v.get("mean")
    return float(v) if isinstance(v, int | float) else None


def _line(name: str, ours: Any, baseline: Any, unit: str) -> str | None:
    a, b = _num(ours), _num(baseline)
    if a is None:
        return None
    rest = f"(doing nothing: {b:.1f}{unit})" if b is not None else ""
    return f"  {name:<19} {a:.1f}{unit:<3} {rest}".rstrip()


def headline(results: Mapping[str, Any]) -> str:
    """The headline of an evaluation's results (the dict in results.json), one block per
    evaluated dataset. Raises ValueError for a dict that is not such results."""
    evaluations = results.get("evaluations")
    if not isinstance(evaluations, list) or not evaluations:
        raise ValueError("no 'evaluations' in the results: was it written by `stargan evaluate`?")
    blocks = []
    for ev in evaluations:
        src, overall = ev.get("source", {}), ev.get("summary", {}).get("overall", {})
        lines = [
            f"dataset {src.get('dataset', '?')} ({src.get('name', '?')}, "
            f"{src.get('n_images', '?')} test images):",
            _line("target accuracy", overall.get("accuracy"),
                  overall.get("do_nothing_accuracy"), " %"),
            _line("ground-truth PSNR", overall.get("gt_psnr"),
                  overall.get("do_nothing_gt_psnr"), " dB"),
        ]  # fmt: skip
        if "gt_psnr" not in overall:
            lines.append("  (no ground truth for this data: no PSNR)")
        blocks.append("\n".join(x for x in lines if x))
    return "\n".join(blocks)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m stargan.evaluation.headline",
        description="print the headline figures of a results.json written by `stargan evaluate`",
    )
    p.add_argument("results", help="results.json (e.g. runs/demo/results.json)")
    path = Path(p.parse_args(argv).results)
    try:
        text = headline(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        print(f"error: {path}: {e}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
