"""Shared helpers of the pictures: box conversions, image reading, PNG output, drawing, tiling.

Box conventions: anchors and input-pipeline boxes are ``[ymin, xmin, ymax, xmax]`` normalized
to [0, 1]; detectors return ``[ymin, xmin, ymax, xmax]`` in pixels. Drawing happens in pixel
``[x1, y1, x2, y2]`` (edges); `normalized_to_pixel_xyxy` and `pixel_yxyx_to_xyxy` are the
package's only conversions. Images are uint8 RGB [H, W, 3].
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from src.atomic_io import write_bytes_atomic
from src.box_formats import yxyx_to_xyxy
from src.datasets.image_io import decode_image

BOX_COLOUR = (0, 255, 0)
# White gap between grid tiles, pixels.
TILE_GAP = 4
# Photos are stored as palette PNGs with this many colours by default: ~4x smaller, same look.
DEFAULT_PNG_COLOURS = 256


# ----------------------------------------------------------------------------- conversions


def normalized_to_pixel_xyxy(boxes, height, width):
    """Normalized [ymin, xmin, ymax, xmax] -> pixel [x1, y1, x2, y2].

    Args:
        boxes: float array [..., 4], normalized ymin, xmin, ymax, xmax.
        height, width: image size in pixels.

    Returns:
        float64 array [..., 4], pixels x1, y1, x2, y2.
    """
    return yxyx_to_xyxy(boxes) * np.array([width, height, width, height], dtype=np.float64)


def pixel_yxyx_to_xyxy(boxes):
    """Pixel [ymin, xmin, ymax, xmax] (FaceDetector) -> pixel [x1, y1, x2, y2]; float64 [..., 4]."""
    return yxyx_to_xyxy(boxes)


# ----------------------------------------------------------------------------- reading


def read_rgb(path):
    """Reads an image file as uint8 [H, W, 3] RGB; ValueError naming the file if it is unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror})") from None
    return np.asarray(decode_image(data, path).convert("RGB"))


# ----------------------------------------------------------------------------- PNG output


def encode_png(image, colours=DEFAULT_PNG_COLOURS):
    """Encodes an RGB image as PNG bytes.

    Args:
        image: uint8 [H, W, 3] RGB.
        colours: 0 for a full-colour PNG, else 2..256: an adaptive palette of that many
            colours (much smaller files for photos).

    Returns:
        bytes of the PNG file.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png needs uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if colours and not 2 <= colours <= 256:
        raise ValueError(f"colours must be 0 or in 2..256, got {colours}")
    picture = Image.fromarray(image)
    if colours:
        picture = picture.quantize(colors=int(colours), method=Image.Quantize.MEDIANCUT,
                                   dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_png(path, image, colours=DEFAULT_PNG_COLOURS):
    """Writes an RGB image as a PNG atomically (temporary name in the same folder, then rename)."""
    write_bytes_atomic(path, encode_png(image, colours))


def figure_to_rgb(figure):
    """Renders a matplotlib Figure (Agg) to uint8 [H, W, 3] RGB, H x W = size in inches x dpi."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3])


# ----------------------------------------------------------------------------- drawing helpers


def draw_boxes(image, boxes_xyxy, labels=None, colour=BOX_COLOUR, thickness=2):
    """Draws pixel boxes (and optional text labels above them) on a copy of an image.

    Args:
        image: uint8 [H, W, 3] RGB.
        boxes_xyxy: float [N, 4], pixels x1, y1, x2, y2 (edges).
        labels: optional list of N strings.
        colour: RGB tuple.
        thickness: line width in pixels.

    Returns:
        uint8 [H, W, 3] RGB, the input with the boxes drawn.
    """
    out = np.ascontiguousarray(image).copy()
    boxes_xyxy = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    for k, (x1, y1, x2, y2) in enumerate(boxes_xyxy):
        # cv2 draws between pixel indices; the right/bottom edge x2 is the pixel x2 - 1.
        p1 = (int(round(x1)), int(round(y1)))
        p2 = (int(round(x2)) - 1, int(round(y2)) - 1)
        cv2.rectangle(out, p1, p2, colour, thickness)
        if labels is not None:
            text = labels[k]
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            ty = max(th + 2, p1[1] - 3)
            cv2.rectangle(out, (p1[0], ty - th - 2), (p1[0] + tw + 2, ty + base - 1), colour, -1)
            cv2.putText(out, text, (p1[0] + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                        cv2.LINE_AA)
    return out


def tile_grid(tiles, cols, gap=TILE_GAP, background=255):
    """Arranges equally sized images in a grid, row by row.

    Args:
        tiles: list of uint8 [h, w, 3] images, all the same size.
        cols: images per row.
        gap: pixels between tiles and around the grid.
        background: grey level of the gaps and of empty cells.

    Returns:
        uint8 [rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3], rows = ceil(len / cols).
    """
    if not tiles:
        raise ValueError("tile_grid needs at least one tile")
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    grid = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), background, np.uint8)
    for k, tile in enumerate(tiles):
        if tile.shape[:2] != (h, w):
            raise ValueError(f"tile {k} has size {tile.shape[:2]}, expected {(h, w)}")
        r, c = divmod(k, cols)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        grid[top:top + h, left:left + w] = tile
    return grid


def fit_in_box(image, box_height, box_width, background=255):
    """Scales an image to fit a box_height x box_width box (aspect kept, centred, padded).

    Args:
        image: uint8 [H, W, 3].
        box_height, box_width: the box size in pixels.

    Returns:
        (boxed uint8 [box_height, box_width, 3], scale, (left, top)): a pixel (x, y) of the input
        is at (x * scale + left, y * scale + top) in the box.
    """
    height, width = image.shape[:2]
    scale = min(box_height / height, box_width / width)
    new_w = min(box_width, max(1, int(round(width * scale))))
    new_h = min(box_height, max(1, int(round(height * scale))))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    boxed = np.full((box_height, box_width, 3), background, np.uint8)
    left, top = (box_width - new_w) // 2, (box_height - new_h) // 2
    boxed[top:top + new_h, left:left + new_w] = resized
    return boxed, new_w / width, (left, top)


def tile_height_for(images, tile_width):
    """Tile height that fits the tallest image (by aspect ratio) at `tile_width`, within 1/4..2 of it."""
    ratio = max(image.shape[0] / image.shape[1] for image in images)
    return int(round(tile_width * min(2.0, max(0.25, ratio))))
