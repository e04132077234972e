"""The web demo (``stargan serve``): a FastAPI app and its single page.

:mod:`stargan.web.server` runs it under uvicorn, guarded against slow, idle and too many
clients. Needs the optional packages of ``pip install 'stargan[web]'``.
"""

from stargan.web.app import ApiError, Limits, create_app

__all__ = ["ApiError", "Limits", "create_app"]
