"""Mosaics: many faces at many scales in one training image, made from labelled photos.

Box convention: pixels ``[x1, y1, x2, y2]`` (float64; x2/y2 are right/bottom edges), the
annotation JSON's convention. Images are uint8 RGB [H, W, 3].

WIDER FACE, the upstream's training set, has faces from ~10 to ~400 px, many per image.
Labelled single-face photos (portraits, LFW) have one large central face. A mosaic puts a
k x k grid of such photos, each rescaled so that its main face gets a size drawn
log-uniformly from a range, onto a canvas that is either a labelled real scene (its faces
kept where they stay visible; real scenes bring the hard negatives: bodies, hands, clothes,
clutter) or a plain noisy colour.

Labels after composition are exact: every face box is transformed with the same scale and
offset as its pixels, then cut to the visible part of its tile.

* A face keeps its label if at least MIN_VISIBLE_FRACTION of its area stays visible; it is
  clipped to the visible rectangle.
* A face less visible than that, but still partly visible, becomes an ignore region (its
  visible part), as do the photo's own ignore regions.
* A canvas face covered by tiles is handled the same way with its uncovered fraction.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

MIN_VISIBLE_FRACTION = 0.6
# Tiles fill between these fractions of their grid cell (each side), so the grid is not
# regular and some canvas shows between tiles.
TILE_FILL_RANGE = (0.6, 1.0)
# Photos are never enlarged more than this (beyond it the face is mostly blur).
MAX_UPSCALE = 3.0


@dataclasses.dataclass
class LabelledImage:
    """An image with faces and ignore regions (pixels x1, y1, x2, y2, float64 [N, 4])."""

    image: np.ndarray
    faces: np.ndarray
    ignore: np.ndarray

    def __post_init__(self):
        self.faces = np.asarray(self.faces, np.float64).reshape(-1, 4)
        self.ignore = np.asarray(self.ignore, np.float64).reshape(-1, 4)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resizes uint8 [H, W, 3] to [height, width, 3] (area filter when shrinking)."""
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (int(width), int(height)),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def place_boxes(boxes: np.ndarray, scale, offset, visible) -> tuple[np.ndarray, np.ndarray]:
    """Maps source boxes into the canvas and splits them by visibility.

    Args:
        boxes: float [N, 4] pixels of the source image.
        scale: the source -> canvas scale factor, a float or (sx, sy).
        offset: (dx, dy), canvas position of the source's (0, 0) after scaling.
        visible: (x1, y1, x2, y2), the visible rectangle in canvas pixels.

    Returns:
        kept: float64 [K, 4], boxes with at least MIN_VISIBLE_FRACTION visible, clipped to
            `visible`.
        partial: float64 [L, 4], the visible parts of the other boxes that are partly visible.
    """
    scale = np.broadcast_to(np.asarray(scale, np.float64), (2,))
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) * np.tile(scale, 2) + np.tile(offset, 2)
    clipped = np.clip(boxes, np.tile(visible[:2], 2), np.tile(visible[2:], 2))
    area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0.0), axis=1)
    visible_area = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0.0), axis=1)
    fraction = np.where(area > 0, visible_area / np.maximum(area, 1e-12), 0.0)
    kept = fraction >= MIN_VISIBLE_FRACTION
    partial = ~kept & (visible_area > 0)
    return clipped[kept], clipped[partial]


