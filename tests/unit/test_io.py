"""The image decoder: every mode to RGB, EXIF, bombs, broken files, preprocessing, writing."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    center_crop,
    decode_image,
    load_image,
    preprocess,
    probe_image,
    save_image,
    to_tensor,
)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring width x height, with a few bytes of pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def pixel(img: Image.Image, xy=(0, 0)) -> tuple[int, ...]:
    return tuple(img.getpixel(xy))


# Modes.


def test_rgb_passes_through_exactly():
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = decode_image(encode(Image.fromarray(a), "PNG"))
    assert out.mode == "RGB" and out.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(out), a)


def test_grey_l_becomes_equal_channels():
    out = decode_image(encode(Image.new("L", (4, 4), 77), "PNG"))
    assert pixel(out) == (77, 77, 77)


def test_one_bit_becomes_black_and_white_not_zero_and_one():
    img = Image.new("1", (8, 2), 0)
    img.putpixel((0, 0), 1)
    for fmt in ("PNG", "BMP", "TIFF"):
        out = decode_image(encode(img, fmt), name=f"x.{fmt}")
        assert pixel(out, (0, 0)) == (255, 255, 255), fmt
        assert pixel(out, (1, 0)) == (0, 0, 0), fmt


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 0, 0), (10, 200, 30)])
def test_rgba_is_composited_on_the_stated_background(background):
    img = Image.new("RGBA", (3, 1))
    img.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red
    img.putpixel((1, 0), (255, 0, 0, 255))  # opaque red
    img.putpixel((2, 0), (0, 0, 255, 128))  # half-transparent blue
    out = decode_image(encode(img, "PNG"), background=background)
    assert pixel(out, (0, 0)) == background
    assert pixel(out, (1, 0)) == (255, 0, 0)
    expected = [
        round(b * 127 / 255 + c * 128 / 255) for b, c in zip(background, (0, 0, 255), strict=True)
    ]
    assert all(abs(o - e) <= 1 for o, e in zip(pixel(out, (2, 0)), expected, strict=True))


def test_la_alpha_is_composited():
    img = Image.new("LA", (2, 1))
    img.putpixel((0, 0), (0, 0))
    img.putpixel((1, 0), (40, 255))
    out = decode_image(encode(img, "PNG"), background=(200, 100, 50))
    assert pixel(out, (0, 0)) == (200, 100, 50)
    assert pixel(out, (1, 0)) == (40, 40, 40)


def test_palette_with_and_without_transparency():
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    plain = decode_image(encode(img, "PNG"))
    assert pixel(plain, (0, 0)) == (255, 0, 0) and pixel(plain, (1, 0)) == (0, 255, 0)
    for fmt in ("PNG", "GIF"):
        keyed = decode_image(encode(img, fmt, transparency=0), background=(0, 0, 0))
        assert pixel(keyed, (0, 0)) == (0, 0, 0), fmt  # index 0 is transparent
        assert pixel(keyed, (1, 0)) == (0, 255, 0), fmt


def test_cmyk_converts_to_rgb():
    img = Image.new("CMYK", (8, 8), (255, 0, 0, 0))  # pure cyan
    out = decode_image(encode(img, "TIFF"))
    assert pixel(out) == (0, 255, 255)
    out = decode_image(encode(img, "JPEG", quality=95))  # Adobe-inverted CMYK JPEG
    assert all(abs(a - b) <= 4 for a, b in zip(pixel(out, (4, 4)), (0, 255, 255), strict=True))
    black = decode_image(encode(Image.new("CMYK", (4, 4), (0, 0, 0, 255)), "TIFF"))
    assert pixel(black) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_grey_is_scaled_not_clipped(fmt):
    values = np.array([[0, 257 * 100, 32896, 65535]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    out = decode_image(encode(img, fmt))
    assert [pixel(out, (x, 0))[0] for x in range(4)] == [0, 100, 128, 255]
    assert pixel(out, (3, 0)) == (255, 255, 255)


def test_thirty_two_bit_integer_in_sixteen_bit_range_is_scaled():
    img = Image.fromarray(np.array([[65535, 0]], dtype=np.int32), mode="I")
    out = decode_image(encode(img, "TIFF"))
    assert pixel(out, (0, 0)) == (255, 255, 255) and pixel(out, (1, 0)) == (0, 0, 0)


def test_float_images_are_a_typed_error():
    img = Image.fromarray(np.zeros((2, 2), dtype=np.float32), mode="F")
    with pytest.raises(ImageDecodeError, match="f.tif: .*mode F"):
        decode_image(encode(img, "TIFF"), name="f.tif")


# EXIF orientation.


def _left_red_right_blue(w=32, h=16) -> Image.Image:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (255, 0, 0)
    a[:, w // 2 :] = (0, 0, 255)
    return Image.fromarray(a)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt):
    img = _left_red_right_blue()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(img, fmt, exif=exif.tobytes(), quality=95)
    out = decode_image(data)
    assert out.size == (16, 32)
    top, bottom = np.asarray(out)[4, 8], np.asarray(out)[28, 8]
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    info = probe_image(data)
    assert (info.width, info.height) == (16, 32)


def test_no_exif_means_no_rotation():
    out = decode_image(encode(_left_red_right_blue(), "JPEG"))
    assert out.size == (32, 16)


# Hostile and broken input.


def test_decompression_bomb_is_rejected_fast_without_allocating():
    bomb = png_header_only(30_000, 30_000)
    assert len(bomb) < 200
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"bomb\.png: .*(bomb|limit)"):
        decode_image(bomb, name="bomb.png")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 10 * 2**20  # 30,000^2 RGB would be 2.7 GB


def test_our_pixel_limit_applies_below_pillows_own():
    big = png_header_only(20_000, 4_000)  # 80 M pixels: under Pillow's limit, over ours
    assert DEFAULT_MAX_PIXELS < 20_000 * 4_000
    with pytest.raises(ImageDecodeError, match="80,000,000 pixels, more than the limit"):
        decode_image(big, name="big.png")
    with pytest.raises(ImageDecodeError, match="more than the limit"):
        probe_image(big)
    small = encode(Image.new("RGB", (64, 64)), "PNG")
    with pytest.raises(ImageDecodeError, match="4,096 pixels"):
        decode_image(small, max_pixels=1000)
    assert decode_image(small, max_pixels=4096).size == (64, 64)


def test_oversized_files_are_refused_before_reading(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.write(png_header_only(8, 8))
        f.truncate(40 << 20)  # sparse: 40 MiB without writing them
    with pytest.raises(ImageDecodeError, match=r"huge\.png: file is 41,943,040 bytes"):
        decode_image(path, max_pixels=1_000_000)


def test_pillow_globals_are_not_touched():
    before = Image.MAX_IMAGE_PIXELS
    decode_image(encode(Image.new("RGB", (64, 64)), "PNG"), max_pixels=100_000)
    assert before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_give_the_typed_error(fmt, tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(a), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match=f"cut.{fmt.lower()}: truncated or corrupt"):
        decode_image(path)


def test_header_only_jpeg_is_a_typed_error():
    data = encode(Image.new("RGB", (32, 32)), "JPEG")
    with pytest.raises(ImageDecodeError):
        decode_image(data[:300], name="short.jpg")


def test_non_image_with_an_image_extension(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n" * 10)
    with pytest.raises(ImageDecodeError, match=r"notes\.jpg: not an image in an allowed format"):
        decode_image(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match=r"empty\.png: empty file \(0 bytes\)"):
        decode_image(path)
    with pytest.raises(ImageDecodeError, match="empty file"):
        probe_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageDecodeError, match=r"nope\.png: file not found"):
        decode_image(tmp_path / "nope.png")
    with pytest.raises(ImageDecodeError, match="is a folder"):
        decode_image(tmp_path)


@pytest.mark.parametrize("fmt", ["TGA", "PCX", "ICO", "SGI"])
def test_formats_outside_the_allow_list_are_refused(fmt):
    data = encode(Image.new("RGB", (16, 16), (1, 2, 3)), fmt)
    with pytest.raises(ImageDecodeError, match="not an image in an allowed format"):
        decode_image(data, name=f"x.{fmt.lower()}")


@pytest.mark.parametrize("mode", ["L", "RGB", "1"])
def test_pgm_ppm_and_pbm_files_are_read(mode):
    """The ORL/AT&T faces ship as PGM: the netpbm family is a plain Pillow format."""
    img = decode_image(encode(Image.new(mode, (6, 4), "white"), "PPM"), name="s1/1.pgm")
    assert img.mode == "RGB" and img.size == (6, 4) and img.getpixel((0, 0)) == (255, 255, 255)
    assert {".pgm", ".ppm"} <= IMAGE_EXTENSIONS


def test_error_is_a_value_error_with_name_and_reason():
    with pytest.raises(ValueError) as info:
        decode_image(b"\x00\x01", name="upload")
    err = info.value
    assert isinstance(err, ImageDecodeError)
    assert err.name == "upload" and str(err).startswith("upload: ")


def test_sources_path_bytes_and_file_object(tmp_path):
    data = encode(Image.new("RGB", (5, 3), (9, 8, 7)), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    for source in (path, str(path), data, bytearray(data), io.BytesIO(data)):
        assert pixel(decode_image(source)) == (9, 8, 7)


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert pixel(decode_image(buf.getvalue())) == (255, 0, 0)


# Preprocessing.


def test_center_crop_matches_torchvision_placement():
    # Rows hold their index so the crop position can be read back: CelebA is 178 x 218.
    rows = np.repeat(np.arange(218, dtype=np.uint8)[:, None], 178, axis=1)
    img = Image.fromarray(rows)
    crop = np.asarray(center_crop(img, 178))
    assert crop.shape == (178, 178)
    assert crop[0, 0] == 20 and crop[-1, 0] == 197  # top = round((218 - 178) / 2)
    odd = center_crop(Image.fromarray(np.repeat(np.arange(7, dtype=np.uint8)[:, None], 3, 1)), 2)
    assert np.asarray(odd)[0, 0] == 2  # round(2.5) = 2, as torchvision


def test_crop_larger_than_the_image_names_the_file():
    with pytest.raises(
        ImageDecodeError,
        match=r"small\.png: image is 100 x 120, smaller than "
        r"the 178 x 178 centre crop",
    ):
        center_crop(Image.new("RGB", (100, 120)), 178, name="small.png")


def test_preprocess_and_to_tensor():
    img = Image.new("RGB", (178, 218), (255, 0, 128))
    array = preprocess(img, 128, 178)
    assert array.shape == (128, 128, 3) and array.dtype == np.uint8
    x = to_tensor(array)
    assert x.shape == (3, 128, 128) and x.dtype == torch.float32
    assert x[0].max() == 1.0 and x[1].min() == -1.0
    assert abs(x[2, 0, 0].item() - (128 / 127.5 - 1)) < 1e-6
    # No crop size: the largest centred square.
    assert preprocess(Image.new("RGB", (50, 80)), 16).shape == (16, 16, 3)


def test_load_image_end_to_end(tmp_path):
    path = tmp_path / "face.jpg"
    Image.new("RGB", (178, 218), (0, 0, 0)).save(path)
    x = load_image(path, 64, 178)
    assert x.shape == (3, 64, 64) and torch.allclose(x, torch.full_like(x, -1.0), atol=0.02)


# Writing.


def test_save_image_round_trips_a_tensor(tmp_path):
    x = torch.rand(3, 8, 6) * 2 - 1
    path = save_image(x, tmp_path / "sub" / "out.png")
    back = to_tensor(np.asarray(decode_image(path)))
    assert (back - x).abs().max() <= 1 / 127.5 + 1e-6
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]  # no temporary left


def test_save_image_accepts_arrays_pil_and_jpeg(tmp_path):
    a = np.full((4, 5, 3), 200, np.uint8)
    assert pixel(decode_image(save_image(a, tmp_path / "a.png"))) == (200, 200, 200)
    assert decode_image(save_image(Image.new("RGBA", (3, 3)), tmp_path / "b.jpg")).size == (3, 3)
    assert decode_image(save_image(np.zeros((3, 3), np.uint8), tmp_path / "c.jpeg")).size == (3, 3)


def test_save_image_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="writes .png, .jpg or .jpeg"):
        save_image(torch.zeros(3, 2, 2), tmp_path / "x.gif")
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        save_image(torch.zeros(2, 3, 2, 2), tmp_path / "x.png")
    with pytest.raises(ValueError, match="uint8"):
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_save_image_is_atomic_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    save_image(torch.zeros(3, 2, 2), target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_image(torch.ones(3, 2, 2), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["keep.png"]
