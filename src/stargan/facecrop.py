"""Automatic face crop for real photos, framed like CelebA's aligned crops.

StarGAN models trained on CelebA see the centre 178 x 178 square of the aligned 178 x 218
images: the face fills about half the width, eyes a little above the middle, with hair and
some shoulders. A holiday photo framed any other way translates badly. :func:`crop_face`
finds the one face with OpenCV's frontal-face Haar cascade (its model file ships inside the
``opencv-python-headless`` wheel, so nothing is downloaded) and cuts a square around it with
that framing, padding with the edge pixels where the square leaves the photo.

The cascade needs OpenCV 4 (OpenCV 5 removed it): ``pip install 'stargan[face]'``.

Example:
    >>> from stargan.data.io import decode_image
    >>> face = crop_face(decode_image("holiday.jpg"), name="holiday.jpg")   # doctest: +SKIP
    >>> face.size[0] == face.size[1]                                        # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from stargan.extras import MissingExtraError, require

CASCADE_FILE = "haarcascade_frontalface_default.xml"
"""The cascade used, from ``cv2.data.haarcascades`` (shipped in the OpenCV wheel)."""

BOX_SCALE = 2.0
"""Crop side / detected box width. CelebA's 178 px crop holds a face box about 88 px wide."""
BOX_SHIFT = 0.15
"""Crop centre sits this many box heights above the box centre (room for hair, as CelebA)."""
MIN_FACE_FRACTION = 0.05
"""Faces narrower than this share of the photo's shorter side are not looked for."""
MIN_RELATIVE_SIZE = 0.5
"""Detections narrower than this share of the largest one are ignored (bystanders, noise)."""
DETECT_MAX_SIDE = 1024
"""Photos are shrunk to at most this side for detection (speed); the crop uses full pixels."""


class FaceCropError(ValueError):
    """No face, or more than one, in an image: the message names the file and what to do."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face in photo pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


@functools.lru_cache(maxsize=1)
def _cascade() -> Any:
    cv2 = require("cv2", extra="face", purpose="face crop (--face-crop)")
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise MissingExtraError(
            f"face crop needs OpenCV's Haar cascades, which OpenCV {cv2.__version__} does not "
            f"have (OpenCV 5 removed them); install: pip install 'opencv-python-headless<5'"
        )
    path = cv2.data.haarcascades + CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise MissingExtraError(f"cannot load the face detector model {path}; reinstall OpenCV")
    return cascade


def detect_faces(img: Image.Image) -> list[FaceBox]:
    """Frontal faces in ``img`` (RGB), largest first, small stray detections dropped.

    Example:
        >>> detect_faces(Image.new("RGB", (64, 64)))                     # doctest: +SKIP
        []
    """
    cascade = _cascade()
    grey = img.convert("L")
    factor = min(1.0, DETECT_MAX_SIDE / max(grey.size))
    if factor < 1.0:
        grey = grey.resize((round(grey.width * factor), round(grey.height * factor)))
    min_side = max(20, round(MIN_FACE_FRACTION * min(grey.size)))
    found = cascade.detectMultiScale(
        np.asarray(grey), scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    boxes = [FaceBox(*(round(int(v) / factor) for v in b)) for b in found]
    boxes.sort(key=lambda b: b.w * b.h, reverse=True)
    return [b for b in boxes if b.w >= MIN_RELATIVE_SIZE * boxes[0].w]


def crop_box(face: FaceBox) -> tuple[int, int, int, int]:
    """The CelebA-like square (left, top, right, bottom) around ``face``; may leave the photo.

    Example:
        >>> crop_box(FaceBox(100, 100, 80, 80))
        (60, 48, 220, 208)
    """
    side = round(BOX_SCALE * face.w)
    cx = face.x + face.w / 2
    cy = face.y + face.h / 2 - BOX_SHIFT * face.h
    left, top = round(cx - side / 2), round(cy - side / 2)
    return left, top, left + side, top + side


def crop_face(
    img: Image.Image, *, name: str = "<image>", option: str = "--face-crop", off: str = ""
) -> Image.Image:
    """The one face of ``img`` in a square, CelebA-like frame (edge pixels pad the outside).
    ``option`` names the crop in the caller's interface and ``off`` how to turn it off (default
    "leave out OPTION"), for the errors: the web page has a checkbox, not a flag.

    Raises:
        FaceCropError: no face, or several faces of similar size, naming ``name``.
        MissingExtraError: OpenCV (4.x) is not installed.
    """
    faces = detect_faces(img)
    if not faces:
        raise FaceCropError(
            f"{name}: no face found for {option} (the detector wants a frontal face at "
            f"least {MIN_FACE_FRACTION:.0%} of the photo's shorter side); crop the photo "
            f"by hand or {off or f'leave out {option}'}"
        )
    if len(faces) > 1:
        where = ", ".join(f"{b.w} px at ({b.x}, {b.y})" for b in faces)
        raise FaceCropError(
            f"{name}: {len(faces)} faces found ({where}); {option} needs exactly one, so "
            f"crop the photo to one person first"
        )
    left, top, right, bottom = crop_box(faces[0])
    pixels = np.asarray(img.convert("RGB"))
    pad = max(0, -left, -top, right - img.width, bottom - img.height)
    if pad:
        pixels = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    square = pixels[top + pad : bottom + pad, left + pad : right + pad]
    return Image.fromarray(np.ascontiguousarray(square))
