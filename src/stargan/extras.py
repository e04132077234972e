"""Optional dependencies: import them on first use, or say exactly how to install them.

Example:
    >>> cv2 = require("cv2", extra="face", purpose="face crop")            # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional feature whose packages are not installed; the message says what to run."""


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the pip extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{purpose} needs the optional package {module!r} ({e}); install it with: "
            f"pip install 'stargan[{extra}]'"
        ) from None
