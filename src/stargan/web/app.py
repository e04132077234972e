"""The web demo: one page to upload or pick a face, tick attributes and see the translations.

:func:`create_app` builds a FastAPI app around a loaded :class:`~stargan.inference.StarGAN`.
Uploads are untrusted, so every request is bounded (see :class:`Limits`):

- the body is read in memory up to ``max_body_bytes`` (413 beyond; nothing touches disk:
  the multipart body is parsed from memory, never spooled to a temporary file);
- the uploaded part must declare an allowed image type (415), and the one image decoder
  (:mod:`stargan.data.io`) checks the real format and the declared pixel count before
  decoding a single pixel (415 / 413: a decompression bomb is refused from its header);
- at most ``workers`` translations run at once and ``queue`` more wait; beyond that the answer
  is 503 with ``Retry-After`` (load is shed at once instead of piling up);
- a translation that takes longer than ``timeout_s`` answers 504;
- errors are JSON ``{"error": message}``; internal failures are logged server-side and answer
  a generic message, never a stack trace.

Example:
    >>> from stargan.inference import load
    >>> app = create_app(load("model.safetensors"))                      # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)   # doctest: +SKIP
"""

import asyncio
import base64
import concurrent.futures
import functools
import io
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import torch
from PIL import Image

from stargan.data.grid import make_grid
from stargan.data.io import ImageDecodeError, decode_image, probe_image
from stargan.data.labels import LabelError
from stargan.extras import require
from stargan.facecrop import FaceCropError
from stargan.inference import (
    PACKAGED_NOTE,
    StarGAN,
    default_columns,
    is_packaged,
    prepare_image,
    target_title,
)

log = logging.getLogger("stargan.web")

CROP_WORDING = ('"Crop to the face"', 'untick "Crop to the face"')
"""The page's face-crop checkbox, as a failed crop's error names it (the CLI says --face-crop)."""
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<polygon fill="#2563eb" points="8,1 10,6 15,6 11,9.5 12.5,15 8,11.5 3.5,15 5,9.5 1,6 6,6"/>'
    "</svg>"
)
"""The tab icon (a star), inline: /favicon.ico answers it rather than a 404."""
MAX_PARTS = 8
"""Most multipart fields a request may carry (image, sample, targets, source, flags)."""
MAX_FIELD_BYTES = 64 << 10
"""Largest non-file multipart field (targets JSON and the like)."""
MAX_INTENSITY = 10.0
"""Target values are limited to [-MAX_INTENSITY, MAX_INTENSITY]."""
FIELDS = ("image", "sample", "targets", "source", "face_crop", "all_labels")
"""The fields POST /api/translate takes; any other is refused (400), not ignored."""


@dataclass(frozen=True)
class Limits:
    """What one request may cost. The defaults suit a laptop serving a 128 px model."""

    max_body_bytes: int = 8 << 20
    """Largest request body; more answers 413 before the rest is read."""
    max_pixels: int = 16_000_000
    """Largest width x height of an uploaded image, checked on its header (413)."""
    content_types: tuple[str, ...] = (
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/gif",
        "image/bmp",
    )
    """Declared types accepted for the uploaded file (others: 415)."""
    workers: int = 1
    """Translations computed at once (each already uses every core through torch)."""
    queue: int = 4
    """Requests allowed to wait for a worker; one more answers 503 with Retry-After."""
    timeout_s: float = 30.0
    """A request whose translation takes longer answers 504."""
    retry_after_s: int = 5
    """The Retry-After a 503 suggests, in seconds."""
    max_targets: int = 16
    """Most targets (translations) one request may ask for."""

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_pixels", "workers", "max_targets", "retry_after_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1, got {getattr(self, name)}")
        if self.queue < 0 or not 0 < self.timeout_s < math.inf:
            raise ValueError(
                f"Limits.queue must be >= 0 and timeout_s positive and finite, got {self.queue}, "
                f"{self.timeout_s}"
            )


