"""The one image decoder: untrusted bytes in, a loaded RGB image or one typed error out.

Training, translation and the web demo all read images through :func:`decode_image`, so one
set of rules applies everywhere:

- only the formats in :data:`ALLOWED_FORMATS` are tried (Pillow never sniffs EPS, PDF, ...);
- the pixel count declared in the header is checked against a per-call limit *before* any
  pixel is decoded (Pillow's own decompression-bomb limit still applies on top);
- the EXIF orientation is applied, so a phone photo comes out upright;
- every mode becomes RGB the same way: alpha is composited on a stated background, 16-bit
  grey is scaled (65535 -> 255), 1-bit becomes 0/255, CMYK uses its ICC profile if it has one;
- anything that goes wrong (missing, empty, truncated, corrupt, unsupported, too large) raises
  :class:`ImageDecodeError` naming the file, never a Pillow or zlib error from deeper down.

Preprocessing helpers turn a decoded image into the model's input: a centre crop (placed as
torchvision's ``CenterCrop`` places it), a bilinear resize and scaling to [-1, 1].

Example:
    >>> buf = io.BytesIO()
    >>> Image.new("RGBA", (178, 218)).save(buf, "PNG")
    >>> img = decode_image(buf.getvalue(), name="upload.png")
    >>> img.mode
    'RGB'
    >>> to_tensor(preprocess(img, image_size=128, crop_size=178)).shape
    torch.Size([3, 128, 128])
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps

from stargan.atomic import atomic_write_bytes
from stargan.files import UnsafeFileError, read_regular

if TYPE_CHECKING:  # decoding and checking images needs no torch; making tensors imports it
    import torch

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF", "PPM")
"""Pillow format ids the decoder will open (JPEG includes multi-picture JPEGs, "MPO"; PPM
includes PGM and PBM, as the ORL/AT&T faces ship)."""

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}
)
"""File extensions that dataset scanners treat as images (the content decides the format)."""

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width x height accepted by default (about 7000 x 7000; below Pillow's own limit)."""

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]
_ORIENTATION = ExifTags.Base.Orientation
_SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90 or 270 degrees


class ImageDecodeError(ValueError):
    """An image that cannot be used: the message names the file and says why.

    Attributes:
        name: the file name (or the name given for bytes input).
        reason: the cause without the file name.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, read without decoding pixels (see :func:`probe_image`)."""

    format: str
    mode: str
    width: int
    """Width after the EXIF orientation is applied."""
    height: int
    """Height after the EXIF orientation is applied."""


def _source_name(source: Source, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)  # type: ignore[return-value]
    return getattr(source, "name", None) or "<bytes>"


def _max_file_bytes(max_pixels: int) -> int:
    # Even uncompressed 16-bit RGBA (8 bytes a pixel) plus generous metadata fits in this.
    return 8 * max_pixels + (16 << 20)


def _read_bytes(source: Source, name: str, max_pixels: int) -> bytes:
    """All bytes of ``source``, bounded; filesystem problems become :class:`ImageDecodeError`."""
    limit = _max_file_bytes(max_pixels)
    if isinstance(source, str | os.PathLike):
        try:
            # Regular files only (a link to /dev/zero or a FIFO named x.jpg is refused at once).
            return _nonempty(read_regular(source, limit, "image"), name)
        except FileNotFoundError:
            raise ImageDecodeError(name, "file not found") from None
        except UnsafeFileError as e:
            raise ImageDecodeError(name, e.reason) from None
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        try:
            data = source.read(limit + 1)
        except OSError as e:
            raise ImageDecodeError(name, f"cannot read ({e.strerror or e})") from None
    if isinstance(data, bytes) and len(data) > limit:
        raise ImageDecodeError(name, f"more than {limit:,} bytes, the limit for an image")
    return _nonempty(data, name)


def _nonempty(data: object, name: str) -> bytes:
    if not isinstance(data, bytes):
        raise ImageDecodeError(name, f"expected bytes from the file object, got {type(data)}")
    if not data:
        raise ImageDecodeError(name, "empty file (0 bytes)")
    return data


