"""Atomic file writes: readers see the old file or the new one, never a half-written mix."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    with atomic_writer(path, sync=sync) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_writer(path: Path, *, sync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write in pieces that appears at ``path`` whole when the block ends
    (written to a temporary beside it, fsynced, renamed over ``path``); an exception inside
    the block leaves the old file and no temporary. ``sync=False`` skips the fsyncs (readers
    still never see a partial file; a power cut may lose it): for outputs that can be made
    again, where a sync per file costs more than the file.

    Example:
        >>> with atomic_writer(Path(tmp) / "out.bin") as f:  # doctest: +SKIP
        ...     for chunk in chunks:
        ...         f.write(chunk)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the permissions a plain open would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Never leave a stale temporary behind, whatever interrupted us (disk full, Ctrl-C).
        Path(tmp).unlink(missing_ok=True)
        raise
    if not sync:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(folder: Path, name: str = "*") -> list[Path]:
    """Delete the temporaries that :func:`atomic_writer` left in ``folder`` when its
    process was killed mid-write (SIGKILL, power loss: no ``except`` runs then).

    ``name`` is a glob over the target files' names (``state-*.safetensors``), so that other
    files that happen to end in ``.tmp`` are left alone. Only call this on a folder that no
    other process is writing to. Returns what was removed.
    """
    removed = []
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