class ApiError(Exception):
    """A request the server refuses: HTTP status, a message for the user, extra headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


@dataclass
class Job:
    """One validated translation request."""

    image: bytes
    name: str
    targets: list[dict[str, float]]
    source: dict[str, float]
    face_crop: bool
    all_labels: bool


def data_url(image: torch.Tensor | Any) -> str:
    """A [3, H, W] tensor in [-1, 1] or a uint8 array [H, W, 3] -> a PNG data: URL."""
    from stargan.data.io import to_uint8_image

    buffer = io.BytesIO()
    to_uint8_image(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_samples(count: int = 6, size: int = 128) -> dict[str, bytes]:
    """Sample faces for the page: SynthFaces (celeba style, seeded) as PNG bytes."""
    from stargan.data.synthfaces import SynthFaces

    faces = SynthFaces("celeba", size=size, n=count, seed=7)
    out = {}
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(faces.image_uint8(i)).save(buffer, format="PNG")
        out[f"synth-{i}"] = buffer.getvalue()
    return out


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """A multipart/form-data body, parsed in memory -> {field name: (bytes, part headers)}.

    Part headers are lower-cased; ``filename`` is added from Content-Disposition when given.
    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart body without a boundary")
    parts: list[tuple[dict[str, str], bytearray]] = []
    field, value = bytearray(), bytearray()

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise ApiError(400, f"too many form fields (at most {MAX_PARTS})")
        parts.append(({}, bytearray()))

    def on_header_end() -> None:
        parts[-1][0][field.decode("latin-1").lower()] = value.decode("latin-1")
        field.clear()
        value.clear()

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_part_data": lambda d, s, e: parts[-1][1].extend(d[s:e]),
        "on_header_field": lambda d, s, e: field.extend(d[s:e]),
        "on_header_value": lambda d, s, e: value.extend(d[s:e]),
        "on_header_end": on_header_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except MultipartParseError as e:
        raise ApiError(400, f"malformed multipart body ({e})") from None
    fields: dict[str, tuple[bytes, dict[str, str]]] = {}
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get("content-disposition", ""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disposition:
            headers["filename"] = disposition[b"filename"].decode("utf-8", "replace")
        elif len(data) > MAX_FIELD_BYTES:
            raise ApiError(413, f"form field {name!r} is larger than {MAX_FIELD_BYTES} bytes")
        if name in fields:
            raise ApiError(400, f"form field {name!r} given twice")
        fields[name] = (bytes(data), headers)
    return fields


def _shown(value: Any) -> str:
    """A client's value for an error message: short, and never a nested container's repr."""
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text)} characters)"


def _json_field(raw: Any, what: str, default: Any) -> Any:
    if raw in (None, b"", ""):
        return default
    if isinstance(raw, bytes | str):
        try:
            return json.loads(raw)
        except RecursionError:
            raise ApiError(400, f"{what} must be JSON nested less deeply") from None
        except json.JSONDecodeError as e:
            raise ApiError(400, f"{what} must be JSON ({e.msg} at {e.lineno}:{e.colno})") from None
        except UnicodeDecodeError:
            raise ApiError(400, f"{what} must be JSON in UTF-8") from None
        except ValueError:  # Python refuses to parse integers of over 4300 digits
            raise ApiError(400, f"{what} must be JSON with numbers of fewer digits") from None
    return raw


def _number_map(raw: Any, what: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ApiError(400, f"{what} must be an object of label name -> number")
    out = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, f"{what}: {_shown(name)} must be a number, got {_shown(value)}")
        # Compared, not converted: float() of a 4000-digit integer overflows; NaN fails too.
        if not abs(value) <= MAX_INTENSITY:
            raise ApiError(400, f"{what}: {_shown(name)} must be within +-{MAX_INTENSITY:g}")
        out[str(name)] = float(value)
    return out


