"""Where training metrics go: a JSON-lines log (always), TensorBoard (optional), a progress bar.

The trainer prints nothing; it hands every metric to the callbacks it was given.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from stargan.atomic import atomic_write_bytes
from stargan.files import MAX_TEXT_BYTES, UnsafeFileError, parse_json, read_text


class Callback(Protocol):
    def on_start(self, step: int, total: int) -> None: ...

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_end(self, step: int) -> None: ...


def _step(rec: dict[str, Any]) -> float:
    step = rec.get("step", 0)
    return step if isinstance(step, int) else math.inf  # a malformed step is not kept


class MetricsLog:
    """Appends one JSON object per logged step to ``metrics.jsonl``.

    On resume it first drops the lines written after the checkpoint the run restarts from:
    those steps will be trained again, and a log with two versions of a step would lie.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def lines(self) -> list[tuple[str, dict[str, Any]]]:
        """(line, record) of every complete record; a line cut short by a kill mid-write (its
        step is re-done anyway) or that is not a JSON object is skipped. The read is bounded:
        a run folder may come from someone else."""
        if not self.path.exists():
            return []
        text = read_text(self.path, MAX_TEXT_BYTES, "metrics log")
        out = []
        for line in text.splitlines():
            try:
                rec = parse_json(line)
            except UnsafeFileError:
                continue
            if isinstance(rec, dict):
                out.append((line, rec))
        return out

    def keep(self, lines: list[str]) -> None:
        """Rewrite the log with ``lines`` only (atomically)."""
        atomic_write_bytes(self.path, "".join(k + "\n" for k in lines).encode())

    def truncate_after(self, step: int) -> None:
        if self.path.exists():
            self.keep([line for line, rec in self.lines() if _step(rec) <= step])

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record, allow_nan=True) + "\n")

    def read(self) -> list[dict[str, Any]]:
        return [rec for _, rec in self.lines()]


class TensorBoardCallback:
    """Mirrors every metric into TensorBoard event files (torch.utils.tensorboard)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # tensorboard is an optional extra
            raise ImportError(
                "TensorBoard logging needs the 'tensorboard' package: "
                "pip install 'stargan[tensorboard]'"
            ) from e
        self.writer = SummaryWriter(str(log_dir))

    def on_start(self, step: int, total: int) -> None:
        pass

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            if isinstance(v, float | int) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)

    def on_end(self, step: int) -> None:
        self.writer.close()


class ProgressBar:
    """A tqdm bar over iterations showing the live losses."""

    SHOWN = ("D/loss", "G/loss", "D/cls", "G/rec")

    def __init__(self, desc: str = "train") -> None:
        self.desc = desc
        self.bar: tqdm | None = None

    def on_start(self, step: int, total: int) -> None:
        self.bar = tqdm(total=total, initial=step, desc=self.desc, dynamic_ncols=True)

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        assert self.bar is not None
        self.bar.update(step - self.bar.n)
        shown = {k: f"{metrics[k]:.3f}" for k in self.SHOWN if k in metrics}
        self.bar.set_postfix(shown, refresh=False)

    def on_end(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.close()
