"""Fuzzing the decoder: random and mutated bytes either decode to RGB or raise ImageDecodeError.

Nothing else may escape: no Pillow, zlib or struct error, no crash deeper in the stack.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stargan.data.io import ImageDecodeError, decode_image, probe_image

# Pillow warns about the odd corrupt TIFF tag or EXIF block it skips; that is not an escape.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A small limit keeps mutated headers that declare huge images from spending time decoding.
MAX_PIXELS = 1 << 18


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (12, 10, 4), dtype=np.uint8), "RGBA")
    grey16 = Image.fromarray(rng.integers(0, 65536, (8, 8), dtype=np.uint16))
    exif = Image.Exif()
    exif[0x0112] = 6
    files = {}
    for key, img, fmt, options in [
        ("jpeg", rgb, "JPEG", {"exif": exif.tobytes()}),
        ("progressive", rgb, "JPEG", {"progressive": True}),
        ("png", rgba, "PNG", {}),
        ("png16", grey16, "PNG", {}),
        ("palette", rgb.convert("P"), "PNG", {"transparency": 3}),
        ("gif", rgb.convert("P"), "GIF", {}),
        ("bmp", rgb, "BMP", {}),
        ("tiff", rgb, "TIFF", {"compression": "tiff_deflate"}),
        ("cmyk", rgb.convert("CMYK"), "TIFF", {}),
        ("webp", rgba, "WEBP", {"lossless": True}),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt, **options)
        files[key] = buf.getvalue()
    return files


SEEDS = _seed_files()


def _decode_or_typed_error(data: bytes) -> None:
    try:
        out = decode_image(data, name="fuzz", max_pixels=MAX_PIXELS)
    except ImageDecodeError as e:
        assert str(e).startswith("fuzz: ")
        return
    assert out.mode == "RGB" and out.width * out.height <= MAX_PIXELS
    out.tobytes()  # fully materialised


def _probe_or_typed_error(data: bytes) -> None:
    with contextlib.suppress(ImageDecodeError):
        probe_image(data, name="fuzz", max_pixels=MAX_PIXELS)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    _decode_or_typed_error(data)
    _probe_or_typed_error(data)


@st.composite
def mutated(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        # Most of a file's structure is in its first bytes: bias positions towards the header.
        limit = draw(st.sampled_from([64, 256, len(data)]))
        pos = draw(st.integers(0, max(0, min(limit, len(data)) - 1)))
        if not data:
            break
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_valid_files(data):
    _decode_or_typed_error(data)
    _probe_or_typed_error(data)


@pytest.mark.parametrize("key", sorted(SEEDS))
def test_seed_files_decode(key):
    assert decode_image(SEEDS[key], max_pixels=MAX_PIXELS).mode == "RGB"