def _text(raw: Any, what: str) -> str | None:
    """A string field: JSON gives str, multipart gives bytes (UTF-8); empty means absent."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, f"{what} must be UTF-8 text") from None
    if raw is not None and not isinstance(raw, str):
        raise ApiError(400, f"{what} must be a string, got {_shown(raw)}")
    return raw or None


def _flag(raw: Any, what: str, default: bool) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw is not None and not isinstance(raw, str | bytes):
        raise ApiError(400, f"{what} must be true or false, got {_shown(raw)}")
    text = _text(raw, what)
    if text is None:
        return default
    word = text.strip().lower()
    if word in ("1", "true", "on", "yes", "0", "false", "off", "no"):
        return word in ("1", "true", "on", "yes")
    raise ApiError(400, f"{what} must be true or false, got {_shown(text)}")


class Translator:
    """The work behind POST /api/translate, and the admission control around it."""

    def __init__(self, model: StarGAN, limits: Limits, samples: Mapping[str, bytes]) -> None:
        self.model, self.limits, self.samples = model, limits, samples
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=limits.workers, thread_name_prefix="stargan-translate"
        )
        self._lock = threading.Lock()
        self._admitted = 0  # queued + running, including timed-out jobs still computing

    def job_from(
        self, fields: Mapping[str, Any], upload: tuple[bytes, dict[str, str]] | None
    ) -> Job:
        """Validate a request's fields (from multipart or JSON) into a :class:`Job`."""
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ApiError(
                400,
                f"unknown field(s) {', '.join(_shown(k) for k in unknown[:5])}; the fields are "
                f"{', '.join(FIELDS)}",
            )
        if "image" in fields:  # only JSON bodies get here with one: multipart pops the upload
            raise ApiError(400, "send an image as a multipart/form-data upload, not in JSON")
        sample = _text(fields.get("sample"), "sample")
        if upload is not None and sample:
            raise ApiError(400, "send either an image file or a sample id, not both")
        if upload is not None:
            data, headers = upload
            declared = headers.get("content-type", "").split(";")[0].strip().lower()
            if declared not in self.limits.content_types:
                raise ApiError(
                    415,
                    f"uploaded file type {declared or 'unknown'!r} is not accepted; send one "
                    f"of {', '.join(self.limits.content_types)}",
                )
            image, name = data, headers.get("filename") or "upload"
        elif sample:
            if sample not in self.samples:
                raise ApiError(
                    404, f"no sample {_shown(sample)}; choose one of {sorted(self.samples)}"
                )
            image, name = self.samples[sample], str(sample)
        else:
            raise ApiError(400, "send an image file (field 'image') or a sample id ('sample')")
        targets = _json_field(fields.get("targets"), "targets", [])
        if isinstance(targets, dict):
            targets = [targets]
        if not isinstance(targets, list) or len(targets) > self.limits.max_targets:
            raise ApiError(
                400, f"targets must be a list of at most {self.limits.max_targets} objects"
            )
        parsed = [_number_map(t, "target") for t in targets]
        source = _number_map(_json_field(fields.get("source"), "source", {}), "source")
        for names in [*parsed, source]:
            for label in names:
                try:
                    self.model.layout.find(label)
                except LabelError as e:
                    raise ApiError(400, str(e)) from None
        return Job(
            image=image,
            name=name[:100],
            targets=[t for t in parsed if t],
            source=source,
            face_crop=_flag(fields.get("face_crop"), "face_crop", False),
            all_labels=_flag(fields.get("all_labels"), "all_labels", True),
        )

    def run(self, job: Job) -> dict[str, Any]:
        """Decode, crop, translate and encode one request (called in a worker thread)."""
        try:
            return self._run(job)
        except LabelError as e:
            raise ApiError(400, str(e)) from None

    def _run(self, job: Job) -> dict[str, Any]:
        try:
            info = probe_image(job.image, name=job.name, max_pixels=2**62)
        except ImageDecodeError as e:
            # Pillow's own bomb guard fires on absurd sizes before ours can look.
            status = 413 if "decompression" in e.reason else 415
            raise ApiError(status, f"the upload is not a usable image: {e.reason}") from None
        if info.width * info.height > self.limits.max_pixels:
            raise ApiError(
                413,
                f"the image is {info.width} x {info.height} = {info.width * info.height:,} "
                f"pixels; this server accepts at most {self.limits.max_pixels:,}",
            )
        try:
            img = decode_image(job.image, name=job.name, max_pixels=self.limits.max_pixels)
            size = self.model.config.image_size
            x = prepare_image(
                img, size, face_crop=job.face_crop, name=job.name, crop_wording=CROP_WORDING
            )[None]
        except ImageDecodeError as e:
            raise ApiError(415, f"the upload is not a usable image: {e.reason}") from None
        except FaceCropError as e:
            raise ApiError(422, str(e)) from None
        model = self.model
        start = model.source_labels(x, job.source)
        columns = [(target_title(t), t, model.labels_for(t, 1, start)) for t in job.targets]
        if job.all_labels:
            columns += [(title, None, c) for title, c in default_columns(model, x, start)]
        with torch.no_grad():
            outs = [
                model.generator(x.to(model.device), c.to(model.device)).cpu() for *_, c in columns
            ]
        tiles = torch.stack([x[0], *[y[0] for y in outs]])[None]  # [1, 1 + columns, 3, S, S]
        labels = None
        if start is not None:
            labels = dict(start) if isinstance(start, Mapping) else model.describe(start)[0]
        return {
            "image_size": model.config.image_size,
            "source": {"labels": labels, "inferred": model.has_classifier},
            "input": data_url(x[0]),
            "translations": [
                {"title": title, "targets": t, "image": data_url(y[0])}
                for (title, t, _), y in zip(columns, outs, strict=True)
            ],
            "grid": data_url(make_grid(tiles)),
        }

    async def submit(self, job: Job, work: Callable[[Job], dict[str, Any]] | None = None) -> Any:
        """Run ``job`` in the worker pool, or refuse at once when the queue is full."""
        with self._lock:
            if self._admitted >= self.limits.workers + self.limits.queue:
                raise ApiError(
                    503,
                    "the server is busy; try again shortly",
                    {"Retry-After": str(self.limits.retry_after_s)},
                )
            self._admitted += 1
        try:
            future = self.executor.submit(work or self.run, job)
        except BaseException:
            self._release()
            raise
        # The slot is freed when the work really ends, not when the client stops waiting:
        # a timed-out translation still occupies its core until it finishes.
        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.limits.timeout_s)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before 3.11
            future.cancel()  # drops it if still queued; a running one finishes on its own
            raise ApiError(
                504, f"the translation took longer than {self.limits.timeout_s:g} s"
            ) from None

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, in memory, refusing (413) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    too_big = ApiError(413, f"the request body is larger than {limit:,} bytes")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_big
        except ValueError:
            raise ApiError(400, "invalid Content-Length") from None
    from starlette.requests import ClientDisconnect

    chunks, total = [], 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise too_big
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left, or the server cut a body that came too slowly: nobody to answer,
        # and nothing for the log (an attacker could fill it).
        raise ApiError(400, "the connection closed before the body arrived") from None
    return b"".join(chunks)


