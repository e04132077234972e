"""Files from outside: the one way they are opened and the one rule for names that become paths.

Every file a user names (``--model``, ``--judge``, ``--config``, an input image) or a dataset
lists (an image, an attribute file) may come from a stranger. Reading goes through
:func:`read_regular` (or :func:`check_regular` for readers that take a path themselves):

- only regular files, after symlinks are resolved: a link to an image is fine, a link to
  ``/dev/zero`` is not; a FIFO is opened non-blocking, so it cannot hang the process;
- the size is known and bounded before a byte is read, and the read itself is bounded, so a
  file that grows (or lies about its size) cannot take more memory than the limit.

Every name that comes from data (a label, a target title, an input file's stem) and becomes part
of a file name goes through :func:`check_name` where it enters (datasets, model metadata,
imports) or :func:`safe_stem` where it is free text, and outputs are joined by
:func:`output_path`, which refuses anything that would leave the output folder.

Errors are :class:`UnsafeFileError` (a ``ValueError``), naming the file and the reason.

Example:
    >>> check_name("Black_Hair", "label")
    'Black_Hair'
    >>> safe_stem("../../etc/passwd")
    'etc_passwd'
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

MAX_NAME_CHARS = 64
"""Longest label name: CelebA's longest attribute is 19 characters."""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+= -]*")
_STEM_BAD = re.compile(r"[^A-Za-z0-9_.+=-]+")
NAME_RULE = (
    f"1-{MAX_NAME_CHARS} characters of A-Z a-z 0-9 _ . + = - and space, starting with a "
    f"letter, digit or _, without '..'"
)


MAX_TEXT_BYTES = 256 << 20
"""Largest label table, attribute or tag list read (CelebA's attribute file is 26 MB)."""


class UnsafeFileError(ValueError):
    """A file or name from outside that cannot be used safely; the message says which and why.

    Attributes:
        reason: the cause without the file's name (for callers that name the file themselves).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def describe_error(e: OSError | UnsafeFileError) -> str:
    """Why reading failed, without the file's name (for messages that name it themselves)."""
    return getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e)


def _refuse(what: str, path: str | os.PathLike, reason: str) -> UnsafeFileError:
    return UnsafeFileError(f"{what} {os.fspath(path)}: {reason}", reason)


def check_name(name: object, what: str = "name") -> str:
    """``name`` if it can be part of a file name as it is; else :class:`UnsafeFileError`.

    Example:
        >>> check_name("../x", "label")
        Traceback (most recent call last):
        ...
        stargan.files.UnsafeFileError: label '../x' is not allowed: use 1-64 characters ...
    """
    if not isinstance(name, str):
        raise UnsafeFileError(f"{what} {name!r} is a {type(name).__name__}, not a string")
    if len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name) or ".." in name:
        shown = name if len(name) <= 80 else f"{name[:60]}... ({len(name):,} characters)"
        raise UnsafeFileError(f"{what} {shown!r} is not allowed: use {NAME_RULE}")
    return name


def safe_stem(text: str, max_chars: int = 80) -> str:
    """Free text (an input file's stem, a title) as a file-name part: runs of other characters
    become ``_``, leading dots and underscores go, and the length is bounded."""
    stem = _STEM_BAD.sub("_", text).strip("._")[:max_chars].strip("._")
    return stem or "image"


def output_path(out_dir: str | Path, file_name: str) -> Path:
    """``out_dir / file_name``, refused unless it is a plain name that stays inside ``out_dir``."""
    out_dir = Path(out_dir)
    path = out_dir / file_name
    if (
        os.sep in file_name
        or (os.altsep and os.altsep in file_name)
        or file_name in ("", ".", "..")
        or path.resolve().parent != out_dir.resolve()
    ):
        raise UnsafeFileError(f"output name {file_name!r} would leave the folder {out_dir}")
    return path


def _describe(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((text for test, text in kinds if test(mode)), "not a regular file")


def _open_regular(path: str | os.PathLike, max_bytes: int, what: str) -> tuple[int, int]:
    """(fd, size) of a regular file no larger than ``max_bytes``, opened without blocking."""
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer for ever.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise  # as it is: callers and the CLI name a missing file their own way
    except OSError as e:
        raise _refuse(what, name, f"cannot open ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(what, name, f"is {_describe(st.st_mode)}; only regular files are read")
        if st.st_size > max_bytes:
            raise _refuse(
                what, name, f"file is {st.st_size:,} bytes, over the limit of {max_bytes:,}"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def check_regular(path: str | os.PathLike, max_bytes: int, what: str = "file") -> int:
    """The size of ``path`` if it is a regular file of at most ``max_bytes``; for readers that
    open the path themselves (memory-mapped ones). Errors as :func:`read_regular`."""
    fd, size = _open_regular(path, max_bytes, what)
    os.close(fd)
    return size


def read_regular(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """All bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Raises :class:`UnsafeFileError` for a folder, device, FIFO or socket (symlinks are followed
    first), a file over the limit (checked before reading, and again while reading in case the
    file grows), or a read error; ``FileNotFoundError`` when it does not exist.
    """
    fd, size = _open_regular(path, max_bytes, what)
    try:
        with os.fdopen(fd, "rb", closefd=True) as f:
            data = f.read(size + 1)  # one more byte than fstat said: a file that grows shows
    except OSError as e:
        raise _refuse(what, path, f"cannot read ({e.strerror or e})") from None
    if len(data) > size:
        raise _refuse(what, path, f"grew while it was read (from {size:,} bytes)")
    return data


def parse_json(text: str | bytes, what: str = "JSON") -> Any:
    """JSON from a stranger's file: malformed text, nesting deep enough to exhaust the stack or
    an integer too long to convert all become :class:`UnsafeFileError` naming ``what``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UnsafeFileError(f"{what}: JSON nested too deeply", "JSON nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and int()'s digit limit
        reason = f"not valid JSON ({str(e)[:200]})"
        raise UnsafeFileError(f"{what}: {reason}", reason) from None


def read_text(path: str | os.PathLike, max_bytes: int, what: str = "file") -> str:
    """:func:`read_regular` decoded as UTF-8 (a byte-order mark is dropped)."""
    data = read_regular(path, max_bytes, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _refuse(what, path, f"is not UTF-8 text (byte {e.start}: {e.reason})") from None
