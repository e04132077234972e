"""Load a model file and translate images to target domains.

Example:
    >>> import stargan
    >>> model = stargan.load("runs/synth-demo/model.safetensors")       # doctest: +SKIP
    >>> out = model.translate(x, {"Blond_Hair": 1}, source={"Male": 1})  # doctest: +SKIP
    >>> model.describe(model.infer_labels(x))      # when the file keeps D  # doctest: +SKIP
    [{'Black_Hair': 1.0, 'Blond_Hair': 0.0, 'Brown_Hair': 0.0, 'Male': 1.0, 'Young': 1.0}]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import torch
from PIL import Image

from stargan import accel
from stargan import checkpoint as ckpt
from stargan.config import (
    BACKENDS,
    SPEED_PROFILES,
    Backend,
    ConfigError,
    ModelConfig,
    auto_speed,
    runs_on_onnx,
)
from stargan.data.grid import domain_targets, make_grid
from stargan.data.io import IMAGE_EXTENSIONS, preprocess, to_tensor
from stargan.data.labels import LabelError, LabelLayout, set_target
from stargan.files import output_path, safe_stem
from stargan.models import Discriminator, build_discriminator, build_generator

Targets = Mapping[str, float]
Source = Targets | Sequence[torch.Tensor] | None
"""An image's current labels: names -> values for every image, per-dataset label tensors
[N, n_k] per image (as :meth:`StarGAN.infer_labels` returns), or None (infer with D's
classifier when the file keeps it, otherwise binary labels start at 0)."""


class ImageGenerator(Protocol):
    """What translation needs of G: (x [N, 3, S, S], c [N, c_dim]) -> [N, 3, S, S]. The
    PyTorch :class:`Generator` is one; :class:`stargan.onnx_runtime.OnnxGenerator` another."""

    def __call__(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor: ...


PACKAGED_MODEL = Path(__file__).parent / "assets" / "synthfaces-32.safetensors"
"""The small SynthFaces model shipped with the package: the default ``--model``."""
PACKAGED_NOTE = (
    "note: the packaged model was trained on 32 px cartoon faces (SynthFaces); on photos it "
    "paints cartoon shapes (train a model on your own images for those)"
)
"""Said wherever the packaged model translates (stderr of `stargan translate`, the web page):
on anything but SynthFaces-like faces its edits are out of domain."""


def is_packaged(model: StarGAN) -> bool:
    """Whether ``model`` is the packaged SynthFaces model (loaded with no path given)."""
    return Path(model.path).resolve() == PACKAGED_MODEL.resolve()


@dataclass
class StarGAN:
    """A trained generator with the label names it was trained on, and optionally D (whose
    classifier tells an image's current labels when the user does not give them)."""

    generator: ImageGenerator
    config: ModelConfig
    layout: LabelLayout
    path: Path
    step: int | None = None
    discriminator: Discriminator | None = field(default=None, repr=False)
    batch_size: ClassVar[int] = 16
    """Images per G or D call: memory stays one batch's however many images come in."""

    @property
    def device(self) -> torch.device:
        """Where G's inputs go (ONNX Runtime takes them from the CPU)."""
        if isinstance(self.generator, torch.nn.Module):
            return next(self.generator.parameters()).device
        return getattr(self.generator, "device", torch.device("cpu"))

    @property
    def label_names(self) -> list[str]:
        return [n for s in self.layout.specs for n in s.names]

    @property
    def has_classifier(self) -> bool:
        """Whether the file kept D, so source labels can be inferred."""
        return self.discriminator is not None

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> list[torch.Tensor]:
        """D's belief about ``images`` [N, 3, S, S] in [-1, 1]: per dataset, probabilities
        [N, n_k] (sigmoid for binary attributes, softmax over categorical classes)."""
        if self.discriminator is None:
            raise LabelError(
                f"{self.path} keeps no discriminator, so it cannot infer source labels; give "
                f"them (--source NAME=V), or use a model file written by a recent `stargan train`"
            )
        b = self.batch_size
        logits = torch.cat(
            [self.discriminator(images[i : i + b].to(self.device))[1].float().cpu()
             for i in range(0, images.shape[0], b)]
        )  # fmt: skip
        out = []
        for k, spec in enumerate(self.layout.specs):
            part = logits[:, self.layout.slice(k)]
            out.append(part.sigmoid() if spec.kind == "binary" else part.softmax(dim=1))
        return out

    def infer_labels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per dataset, the labels D's classifier sees in ``images``: [N, n_k] of 0/1 (binary:
        probability > 0.5; categorical: one-hot of the most likely class)."""
        labels = []
        for spec, p in zip(self.layout.specs, self.classify(images), strict=True):
            if spec.kind == "binary":
                labels.append((p > 0.5).float())
            else:
                labels.append(torch.nn.functional.one_hot(p.argmax(1), spec.n_labels).float())
        return labels

    def source_labels(self, images: torch.Tensor, given: Targets | None = None) -> Source:
        """The labels translation starts from: inferred by D when the file keeps it, with any
        ``given`` name overriding the inferred value; ``given`` alone otherwise."""
        if self.discriminator is None:
            return dict(given) if given else None
        labels = self.infer_labels(images)
        for name, value in (given or {}).items():
            k, i = self.layout.find(name)
            labels[k][:, i] = float(value)
        return labels

    def describe(self, labels: Sequence[torch.Tensor]) -> list[dict[str, float]]:
        """Per-dataset label tensors [N, n_k] -> per image {name: value}, every dataset merged.

        Example:
            >>> model.describe([torch.tensor([[1.0, 0, 0, 1, 1]])])    # doctest: +SKIP
            [{'Black_Hair': 1.0, 'Blond_Hair': 0.0, 'Brown_Hair': 0.0, 'Male': 1.0, ...}]
        """
        n = labels[0].shape[0]
        out: list[dict[str, float]] = [{} for _ in range(n)]
        for spec, lab in zip(self.layout.specs, labels, strict=True):
            for i, row in enumerate(lab.tolist()):
                out[i] |= dict(zip(spec.names, map(float, row), strict=True))
        return out

    def labels_for(self, targets: Targets, n: int, source: Source = None) -> torch.Tensor:
        """The full label vectors [n, c_dim] that ask for ``targets``.

        All target names must come from one dataset (one mask bit). For a binary dataset the
        attributes not named keep their ``source`` values (0 when not given); a hair colour
        set on clears the other hair colours. ``source`` is a name -> value mapping for every
        image or per-dataset tensors [n, n_k] (e.g. from :meth:`infer_labels`).
        """
        if not targets:
            raise LabelError(f"no target given; choose among: {', '.join(self.label_names)}")
        datasets = {self.layout.find(name)[0] for name in targets}
        if len(datasets) > 1:
            raise LabelError(
                f"targets {list(targets)} come from different datasets; translate to one "
                f"dataset's labels at a time"
            )
        (k,) = datasets
        base = self._source_slice(k, n, source)
        for name, value in targets.items():
            base = set_target(self.layout.specs[k], base, name, float(value))
        return self.layout.embed(k, base)

    def _source_slice(self, k: int, n: int, source: Source) -> torch.Tensor:
        """Dataset k's current labels [n, n_k] from any form of ``source`` (zeros if None)."""
        spec = self.layout.specs[k]
        if source is None:
            return torch.zeros(n, spec.n_labels)
        if isinstance(source, Mapping):
            base = torch.zeros(n, spec.n_labels)
            for name, value in source.items():
                j, i = self.layout.find(name)  # unknown names raise, listing the valid ones
                if j == k:
                    base[:, i] = float(value)
            return base
        if len(source) != self.layout.n_datasets or source[k].shape != (n, spec.n_labels):
            shapes = [list(t.shape) for t in source]
            raise LabelError(
                f"source labels must be one tensor per dataset, dataset {k} shaped "
                f"[N={n}, {spec.n_labels}] ({', '.join(spec.names)}); got {shapes}"
            )
        return source[k].detach().float().cpu().clone()

    @torch.no_grad()
    def translate(
        self, images: torch.Tensor, targets: Targets, source: Source = None
    ) -> torch.Tensor:
        """images [N, 3, S, S] in [-1, 1] -> translated [N, 3, S, S] in [-1, 1].

        Without ``source``, a file that keeps D infers each image's current labels (see
        :meth:`infer_labels`; :meth:`describe` turns them into names to report).

        Example:
            >>> model.translate(x, {"Blond_Hair": 1, "Male": 0}).shape     # doctest: +SKIP
            torch.Size([1, 3, 128, 128])
        """
        if source is None and self.discriminator is not None:
            source = self.infer_labels(images)
        return self.generate(images, self.labels_for(targets, images.shape[0], source))

    @torch.no_grad()
    def generate(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G itself, batch by batch: images [N, 3, S, S] and full label vectors [N, c_dim]
        -> [N, 3, S, S] on the CPU."""
        b = self.batch_size
        return torch.cat(
            [self.generator(images[i : i + b].to(self.device), labels[i : i + b].to(self.device))
             .cpu() for i in range(0, images.shape[0], b)]
        )  # fmt: skip

    @torch.no_grad()
    def interpolate(
        self,
        images: torch.Tensor,
        targets: Targets,
        values: Sequence[float],
        source: Source = None,
    ) -> torch.Tensor:
        """An interpolation strip: images [N, 3, S, S] -> [N, len(values), 3, S, S].

        Each step v asks G for the label vector ``c_src + v (c_tgt - c_src)``: v = 0 is the
        image's own labels (a reconstruction), v = 1 the target, values beyond extrapolate.
        Interpolating whole vectors (rather than one label's value) fades a hair colour out
        while the new one fades in.

        Example:
            >>> model.interpolate(x, {"Blond_Hair": 1}, [0, 0.5, 1]).shape  # doctest: +SKIP
            torch.Size([1, 3, 3, 128, 128])
        """
        if source is None and self.discriminator is not None:
            source = self.infer_labels(images)
        n = images.shape[0]
        c_tgt = self.labels_for(targets, n, source)
        k = self.layout.find(next(iter(targets)))[0]
        c_src = self.layout.embed(k, self._source_slice(k, n, source))
        steps = [self.generate(images, c_src + float(v) * (c_tgt - c_src)) for v in values]
        return torch.stack(steps, dim=1)


def load(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    backend: Backend = "auto",
    channels_last: bool | None = None,
) -> StarGAN:
    """Load a model file written by training (``model.safetensors``) or ``stargan
    import-official``, or an ONNX file written by ``stargan export`` (G then runs in ONNX
    Runtime; see :mod:`stargan.export`); None loads the packaged SynthFaces model. D comes
    along when the file keeps it (then :attr:`StarGAN.has_classifier`). ``channels_last``
    keeps the torch backend's nets in NHWC memory order: the same outputs to float rounding,
    15-20 % faster at 128 px on the CPUs of docs/performance.md, no faster at 32 px; None
    chooses it on the CPU at 128 px and larger, as training does (config.auto_speed).

    Example:
        >>> load("G.onnx").translate(x, {"Male": 1}, source={"Male": 0})   # doctest: +SKIP
    """
    path = resolve_model_path(path)
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    is_onnx = path.suffix.lower() == ".onnx"
    if runs_on_onnx(path, backend):
        if channels_last:
            raise ConfigError(
                f"channels_last is a memory order for the torch backend; ONNX Runtime lays "
                f"out {path}'s tensors itself (drop --channels-last, or --backend torch with "
                f"a model.safetensors file)"
            )
        if not is_onnx:
            raise ConfigError(
                f"the onnx backend runs files written by `stargan export`, not {path}; export "
                f"it first: stargan export --model {path} --format onnx --out G.onnx"
            )
        from stargan.onnx_runtime import read_onnx

        generator, config, layout, step = read_onnx(path, device)
        return StarGAN(generator, config, layout, path, step)  # type: ignore[arg-type]
    tensors, meta = ckpt.load_tensors(path, ckpt.MODEL_FORMAT)
    config, layout, step = ckpt.parse_model_metadata(path, meta)
    # Built on the meta device: the file's tensors are checked against the nets' shapes before
    # any memory is taken, then the nets are materialised from them.
    with torch.device("meta"):
        generator = build_generator(config)
    ckpt.load_module_weights(generator, tensors, "G.", path)
    if channels_last is None:
        channels_last = SPEED_PROFILES[auto_speed(config.image_size, torch.device(device).type)]
        channels_last = channels_last.channels_last
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(device, memory_format=memory_format)
    discriminator = None
    if meta.get("discriminator") == "true":
        with torch.device("meta"):
            discriminator = build_discriminator(config)
        ckpt.load_module_weights(discriminator, tensors, "D.", path)
        discriminator.to(device, memory_format=memory_format).eval()
    # The exact CPU kernels training uses by default (the same maths, faster on the CPU).
    accel.use_cpu_kernels(*(n for n in (generator, discriminator) if n is not None))
    return StarGAN(generator, config, layout, path, step, discriminator)


def resolve_model_path(path: str | Path | None) -> Path:
    """``path``, or the packaged SynthFaces model when None; a clear error when neither exists.

    Example:
        >>> resolve_model_path(None).name                                # doctest: +SKIP
        'synthfaces-32.safetensors'
    """
    if path is not None:
        return Path(path)
    if not PACKAGED_MODEL.is_file():
        raise FileNotFoundError(
            f"no --model given and this install has no packaged model ({PACKAGED_MODEL}); "
            f"pass --model FILE, e.g. runs/demo/model.safetensors after "
            f"`stargan train --preset synth-demo --out runs/demo`"
        )
    return PACKAGED_MODEL


GRID_ROWS = 16
# Outputs are written at least this large by default: a 32 px model's pictures are too small to
# look at, and upscaling at write time costs nothing on the compute path.
MIN_OUTPUT_SIZE = 128
"""Most input rows in one grid file: more images make grid-1, grid-2, ... (a grid of hundreds
of rows is an image no viewer shows)."""


def list_images(source: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, other files): an image file alone, or a folder's files by extension, sorted;
    a folder without any image is an error."""
    source = Path(source)
    if source.is_file():
        return [source], []
    if not source.is_dir():
        raise FileNotFoundError(f"input {source} is neither an image file nor a folder")
    entries = sorted(p for p in source.iterdir() if not p.is_dir())
    files = [p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {source}"
            + (f"; it has {len(entries)} other file(s), e.g. {entries[0].name}" if entries else "")
        )
    return files, [p for p in entries if p.suffix.lower() not in IMAGE_EXTENSIONS]


def target_title(targets: Targets) -> str:
    """{'Blond_Hair': 1, 'Male': 0} -> 'Blond_Hair+Male=0' (file names and grid titles)."""
    return "+".join(n if v == 1 else f"{n}={v:g}" for n, v in targets.items())


def parse_target(
    items: Sequence[str], layout: LabelLayout, what: str = "--set"
) -> dict[str, float]:
    """Command-line assignments -> one target {name: value}.

    ``NAME=V`` sets a label to V (intensities between 0 and 1 and beyond are allowed), a bare
    ``NAME`` means ``NAME=1``, items may be comma-joined, and ``KEY=CLASS`` picks a class of
    a categorical dataset by name (``expression=happy``; KEY is free text).

    Example:
        >>> lay = LabelLayout((LabelSpec(("Male", "Young"), "binary"),))
        >>> parse_target(["Male=0.5", "Young"], lay)
        {'Male': 0.5, 'Young': 1.0}
    """
    out: dict[str, float] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, has_value, raw = part.partition("=")
            name, raw = name.strip(), raw.strip()
            if not has_value:
                value = 1.0
            else:
                try:
                    value = float(raw)
                except ValueError:
                    classes = [n for s in layout.specs if s.kind == "categorical" for n in s.names]
                    if raw not in classes:
                        raise LabelError(
                            f"{what} {part!r}: {raw!r} is neither a number nor a class name"
                            + (f" ({', '.join(classes)})" if classes else "")
                            + f"; the value must be a number, e.g. {name}=1"
                        ) from None
                    name, value = raw, 1.0
            if not math.isfinite(value):
                raise LabelError(f"{what} {part!r}: the value must be a finite number")
            layout.find(name)  # an unknown name raises, listing the valid ones
            out[name] = value
    return out


def default_columns(
    model: StarGAN, images: torch.Tensor, source: Source
) -> list[tuple[str, torch.Tensor]]:
    """One translation per label, as sample grids make them, for images taken to belong to
    the first dataset: (title, label vectors [N, c_dim]). A hair colour is set, any other
    binary attribute flipped from the image's current (inferred or given) value."""
    base = model._source_slice(0, images.shape[0], source)
    return domain_targets(model.layout, 0, base)


@dataclass(frozen=True)
class Strip:
    """An interpolation strip towards ``targets`` at the intensities ``values``.

    Example:
        >>> Strip.linear({"Blond_Hair": 1.0}, steps=3).values
        (0.0, 0.5, 1.0)
    """

    targets: Mapping[str, float]
    values: tuple[float, ...]

    @classmethod
    def linear(cls, targets: Targets, steps: int, start: float = 0.0, stop: float = 1.0) -> Strip:
        if steps < 2:
            raise LabelError(f"an interpolation strip needs --steps >= 2, got {steps}")
        values = tuple(round(float(v), 6) for v in np.linspace(start, stop, steps))
        return cls(dict(targets), values)


@dataclass
class TranslateReport:
    """What :func:`translate_files` wrote and the labels each image started from."""

    written: list[Path]
    sources: dict[str, dict[str, float]]
    """File -> {label: value} the translation started from (inferred or given)."""
    inferred: bool
    """True when those labels came from D's classifier."""
    ignored: list[Path] = field(default_factory=list)
    """Files of the input folder that are not images by their extension."""
    no_face: list[Path] = field(default_factory=list)
    """Photos of the input folder left out by --face-crop: no face in them, or several."""


def prepare_image(
    img: Image.Image,
    image_size: int,
    *,
    face_crop: bool = False,
    name: str = "<image>",
    crop_wording: tuple[str, str] = ("--face-crop", ""),
) -> torch.Tensor:
    """A decoded RGB image -> G's input [3, S, S] in [-1, 1]: the face crop when asked,
    otherwise the largest centred square, then a resize to the model's size.
    ``crop_wording`` is (how the crop is named, how to turn it off) in the caller's interface,
    for a failed crop's error (see :func:`stargan.facecrop.crop_face`)."""
    if face_crop:
        from stargan.facecrop import crop_face

        img = crop_face(img, name=name, option=crop_wording[0], off=crop_wording[1])
    return to_tensor(preprocess(img, image_size, name=name))


def resize_images(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """[N, 3, S, S] in [-1, 1] -> [N, 3, size, size] (bicubic, antialiased); None keeps S."""
    if size is None or size == images.shape[-1]:
        return images
    if size < 1:
        raise ValueError(f"output size must be >= 1 pixel, got {size}")
    out = torch.nn.functional.interpolate(
        images.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False
    )
    return out.clamp(-1, 1)


def translate_files(
    model: StarGAN | str | Path | None,
    inputs: str | Path,
    out_dir: str | Path,
    targets: Sequence[Targets] = (),
    *,
    source: Targets | None = None,
    grid: bool = False,
    strip: Strip | None = None,
    face_crop: bool = False,
    fmt: str = "png",
    size: int | None = None,
    device: str = "cpu",
) -> TranslateReport:
    """Translate every image of ``inputs`` (a file or a folder) and write the results.

    One file per image per target (``{stem}-{title}.{fmt}``); with ``grid`` also
    ``grid.{fmt}`` (a row per image: input, then each target; ``grid-1.{fmt}``, ``grid-2...``
    of at most ``GRID_ROWS`` rows each for more images); with ``strip`` one
    ``{stem}-strip-{title}.{fmt}`` per image (input, then each step). With neither targets nor
    a strip, each label is a target as in sample grids. ``source`` gives the images' current
    labels; names left out are inferred by D when the model file keeps it. ``size`` defaults
    to the model's side, at least ``MIN_OUTPUT_SIZE`` px. In a folder, files
    that are not images by extension and photos that ``face_crop`` cannot crop are left out
    and listed in the report.

    Example:
        >>> translate_files("model.safetensors", "photos/", "out/", [{"Blond_Hair": 1}],
        ...                 grid=True, face_crop=True)                  # doctest: +SKIP
    """
    if fmt not in ("png", "jpg"):
        raise ValueError(f"output format must be 'png' or 'jpg', got {fmt!r}")
    if not isinstance(model, StarGAN):
        model = load(model, device)
    size = size or max(model.config.image_size, MIN_OUTPUT_SIZE)
    files, ignored = list_images(inputs)
    files, x, no_face = _prepare_all(
        files, model.config.image_size, face_crop, Path(inputs).is_dir()
    )
    start = model.source_labels(x, source)
    jobs: list[tuple[str, Callable[[], torch.Tensor]]] = []
    if targets:
        jobs = [(target_title(t), partial(model.translate, x, t, start)) for t in targets]
    elif strip is None:
        jobs = [(n, partial(model.generate, x, c)) for n, c in default_columns(model, x, start)]
    with _Writer(out_dir, fmt) as write:
        columns = []
        for title, compute in jobs:  # each column is written while G computes the next
            columns.append((title, compute()))
            for f, image in zip(files, resize_images(columns[-1][1], size), strict=True):
                write(image, f.stem, title)
        if strip is not None:
            steps = model.interpolate(x, strip.targets, strip.values, start)  # [N, K, 3, S, S]
            titles = ["input", *(f"{v:g}" for v in strip.values)]
            for f, xi, row in zip(files, x, steps, strict=True):
                tiles = resize_images(torch.cat([xi[None], row]), size)[None]
                write(make_grid(tiles, titles=titles), f.stem, "strip", target_title(strip.targets))
        if grid and columns:
            tiles = torch.stack([resize_images(t, size) for t in [x] + [y for _, y in columns]], 1)
            parts = tiles.split(GRID_ROWS)  # [rows, 1 + targets, 3, S, S] each
            titles = ["input", *(title for title, _ in columns)]
            for k, part in enumerate(parts, 1):
                write(make_grid(part, titles=titles), "grid" if len(parts) == 1 else f"grid-{k}")
    written = write.written
    sources = {}
    if start is not None:
        labels = start if not isinstance(start, Mapping) else None
        described = model.describe(labels) if labels is not None else [dict(start)] * len(files)
        sources = {str(f): d for f, d in zip(files, described, strict=True)}
    return TranslateReport(written, sources, model.has_classifier, ignored, no_face)


class _Writer:
    """Writes translate_files' pictures on one background thread, so that PNG/JPEG encoding
    and file writing overlap G's next batch. Names come from strangers' files: each part is
    made safe and the path kept inside ``out_dir``. Files are renamed into place whole but
    not fsynced one by one: outputs can be made again, and a sync per image cost more than
    encoding it."""

    def __init__(self, out_dir: str | Path, fmt: str) -> None:
        self.out_dir, self.fmt = out_dir, fmt
        self.pending: list[Future[Path]] = []
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="stargan-writer")

    def __enter__(self) -> _Writer:
        return self

    def __call__(self, image: torch.Tensor | np.ndarray, *parts: str) -> None:
        from stargan.data.io import save_image

        name = "-".join(safe_stem(p) for p in parts) + f".{self.fmt}"
        path = output_path(self.out_dir, name)
        self.pending.append(self.pool.submit(save_image, image, path, sync=False))

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)

    @property
    def written(self) -> list[Path]:
        """The paths written, in the order asked; a failed write raises its error here."""
        return [f.result() for f in self.pending]


def _prepare_all(
    files: list[Path], image_size: int, face_crop: bool, folder: bool
) -> tuple[list[Path], torch.Tensor, list[Path]]:
    """(files kept, G's inputs [N, 3, S, S], photos left out): in a folder, a photo that
    --face-crop cannot crop is left out and named, not the end of the batch."""
    from stargan.data.io import decode_image
    from stargan.facecrop import FaceCropError

    kept, inputs, no_face = [], [], []
    for f in files:
        try:
            inputs.append(
                prepare_image(decode_image(f), image_size, face_crop=face_crop, name=str(f))
            )
        except FaceCropError:
            if not folder:
                raise
            no_face.append(f)
            continue
        kept.append(f)
    if not kept:
        raise FaceCropError(
            f"none of the {len(files)} photos has exactly one face for --face-crop (the "
            f"detector wants one frontal face); crop them by hand or leave out --face-crop"
        )
    return kept, torch.stack(inputs), no_face