def _install_error_handlers(app: Any) -> None:
    """Every error a JSON {"error": message}; an unexpected one logged and a bare 500."""
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Any:
        return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))

    @app.exception_handler(ApiError)
    async def _api_error(request: Any, exc: ApiError) -> Any:
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Any, exc: HTTPException) -> Any:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Any, exc: Exception) -> Any:
        log.exception("internal error on %s", request.url.path)
        return error(500, "internal error; the server log has the details")


async def _request_fields(request: Any, limits: Limits) -> tuple[dict[str, Any], Any]:
    """(fields, uploaded image part or None) of a translate request, JSON or multipart."""
    ctype = request.headers.get("content-type", "")
    kind = ctype.split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/json"):
        raise ApiError(
            415, "send multipart/form-data (an image upload) or application/json (a sample)"
        )
    body = await read_body(request, limits.max_body_bytes)
    if kind == "application/json":
        fields = _json_field(body, "the request body", None)
        if not isinstance(fields, dict):
            raise ApiError(400, "the JSON body must be an object")
        return fields, None
    parts = parse_multipart(body, ctype)
    upload = parts.pop("image", None)
    return {name: data for name, (data, _) in parts.items()}, upload


def model_info(model: StarGAN, limits: Limits, sample_ids: Sequence[str]) -> dict[str, Any]:
    """What the page shows and offers (/api/info): the model, its labels, the samples, the
    limits, and the out-of-domain note when it is the packaged SynthFaces model."""
    return {
        "model": model.path.name,
        "step": model.step,
        "image_size": model.config.image_size,
        "classifier": model.has_classifier,
        "labels": [
            {"name": name, "kind": spec.kind, "dataset": k}
            for k, spec in enumerate(model.layout.specs)
            for name in spec.names
        ],
        "samples": [{"id": key, "url": f"/api/samples/{key}"} for key in sample_ids],
        "limits": asdict(limits),
        "note": PACKAGED_NOTE if is_packaged(model) else None,
    }


def create_app(
    model: StarGAN,
    *,
    limits: Limits | None = None,
    samples: Mapping[str, bytes] | None = None,
) -> Any:
    """The demo app for ``model``. ``samples`` maps ids to image bytes offered on the page
    (default: a few rendered SynthFaces)."""
    fastapi = require("fastapi", extra="web", purpose="the web demo (stargan serve)")
    require("python_multipart", extra="web", purpose="the web demo (stargan serve)")
    from fastapi.responses import HTMLResponse, Response

    limits = limits or Limits()
    sample_images = dict(samples) if samples is not None else None

    @functools.lru_cache(maxsize=1)
    def sample_store() -> dict[str, bytes]:
        return sample_images if sample_images is not None else render_samples()

    translator_box: list[Translator] = []

    def translator() -> Translator:
        if not translator_box:
            translator_box.append(Translator(model, limits, sample_store()))
        return translator_box[0]

    app = fastapi.FastAPI(
        title="StarGAN demo", docs_url=None, redoc_url=None, openapi_url=None, debug=False
    )
    page = resources.files("stargan.web").joinpath("index.html").read_text(encoding="utf-8")
    security_headers = {
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
        "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    _install_error_handlers(app)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> Any:
        return HTMLResponse(page, headers=security_headers)

    @app.get("/api/info")
    async def info() -> Any:
        return model_info(model, limits, sorted(sample_store()))

    @app.get("/favicon.ico")
    async def favicon() -> Any:
        return Response(FAVICON, media_type="image/svg+xml")

    @app.get("/api/samples/{key}")
    async def sample(key: str) -> Any:
        store = sample_store()
        if key not in store:
            raise ApiError(404, f"no sample {key!r}")
        return Response(store[key], media_type="image/png")

    @app.post("/api/translate")
    async def translate(request: fastapi.Request) -> Any:
        fields, upload = await _request_fields(request, limits)
        job = translator().job_from(fields, upload)
        return await translator().submit(job)

    app.state.translator = translator
    return app