def visible_fraction(boxes: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Fraction of each box's pixels that are not covered.

    Args:
        boxes: float [N, 4] canvas pixels x1, y1, x2, y2.
        covered: bool [H, W], True where a tile was pasted.

    Returns:
        float64 [N].
    """
    integral = cv2.integral(covered.astype(np.uint8))  # [H + 1, W + 1]
    height, width = covered.shape
    out = np.ones(len(boxes))
    for index, (x1, y1, x2, y2) in enumerate(np.asarray(boxes).reshape(-1, 4)):
        a, b = int(np.clip(np.floor(x1), 0, width)), int(np.clip(np.ceil(x2), 0, width))
        c, d = int(np.clip(np.floor(y1), 0, height)), int(np.clip(np.ceil(y2), 0, height))
        pixels = (b - a) * (d - c)
        if pixels > 0:
            hidden = integral[d, b] - integral[c, b] - integral[d, a] + integral[c, a]
            out[index] = 1.0 - hidden / pixels
    return out


def plain_canvas(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uint8 [size, size, 3] canvas: a random colour with Gaussian noise and a soft gradient."""
    colour = rng.uniform(0, 255, 3)
    gradient = np.linspace(-1, 1, size)[:, None, None] * rng.uniform(-40, 40, 3)
    noise = rng.normal(0, rng.uniform(2, 20), (size, size, 3))
    return np.clip(colour + gradient + noise, 0, 255).astype(np.uint8)


def scene_canvas(rng: np.random.Generator, scene: LabelledImage, size: int) -> LabelledImage:
    """A random square crop of a labelled scene, resized to size x size, boxes carried."""
    height, width = scene.image.shape[:2]
    side = int(min(height, width) * rng.uniform(0.7, 1.0))
    x0 = int(rng.integers(0, width - side + 1))
    y0 = int(rng.integers(0, height - side + 1))
    scale = size / side
    image = resize(scene.image[y0:y0 + side, x0:x0 + side], size, size)
    offset = (-x0 * scale, -y0 * scale)
    window = (0.0, 0.0, float(size), float(size))
    faces, partial = place_boxes(scene.faces, scale, offset, window)
    ignore, partial_ignore = place_boxes(scene.ignore, scale, offset, window)
    return LabelledImage(image, faces, np.concatenate([partial, ignore, partial_ignore]))


def make_tile(rng: np.random.Generator, photo: LabelledImage, face_size: float, cell: tuple
              ) -> tuple[np.ndarray, float, tuple, tuple] | None:
    """Rescales a photo so its largest face has `face_size` px and cuts a tile for a cell.

    Args:
        photo: a LabelledImage with at least one face.
        face_size: target sqrt(area) of the photo's largest face, in pixels.
        cell: (x1, y1, x2, y2) integer canvas pixels of the grid cell.

    Returns:
        (pixels uint8 [h, w, 3], scale (sx, sy), offset (dx, dy), visible (x1, y1, x2, y2))
        with canvas = source * scale + offset exactly for the pasted pixels, or None when
        the photo has no face.
    """
    if not len(photo.faces):
        return None
    sides = photo.faces[:, 2:] - photo.faces[:, :2]
    main = int(np.argmax(sides[:, 0] * sides[:, 1]))
    scale = min(face_size / np.sqrt(max(sides[main, 0] * sides[main, 1], 1.0)), MAX_UPSCALE)
    height, width = photo.image.shape[:2]
    scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
    cell_w, cell_h = cell[2] - cell[0], cell[3] - cell[1]
    tile_w = min(scaled_w, max(1, round(cell_w * rng.uniform(*TILE_FILL_RANGE))))
    tile_h = min(scaled_h, max(1, round(cell_h * rng.uniform(*TILE_FILL_RANGE))))
    # The tile window inside the scaled photo: keep the main face inside when it fits.
    face = photo.faces[main] * scale
    lo_x = max(0, min(int(face[2]) - tile_w, scaled_w - tile_w))
    hi_x = max(lo_x, min(int(face[0]), scaled_w - tile_w))
    lo_y = max(0, min(int(face[3]) - tile_h, scaled_h - tile_h))
    hi_y = max(lo_y, min(int(face[1]), scaled_h - tile_h))
    src_x, src_y = int(rng.integers(lo_x, hi_x + 1)), int(rng.integers(lo_y, hi_y + 1))
    # Where the tile goes inside the cell.
    dst_x = cell[0] + int(rng.integers(0, cell_w - tile_w + 1))
    dst_y = cell[1] + int(rng.integers(0, cell_h - tile_h + 1))
    # Only the part of the photo that is needed is resized.
    x0, y0 = int(src_x / scale), int(src_y / scale)
    x1 = min(width, int(np.ceil((src_x + tile_w) / scale)) + 1)
    y1 = min(height, int(np.ceil((src_y + tile_h) / scale)) + 1)
    part_w, part_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    part = resize(photo.image[y0:y1, x0:x1], part_w, part_h)
    # The exact per-axis scale of this resize (cv2 maps pixel edges linearly).
    scale_x, scale_y = part_w / (x1 - x0), part_h / (y1 - y0)
    shift_x = min(max(0, src_x - round(x0 * scale)), part_w - 1)
    shift_y = min(max(0, src_y - round(y0 * scale)), part_h - 1)
    pixels = part[shift_y:shift_y + tile_h, shift_x:shift_x + tile_w]
    tile_h, tile_w = pixels.shape[:2]
    # Part pixel u is source x0 + u / scale_x; it lands at canvas dst_x + u - shift_x.
    offset = (dst_x - shift_x - x0 * scale_x, dst_y - shift_y - y0 * scale_y)
    visible = (dst_x, dst_y, dst_x + tile_w, dst_y + tile_h)
    return pixels, (scale_x, scale_y), offset, visible


def compose_mosaic(rng: np.random.Generator, photos, size: int, grid: int, face_size_range,
                   canvas: LabelledImage | None = None, empty_cell_probability: float = 0.15
                   ) -> LabelledImage:
    """Builds one mosaic.

    Args:
        rng: a numpy Generator.
        photos: a function ``rng -> LabelledImage`` giving a random labelled photo.
        size: the mosaic's side in pixels.
        grid: k, the mosaic has k x k cells.
        face_size_range: (min, max) face size in pixels (sqrt of area), drawn log-uniformly
            and capped at the cell size.
        canvas: a LabelledImage of size x size (e.g. from `scene_canvas`), or None for a
            plain canvas.
        empty_cell_probability: chance that a cell stays empty (shows the canvas).

    Returns:
        a LabelledImage of shape [size, size, 3].
    """
    if canvas is None:
        canvas = LabelledImage(plain_canvas(rng, size), np.zeros((0, 4)), np.zeros((0, 4)))
    image = canvas.image.copy()
    covered = np.zeros((size, size), bool)
    faces, ignore = [], []
    edges = np.linspace(0, size, grid + 1).astype(int)
    for row in range(grid):
        for column in range(grid):
            if rng.uniform() < empty_cell_probability:
                continue
            cell = (edges[column], edges[row], edges[column + 1], edges[row + 1])
            cell_side = min(cell[2] - cell[0], cell[3] - cell[1])
            low, high = face_size_range[0], min(face_size_range[1], 0.8 * cell_side)
            if high < low:
                continue
            face_size = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            photo = photos(rng)
            tile = make_tile(rng, photo, face_size, cell)
            if tile is None:
                continue
            pixels, scale, offset, visible = tile
            x1, y1, x2, y2 = visible
            image[y1:y2, x1:x2] = pixels
            covered[y1:y2, x1:x2] = True
            kept, partial = place_boxes(photo.faces, scale, offset, visible)
            kept_ignore, partial_ignore = place_boxes(photo.ignore, scale, offset, visible)
            faces.append(kept)
            ignore += [partial, kept_ignore, partial_ignore]
    # Canvas labels, by how much of them the tiles left visible.
    fraction = visible_fraction(canvas.faces, covered)
    faces.insert(0, canvas.faces[fraction >= MIN_VISIBLE_FRACTION])
    partly = (fraction < MIN_VISIBLE_FRACTION) & (fraction > 0)
    ignore.insert(0, canvas.faces[partly])
    ignore.insert(0, canvas.ignore[visible_fraction(canvas.ignore, covered) > 0])
    return LabelledImage(image, np.concatenate(faces), np.concatenate(ignore))


# Glyphs for text negatives: letters such as O, S, e and G scored as faces on real photos.
TEXT_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789&@%"
TEXT_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
              cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_PLAIN)
