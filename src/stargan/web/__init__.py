"""The web demo (``stargan serve``): a FastAPI app and its single page.

Needs the optional packages of ``pip install 'stargan[web]'``.
"""

from stargan.web.app import ApiError, Limits, create_app

__all__ = ["ApiError", "Limits", "create_app"]
