"""A training run's folder, shared by the StarGAN trainer and the baselines' trainer.

    OUT/config.json                      the resolved config
    OUT/metrics.jsonl                    one JSON object per logged step
    OUT/checkpoints/state-STEP.safetensors  the whole training state; the newest ``keep``
    OUT/model.safetensors (and others)   what the run produced

A folder that holds a run is never clobbered: it is continued (``resume``) from its newest
checkpoint that loads, or started over (``overwrite``). A kill inside a write leaves a
temporary file behind (no handler runs on SIGKILL); claiming the folder removes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from stargan.atomic import remove_stale_temporaries
from stargan.checkpoint import CheckpointError
from stargan.training.logging import MetricsLog


class RunFolderError(RuntimeError):
    """The run folder holds another run and neither resume nor overwrite was asked for."""


class RunFolder:
    """The files of one run under ``path``; ``keep`` checkpoints are kept."""

    def __init__(self, path: str | Path, keep: int) -> None:
        self.path, self.keep = Path(path), keep
        self.checkpoint_dir = self.path / "checkpoints"
        self.log = MetricsLog(self.path / "metrics.jsonl")
        self.resumed_from: Path | None = None
        self.skipped_checkpoints: list[str] = []
        self.removed_temporaries: list[Path] = []

    def file(self, name: str) -> Path:
        return self.path / name

    def checkpoints(self) -> list[Path]:
        """Training-state files, newest first."""
        return sorted(self.checkpoint_dir.glob("state-*.safetensors"), reverse=True)

    def claim(self, resume: bool, overwrite: bool, outputs: Sequence[str] = ()) -> list[Path]:
        """Make the folder this run's; returns the checkpoints to resume from, newest first
        ([] when the run starts, or starts over). ``outputs`` name the files the run writes
        besides the log and checkpoints (deleted when it starts over).

        A folder with checkpoints is resumed with ``resume``; one whose run was killed before
        its first checkpoint (a log, no model) is started over with ``resume``; anything else
        that holds a run needs ``overwrite``."""
        existing, produced = self.check(resume, overwrite, outputs)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.removed_temporaries = [
            tmp
            for folder, pattern in (
                (self.checkpoint_dir, "state-*.safetensors"),
                (self.path, "*.safetensors"),
                (self.path, "*.json*"),
                (self.path / "samples", "step-*.png"),
            )
            for tmp in remove_stale_temporaries(folder, pattern)
        ]
        if existing and resume:
            return existing
        for p in [*existing, *produced, self.log.path]:
            p.unlink(missing_ok=True)
        return []

    def check(
        self, resume: bool, overwrite: bool, outputs: Sequence[str] = ()
    ) -> tuple[list[Path], list[Path]]:
        """(checkpoints, outputs present) if the run may go ahead as :meth:`claim` says, without
        touching anything; else RunFolderError (every rank of a distributed run checks)."""
        existing = self.checkpoints()
        produced = [self.file(name) for name in outputs if self.file(name).exists()]
        held = existing or produced or self.log.path.exists()
        if held and not overwrite and not (resume and (existing or not produced)):
            what = f"{len(existing)} checkpoint(s)" if existing else "no checkpoint"
            finished = ", a finished model" if produced else ""
            hint = "--resume to continue it, " if existing else ""
            raise RunFolderError(
                f"{self.path} already holds a run ({what}{finished}); pass {hint}--overwrite "
                f"to start over, or choose another --out"
            )
        return existing, produced

    def resume(self, files: Sequence[Path], load: Callable[[Path], None]) -> Path:
        """``load`` the newest of ``files`` that loads; the ones skipped, with why, are kept in
        :attr:`skipped_checkpoints`. Raises CheckpointError naming every reason if none does."""
        errors = []
        for path in files:
            try:
                load(path)
            except CheckpointError as e:
                errors.append(str(e))
                continue
            self.resumed_from, self.skipped_checkpoints = path, errors
            return path
        raise CheckpointError(
            f"no valid checkpoint to resume from in {self.checkpoint_dir}:\n" + "\n".join(errors)
        )

    def retire(self, newest: Path) -> None:
        """Delete all but the ``keep`` newest checkpoints, never ``newest`` (just written), even
        if a newer-named file that resume skipped is still there."""
        others = [p for p in self.checkpoints() if p != newest]
        for old in others[self.keep - 1 :]:
            old.unlink()
