"""Small image and file helpers shared by the dataset tools.

No boxes here. Images are numpy uint8 arrays [H, W, 3] in RGB order (or [H, W] grayscale
where a docstring says so). Decoding uses Pillow, which refuses truncated files instead of
returning a partly grey picture (OpenCV only warns).
"""
from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
from PIL import Image

# JPEG files start with the SOI marker followed by the first marker's 0xFF.
JPEG_MAGIC = b"\xff\xd8\xff"
# Quality used whenever a tool has to (re-)encode a JPEG: high enough that the detector
# does not learn compression artefacts, small enough for tfrecords of WIDER's size.
DEFAULT_JPEG_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class CheckedJpeg:
    """An image's bytes ready for a JPEG-only consumer.

    Attributes:
        data: bytes of an RGB (3-channel) baseline or progressive JPEG.
        width: image width in pixels.
        height: image height in pixels.
        reencoded: True if `data` was re-encoded from the input (another format, or a
            JPEG that was not 3-channel RGB); False if the input bytes are passed through.
        source_format: Pillow's name of the input format, e.g. 'JPEG', 'PNG'.
    """

    data: bytes
    width: int
    height: int
    reencoded: bool
    source_format: str


def is_unsafe_filename(filename: str) -> bool:
    """True if a listed image path would leave its image folder: absolute, or with a '..' part.

    Used by the tools that join a name read from a data file (an annotation JSON's
    'filename', a WIDER gt line) to an image folder, so a crafted file cannot make them read
    (or copy into a dataset) files elsewhere.
    """
    if os.path.isabs(filename) or filename.startswith(("/", "\\")) or os.path.splitdrive(filename)[0]:
        return True
    return any(part == ".." for part in filename.replace("\\", "/").split("/"))


def is_jpeg(data: bytes) -> bool:
    """True if `data` starts with the JPEG start-of-image marker."""
    return data[:3] == JPEG_MAGIC


def encode_jpeg(image: np.ndarray, quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """Encodes an image as JPEG.

    Args:
        image: uint8 array [H, W, 3] RGB, or [H, W] grayscale (encoded as 1-channel).
        quality: JPEG quality 1..100.

    Returns:
        The JPEG file bytes.

    Raises:
        ValueError: on a dtype other than uint8 or a shape other than [H, W] / [H, W, 3].
    """
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"encode_jpeg needs uint8 [H, W] or [H, W, 3], got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_image(data: bytes, source: str) -> Image.Image:
    """Fully decodes image bytes with Pillow (any format it reads).

    Args:
        data: the file bytes.
        source: a name for error messages (usually the file path).

    Returns:
        The loaded `PIL.Image.Image`.

    Raises:
        ValueError: ``"<source>: cannot decode image (<reason>)"`` if the bytes are not a
            complete image (unknown format, truncated, corrupt).
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, ... here.
        raise ValueError(f"{source}: cannot decode image ({type(error).__name__}: {error})") from None
    if image.width <= 0 or image.height <= 0:
        raise ValueError(f"{source}: image has zero size {image.width}x{image.height}")
    return image


def as_rgb_jpeg(data: bytes, source: str, quality: int = DEFAULT_JPEG_QUALITY) -> CheckedJpeg:
    """Checks that image bytes decode and returns them as an RGB JPEG.

    A 3-channel RGB JPEG that decodes completely is passed through byte for byte; any other
    decodable image (PNG, BMP, grayscale or CMYK JPEG, palette, alpha...) is converted to
    RGB (alpha dropped) and re-encoded.

    Args:
        data: the file bytes.
        source: a name for error messages.
        quality: JPEG quality used when re-encoding.

    Returns:
        A `CheckedJpeg`.

    Raises:
        ValueError: if the bytes do not decode (see `decode_image`).
    """
    image = decode_image(data, source)
    source_format = image.format or "unknown"
    if is_jpeg(data) and source_format == "JPEG" and image.mode == "RGB":
        return CheckedJpeg(data, image.width, image.height, False, source_format)
    rgb = np.asarray(image.convert("RGB"))
    return CheckedJpeg(encode_jpeg(rgb, quality), image.width, image.height, True, source_format)


def read_checked_jpeg(path: str, counts, logger) -> CheckedJpeg | None:
    """Reads an image file through `as_rgb_jpeg`, or skips it with a warning and a count.

    The dataset converters' shared step: an unreadable file adds 1 to ``counts["missing"]``,
    one that does not decode adds 1 to ``counts["corrupt"]``; either is logged on `logger`.

    Args:
        path: the image file.
        counts: a dict-like counter (e.g. collections.Counter) with the keys above.
        logger: the caller's logging.Logger.

    Returns:
        A `CheckedJpeg`, or None when the image was skipped.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        logger.warning("%s: skipped, cannot read image (%s)", path, error.strerror or error)
        counts["missing"] += 1
        return None
    try:
        return as_rgb_jpeg(data, path)
    except ValueError as error:
        logger.warning("skipped: %s", error)
        counts["corrupt"] += 1
        return None