def _open_checked(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open the header with the allow-list and check the declared size; pixels stay undecoded."""
    try:
        im = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(name, f"rejected as a decompression bomb ({e})") from None
    except Image.UnidentifiedImageError:
        allowed = ", ".join(ALLOWED_FORMATS)
        raise ImageDecodeError(name, f"not an image in an allowed format ({allowed})") from None
    # Pillow's plugins raise a zoo of types on malformed headers (SyntaxError, struct.error,
    # EOFError, IndexError, ...). This is the boundary where untrusted bytes meet the parser,
    # so every failure here is by definition a decode error.
    except Exception as e:
        raise ImageDecodeError(
            name, f"truncated or corrupt image header ({type(e).__name__}: {e})"
        ) from None
    width, height = im.size
    if width < 1 or height < 1:
        raise ImageDecodeError(name, f"declares an empty size {width} x {height}")
    if width * height > max_pixels:
        raise ImageDecodeError(
            name,
            f"declares {width} x {height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (decompression-bomb guard; raise max_pixels if this is genuine)",
        )
    return im


def _orientation(im: Image.Image) -> int:
    # Only EXIF already parsed with the header: PNG's getexif() would decode the whole image
    # to look for an eXIf chunk after the pixel data.
    if "exif" not in im.info and im.format not in ("TIFF",):
        return 1
    value = im.getexif().get(_ORIENTATION, 1)
    return value if isinstance(value, int) else 1


def probe_image(
    source: Source, *, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageInfo:
    """Format, mode and upright size from the header alone (cheap: no pixel decoding).

    Catches missing, empty, non-image and oversized files; truncated pixel data needs
    :func:`decode_image`.

    Example:
        >>> probe_image("face.jpg").width                              # doctest: +SKIP
        178
    """
    name = _source_name(source, name)
    data = _read_bytes(source, name, max_pixels)
    im = _open_checked(data, name, max_pixels)
    try:
        orientation = _orientation(im)
    except Exception as e:  # malformed EXIF: Pillow raises many types (see _open_checked)
        raise ImageDecodeError(name, f"corrupt EXIF data ({type(e).__name__}: {e})") from None
    width, height = im.size
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return ImageInfo(format=str(im.format), mode=im.mode, width=width, height=height)


def decode_image(
    source: Source,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Decode ``source`` (a path, bytes or a binary file object) into a loaded RGB image.

    Args:
        source: the file path, its bytes, or an open binary file.
        name: how error messages name the image (default: the path, or "<bytes>").
        max_pixels: largest accepted width x height, checked on the header before decoding.
        background: RGB colour that transparent pixels are composited onto.

    Raises:
        ImageDecodeError: for every reason the image cannot be used; nothing else escapes.

    Example:
        >>> decode_image("face.png", background=(0, 0, 0)).mode       # doctest: +SKIP
        'RGB'
    """
    name = _source_name(source, name)
    data = _read_bytes(source, name, max_pixels)
    im = _open_checked(data, name, max_pixels)
    try:
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(name, f"rejected as a decompression bomb ({e})") from None
    except Exception as e:  # the decoder boundary, see _open_checked
        raise ImageDecodeError(name, f"truncated or corrupt image data ({e})") from None
    try:
        return _to_rgb(im, background)
    except ImageDecodeError as e:
        raise ImageDecodeError(name, e.reason) from None
    except Exception as e:  # mode conversion inside Pillow on odd but decodable files
        raise ImageDecodeError(name, f"cannot convert mode {im.mode} to RGB ({e})") from None


def _to_rgb(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode.startswith("I;16") or mode == "I":
        return _sixteen_bit_to_rgb(im)
    if mode == "F":
        raise ImageDecodeError("", "floating-point (mode F) images are not supported")
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode == "1":
        im = im.convert("L")  # 0 / 255, not 0 / 1
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")  # also resolves palette and tRNS transparency
        out = Image.new("RGB", rgba.size, background)
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return im.convert("RGB")


def _sixteen_bit_to_rgb(im: Image.Image) -> Image.Image:
    a = np.asarray(im)
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise ImageDecodeError(
            "", f"mode {im.mode} values span [{a.min()}, {a.max()}], outside 16-bit [0, 65535]"
        )
    # 65535 / 255 = 257 exactly: a rounded division maps the full 16-bit range onto 0..255.
    grey = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(
                im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if out is not None:
                return out
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain conversion below
    return im.convert("RGB")


def center_crop(img: Image.Image, size: int, *, name: str = "<image>") -> Image.Image:
    """Centre ``size`` x ``size`` square, placed as torchvision's CenterCrop places it.

    Raises ImageDecodeError naming the image when it is smaller than the crop.
    """
    width, height = img.size
    if width < size or height < size:
        raise ImageDecodeError(
            name,
            f"image is {width} x {height}, smaller than the {size} x {size} centre crop "
            f"(--crop-size sets the crop)",
        )
    left = round((width - size) / 2.0)
    top = round((height - size) / 2.0)
    return img.crop((left, top, left + size, top + size))


def resize(img: Image.Image, size: int) -> Image.Image:
    """Bilinear (antialiased) resize to ``size`` x ``size``; a no-op when already that size."""
    if img.size == (size, size):
        return img
    return img.resize((size, size), Image.Resampling.BILINEAR)


def preprocess(
    img: Image.Image, image_size: int, crop_size: int | None = None, *, name: str = "<image>"
) -> np.ndarray:
    """Centre crop (default: the largest square) then resize: uint8 [S, S, 3].

    Example:
        >>> preprocess(Image.new("RGB", (178, 218)), 128, 178).shape
        (128, 128, 3)
    """
    crop = min(img.size) if crop_size is None else crop_size
    out = resize(center_crop(img, crop, name=name), image_size)
    return np.array(out, dtype=np.uint8)  # a writable copy, detached from Pillow


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W] in [-1, 1] (the official ToTensor + Normalize(0.5)).

    Example:
        >>> to_tensor(np.full((2, 2, 3), 255, np.uint8)).max().item()
        1.0
    """
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"to_tensor expects uint8 [H, W, 3], got {array.dtype} {array.shape}")
    import torch

    if not array.flags.writeable:  # torch warns on read-only buffers (PIL's, memmaps)
        array = array.copy()
    t = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    return t.to(torch.float32).div_(127.5).sub_(1.0)


def load_image(
    source: Source,
    image_size: int,
    crop_size: int | None = None,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> torch.Tensor:
    """Decode, crop, resize and scale: float32 [3, S, S] in [-1, 1], ready for G.

    Example:
        >>> load_image("face.jpg", 128, 178).shape                      # doctest: +SKIP
        torch.Size([3, 128, 128])
    """
    label = _source_name(source, name)
    img = decode_image(source, name=label, max_pixels=max_pixels)
    return to_tensor(preprocess(img, image_size, crop_size, name=label))


def to_uint8_image(image: torch.Tensor | np.ndarray | Image.Image) -> Image.Image:
    """A float tensor [3, H, W] in [-1, 1] (G's output), a uint8 array [H, W, 3] or [H, W], or
    a PIL image -> an RGB/L PIL image. Floats are clamped to [-1, 1] and rounded."""
    if isinstance(image, Image.Image):
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    import torch

    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"expected a tensor [3, H, W] or [1, H, W], got {list(t.shape)}")
        if t.dtype == torch.uint8:
            array = t.permute(1, 2, 0).numpy()
        else:
            t = t.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
            array = t.permute(1, 2, 0).numpy()
        array = array[:, :, 0] if array.shape[2] == 1 else array
    else:
        array = image
        if (
            array.dtype != np.uint8
            or array.ndim not in (2, 3)
            or (array.ndim == 3 and array.shape[2] != 3)
        ):
            raise ValueError(
                f"expected a uint8 array [H, W, 3] or [H, W], got {array.dtype} {array.shape}"
            )
    return Image.fromarray(np.ascontiguousarray(array))


def save_image(
    image: torch.Tensor | np.ndarray | Image.Image,
    path: str | os.PathLike,
    *,
    quality: int = 95,
    sync: bool = True,
) -> Path:
    """Write ``image`` as PNG or JPEG (chosen by the extension), atomically.

    The file appears complete or not at all: a temporary file in the same folder is renamed
    over ``path``, so a crash never leaves a half-written image for a reader to choke on.
    ``sync=False`` skips the fsyncs (see :func:`stargan.atomic.atomic_writer`).

    Example:
        >>> save_image(torch.zeros(3, 8, 8), "grid.png")               # doctest: +SKIP
        PosixPath('grid.png')
    """
    path = Path(path)
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: save_image writes .png, .jpg or .jpeg, not {path.suffix!r}")
    buffer = io.BytesIO()
    to_uint8_image(image).save(
        buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {})
    )
    atomic_write_bytes(path, buffer.getvalue(), sync=sync)
    return path