# Glyph heights of text negatives in pixels (log-uniform), the face sizes that matter.
TEXT_HEIGHT_RANGE = (12.0, 200.0)


def keep_clear_mask(boxes: np.ndarray, height: int, width: int, margin: int) -> np.ndarray:
    """bool [height, width]: True inside every box (float [N, 4] pixels x1, y1, x2, y2, edges
    rounded outwards) grown by `margin` px: where hard negatives must not go."""
    mask = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        mask[max(0, int(np.floor(y1)) - margin):max(0, int(np.ceil(y2)) + margin),
             max(0, int(np.floor(x1)) - margin):max(0, int(np.ceil(x2)) + margin)] = True
    return mask


def draw_text_negatives(rng: np.random.Generator, image: np.ndarray, keep_clear: np.ndarray,
                        count: int, margin: int = 4, attempts: int = 20) -> int:
    """Draws up to `count` random strings on `image` in place, away from every box.

    Hard negatives: on real photos the detector's false positives include letters and logos.
    Each string (1-6 characters, a random Hershey font, colour and thickness) is first drawn on
    a mask; it is kept only if none of its pixels falls inside a box of `keep_clear` grown by
    `margin` px, so no face or ignore region is painted over and the labels stay exact.

    Args:
        rng: a numpy Generator.
        image: uint8 [H, W, 3], changed in place.
        keep_clear: float [N, 4] pixel boxes x1, y1, x2, y2 (faces and ignore regions).
        count: how many strings to try to place.
        margin: px kept free around each box.
        attempts: random positions tried per string before giving it up.

    Returns:
        the number of strings drawn.
    """
    height, width = image.shape[:2]
    forbidden = keep_clear_mask(keep_clear, height, width, margin)
    mask = np.zeros((height, width), np.uint8)
    drawn = 0
    for _ in range(count):
        text = "".join(rng.choice(list(TEXT_CHARACTERS), size=int(rng.integers(1, 7))))
        font = TEXT_FONTS[int(rng.integers(len(TEXT_FONTS)))]
        glyph = float(np.exp(rng.uniform(*np.log(TEXT_HEIGHT_RANGE))))
        scale = glyph / cv2.getTextSize("H", font, 1.0, 1)[0][1]
        thickness = max(1, int(round(glyph * rng.uniform(0.04, 0.15))))
        (text_w, text_h), baseline = cv2.getTextSize(text, font, scale, thickness)
        if text_w >= width or text_h + baseline >= height:
            continue
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        for _ in range(attempts):
            origin = (int(rng.integers(0, width - text_w)), int(rng.integers(text_h, height - baseline)))
            mask[:] = 0
            cv2.putText(mask, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
            if not forbidden[mask > 0].any():
                cv2.putText(image, text, origin, font, scale, colour, thickness, cv2.LINE_AA)
                drawn += 1
                break
    return drawn


# Sizes (px, sqrt of area) of the detector box inside a pasted negative crop, log-uniform: the
# face sizes that matter.
NEGATIVE_SIZE_RANGE = (16.0, 200.0)


def paste_negatives(rng: np.random.Generator, image: np.ndarray, keep_clear: np.ndarray,
                    crops, count: int, margin: int = 4, attempts: int = 20) -> int:
    """Pastes up to `count` hard-negative crops on `image` in place, away from every box.

    Hard negatives: crops of photos where a detector fired but no face is (hands, ears,
    logos; ``prepare_data/mine_negatives.py``). Each crop is rescaled so that the detector's
    box inside it gets a size drawn from NEGATIVE_SIZE_RANGE (never larger than the image
    allows), mirrored at random, and pasted as a rectangle that stays `margin` px clear of
    every box of `keep_clear`, so no face or ignore region is covered and the labels stay
    exact.

    Args:
        rng: a numpy Generator.
        image: uint8 [H, W, 3], changed in place.
        keep_clear: float [N, 4] pixel boxes x1, y1, x2, y2 (faces and ignore regions).
        crops: a sequence of (uint8 [h, w, 3] crop, float [4] box x1, y1, x2, y2 in its pixels).
        count: how many crops to try to paste.
        margin: px kept free around each box.
        attempts: random positions tried per crop before giving it up.

    Returns:
        the number of crops pasted.
    """
    height, width = image.shape[:2]
    forbidden = np.zeros((height + 1, width + 1), np.int64)  # summed-area table of the boxes
    forbidden[1:, 1:] = keep_clear_mask(keep_clear, height, width, margin).cumsum(0).cumsum(1)
    pasted = 0
    for _ in range(count):
        crop, box = crops[int(rng.integers(len(crops)))]
        box_size = float(np.sqrt(max(1.0, (box[2] - box[0]) * (box[3] - box[1]))))
        target = float(np.exp(rng.uniform(*np.log(NEGATIVE_SIZE_RANGE))))
        scale = min(target / box_size, 0.9 * width / crop.shape[1], 0.9 * height / crop.shape[0])
        crop_w, crop_h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
        pixels = resize(crop, crop_w, crop_h)
        if rng.uniform() < 0.5:
            pixels = pixels[:, ::-1]
        for _ in range(attempts):
            x, y = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
            inside = (forbidden[y + crop_h, x + crop_w] - forbidden[y, x + crop_w]
                      - forbidden[y + crop_h, x] + forbidden[y, x])
            if inside == 0:
                image[y:y + crop_h, x:x + crop_w] = pixels
                pasted += 1
                break
    return pasted
