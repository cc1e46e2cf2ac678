"""Real face photos shipped in pip packages, and composites made from them.

Box convention: pixels ``[x1, y1, x2, y2]`` (float64; x2/y2 are the right/bottom EDGES, so
a box's width is ``x2 - x1``), the convention of the WIDER/FDDB tools and the tracker.

Face sources (public-domain photos; face boxes forehead to chin, checked by eye):

=================  =======================================  ======================
name               photo                                    face box (x1,y1,x2,y2)
=================  =======================================  ======================
astronaut          ``skimage.data.astronaut()`` 512x512     (172, 58, 272, 178)
camera             ``skimage.data.camera()`` 512x512, gray,  (178, 92, 262, 192)
                   profile
grace_hopper       matplotlib ``grace_hopper.jpg`` 512x600  (165, 140, 358, 338)
=================  =======================================  ======================

Cut-out rule: the crop is the face box grown by ``CROP_MARGIN`` (45%) of the box width on
the left and right and of the box height on the top and bottom, clipped to the photo (no
clipping happens for these three). When pasted, the crop is blended through a soft
elliptical mask centred on the face box: fully opaque inside the ellipse of normalized
radius ``MASK_OPAQUE_RADIUS`` (1.5, which contains the whole face box since its corners are
at sqrt(2)), fading linearly to transparent at ``MASK_CLEAR_RADIUS`` (1.9), where radius 1 is
the ellipse inscribed in the face box. So the detector sees a head on a background, not a
pasted rectangle, and the ground truth is exactly the pasted face box.

`make_composite` is the reusable entry point (the sample dataset, a synthetic video
generator or the tracker demo can all use it).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import cv2
import numpy as np

CROP_MARGIN = 0.45
MASK_OPAQUE_RADIUS = 1.5
MASK_CLEAR_RADIUS = 1.9
# A new face may cover at most this fraction of an already pasted face box (its soft
# mask's extent counts as cover), so every ground-truth face stays visible.
MAX_COVERED_FRACTION = 0.1
PLACEMENT_ATTEMPTS = 40


def _astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()


def _camera() -> np.ndarray:
    from skimage import data
    return data.camera()


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        encoded = np.frombuffer(f.read(), dtype=np.uint8)
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@dataclasses.dataclass(frozen=True)
class FaceSourceDefinition:
    """Where a face comes from: a photo loader and the face box in that photo (pixels x1, y1, x2, y2)."""

    name: str
    load_photo: Callable[[], np.ndarray]
    box: tuple[int, int, int, int]


FACE_SOURCE_DEFINITIONS = (
    FaceSourceDefinition("astronaut", _astronaut, (172, 58, 272, 178)),
    FaceSourceDefinition("camera", _camera, (178, 92, 262, 192)),
    FaceSourceDefinition("grace_hopper", _grace_hopper, (165, 140, 358, 338)),
)

# Non-face photos used as backgrounds (skimage.data loaders that need no download).
BACKGROUND_PHOTO_NAMES = (
    "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "coins", "moon", "text",
    "page", "hubble_deep_field", "immunohistochemistry", "clock", "colorwheel",
)


class FaceSource(NamedTuple):
    """A face cut-out.

    Attributes:
        crop: uint8 [h, w, 3] RGB crop around the face (grayscale photos are repeated to 3 channels).
        box: float64 [4], the face box inside the crop, pixels x1, y1, x2, y2.
    """

    crop: np.ndarray
    box: np.ndarray


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """Returns uint8 [H, W, 3] RGB from a uint8/bool/float gray, RGB or RGBA image."""
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        image = np.clip(np.asarray(image, dtype=np.float64) * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def cut_face(photo: np.ndarray, box, margin: float = CROP_MARGIN) -> FaceSource:
    """Cuts a face with its margin out of a photo.

    Args:
        photo: uint8 [H, W] or [H, W, 3] image.
        box: the face box in the photo, pixels x1, y1, x2, y2 (integers).
        margin: fraction of the box width (height) added on the left and right (top and bottom).

    Returns:
        A `FaceSource` with the crop (clipped to the photo) and the box inside it.
    """
    photo = _to_rgb(photo)
    x1, y1, x2, y2 = (int(v) for v in box)
    dx = int(round(margin * (x2 - x1)))
    dy = int(round(margin * (y2 - y1)))
    cx1, cy1 = max(0, x1 - dx), max(0, y1 - dy)
    cx2, cy2 = min(photo.shape[1], x2 + dx), min(photo.shape[0], y2 + dy)
    crop = np.ascontiguousarray(photo[cy1:cy2, cx1:cx2])
    return FaceSource(crop, np.array([x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1], dtype=np.float64))


def load_face_sources() -> list[FaceSource]:
    """Loads the three package photos and cuts their faces (see the module docstring).

    Returns:
        list of `FaceSource` (crop uint8 [h, w, 3] RGB, box float64 [4] x1, y1, x2, y2 in the
        crop), in the order of `FACE_SOURCE_DEFINITIONS`.
    """
    return [cut_face(d.load_photo(), d.box) for d in FACE_SOURCE_DEFINITIONS]


def load_background_photos() -> list[np.ndarray]:
    """Loads the non-face background photos of `BACKGROUND_PHOTO_NAMES`.

    Returns:
        list of uint8 [H, W, 3] RGB arrays.
    """
    from skimage import data
    return [_to_rgb(getattr(data, name)()) for name in BACKGROUND_PHOTO_NAMES]


def face_alpha(crop_shape, box) -> np.ndarray:
    """The soft elliptical blending mask of a face crop.

    Args:
        crop_shape: (h, w[, c]) of the crop.
        box: the face box in the crop, pixels x1, y1, x2, y2.

    Returns:
        float32 [h, w] in [0, 1]: 1 inside normalized radius `MASK_OPAQUE_RADIUS`, 0 beyond
        `MASK_CLEAR_RADIUS`, linear in between.
    """
    h, w = crop_shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    ys = (np.arange(h, dtype=np.float64) + 0.5 - (y1 + y2) / 2) / ((y2 - y1) / 2)
    xs = (np.arange(w, dtype=np.float64) + 0.5 - (x1 + x2) / 2) / ((x2 - x1) / 2)
    radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)  # [h, w]
    ramp = (MASK_CLEAR_RADIUS - radius) / (MASK_CLEAR_RADIUS - MASK_OPAQUE_RADIUS)
    return np.clip(ramp, 0.0, 1.0).astype(np.float32)


def random_background(rng: np.random.Generator, height: int, width: int,
                      photos: list[np.ndarray]) -> np.ndarray:
    """Draws a face-free background: a photo crop or a procedural texture.

    Args:
        rng: the random generator (the only source of randomness).
        height, width: output size in pixels.
        photos: uint8 [H, W, 3] background photos (may be empty: textures only).

    Returns:
        uint8 [height, width, 3] RGB.
    """
    kind = rng.choice(["photo", "gradient", "blobs", "stripes"], p=[0.6, 0.15, 0.15, 0.1] if photos else
                      [0.0, 0.4, 0.4, 0.2])
    if kind == "photo":
        photo = photos[rng.integers(len(photos))]
        scale = max(height / photo.shape[0], width / photo.shape[1]) * rng.uniform(1.0, 1.6)
        size = (max(width, int(np.ceil(photo.shape[1] * scale))), max(height, int(np.ceil(photo.shape[0] * scale))))
        resized = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        top = rng.integers(resized.shape[0] - height + 1)
        left = rng.integers(resized.shape[1] - width + 1)
        image = resized[top:top + height, left:left + width].astype(np.float32)
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image = image * rng.uniform(0.75, 1.25, size=3).astype(np.float32)
    elif kind == "gradient":
        start, end = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        t = xs * np.cos(angle) / width + ys * np.sin(angle) / height
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        image = start[None, None, :] * (1 - t[:, :, None]) + end[None, None, :] * t[:, :, None]
    elif kind == "blobs":
        cells = int(rng.integers(2, 24))
        grid = rng.uniform(0, 255, size=(cells, max(2, cells * width // height), 3)).astype(np.float32)
        image = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        period = rng.uniform(6, 60)
        angle = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period)
        first, second = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        image = first[None, None, :] * wave[:, :, None] + second[None, None, :] * (1 - wave[:, :, None])
    # Uniform sensor noise (standard deviation up to ~6 levels): 3x cheaper to draw than Gaussian.
    noise = (rng.random((height, width, 3), dtype=np.float32) - np.float32(0.5)) * np.float32(rng.uniform(0, 20))
    image = np.asarray(image, dtype=np.float32) + noise
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class PastedFace:
    """What `make_composite` did for one face.

    Attributes:
        box: float64 [4], the pasted face box in the image, pixels x1, y1, x2, y2 (integer values).
        source_index: index into the face sources.
        blur_sigma: Gaussian blur sigma applied to the face (0 for none), pixels.
        flipped: whether the face was mirrored horizontally.
    """

    box: np.ndarray
    source_index: int
    blur_sigma: float
    flipped: bool


def paste_face(canvas: np.ndarray, source: FaceSource, box, *, flip: bool = False,
               gains=(1.0, 1.0, 1.0), blur_sigma: float = 0.0) -> None:
    """Blends a face into `canvas` (in place) so that its face box lands exactly on `box`.

    The crop is mirrored if asked, pre-shrunk with area interpolation when it shrinks by more
    than 2x (to avoid aliasing), then placed with one affine warp whose scale maps the
    source face box onto `box` edge to edge; the soft mask of `face_alpha` follows the
    same warp.

    Args:
        canvas: float32 [H, W, 3] RGB image, values 0..255, modified in place.
        source: the `FaceSource`.
        box: the target face box, pixels x1, y1, x2, y2 with x2 > x1, y2 > y1.
        flip: mirror the face horizontally.
        gains: per-channel multipliers (R, G, B) applied to the face (colour/brightness change).
        blur_sigma: Gaussian blur sigma in output pixels (0: none).
    """
    crop = source.crop.astype(np.float32)
    sx1, sy1, sx2, sy2 = (float(v) for v in source.box)
    if flip:
        crop = crop[:, ::-1]
        sx1, sx2 = crop.shape[1] - sx2, crop.shape[1] - sx1
    alpha = face_alpha(crop.shape, (sx1, sy1, sx2, sy2))
    rgba = np.ascontiguousarray(np.dstack([crop, alpha]))  # [h, w, 4]

    tx1, ty1, tx2, ty2 = (float(v) for v in box)
    scale = (ty2 - ty1) / (sy2 - sy1)
    if scale < 0.5:
        size = (max(1, int(round(rgba.shape[1] * scale * 1.5))), max(1, int(round(rgba.shape[0] * scale * 1.5))))
        pre_x, pre_y = size[0] / rgba.shape[1], size[1] / rgba.shape[0]
        # cv2.resize maps edge coordinates by exactly new_size / old_size.
        rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
        sx1, sx2, sy1, sy2 = sx1 * pre_x, sx2 * pre_x, sy1 * pre_y, sy2 * pre_y

    # Affine map of edge coordinates: x' = ax * x + bx sends [sx1, sx2] onto [tx1, tx2].
    ax, ay = (tx2 - tx1) / (sx2 - sx1), (ty2 - ty1) / (sy2 - sy1)
    bx, by = tx1 - ax * sx1, ty1 - ay * sy1
    height, width = canvas.shape[:2]
    left = max(0, int(np.floor(bx)))
    top = max(0, int(np.floor(by)))
    right = min(width, int(np.ceil(bx + ax * rgba.shape[1])))
    bottom = min(height, int(np.ceil(by + ay * rgba.shape[0])))
    if right <= left or bottom <= top:
        return
    # warpAffine works on pixel centres (index i sits at edge coordinate i + 0.5).
    matrix = np.array([[ax, 0.0, bx - left + 0.5 * ax - 0.5],
                       [0.0, ay, by - top + 0.5 * ay - 0.5]], dtype=np.float64)
    warped = cv2.warpAffine(rgba, matrix, (right - left, bottom - top), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    face = warped[:, :, :3] * np.asarray(gains, dtype=np.float32)[None, None, :]
    if blur_sigma > 0:
        face = cv2.GaussianBlur(face, (0, 0), blur_sigma)
    weight = warped[:, :, 3:4]
    region = canvas[top:bottom, left:right]
    region[...] = region * (1.0 - weight) + np.clip(face, 0, 255) * weight


def _covered_fraction(old_box: np.ndarray, cover: np.ndarray) -> float:
    """Fraction of `old_box`'s area inside `cover` (both x1, y1, x2, y2)."""
    w = min(old_box[2], cover[2]) - max(old_box[0], cover[0])
    h = min(old_box[3], cover[3]) - max(old_box[1], cover[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / ((old_box[2] - old_box[0]) * (old_box[3] - old_box[1]))


def sample_face_heights(rng: np.random.Generator, count: int, long_side: int) -> np.ndarray:
    """Draws face heights (pixels) for an image whose long side is `long_side`.

    On a 640 px image, 85% of faces are log-uniform in [40, 300] px and 15% log-uniform in
    [20, 400] px (so small and very large faces occur, most are visible at 256-384 px
    training sizes); sizes scale with `long_side / 640`.

    Returns:
        int64 [count], sorted largest first.
    """
    wide = rng.random(count) < 0.15
    low = np.where(wide, np.log(20.0), np.log(40.0))
    high = np.where(wide, np.log(400.0), np.log(300.0))
    heights = np.exp(rng.uniform(low, high)) * long_side / 640.0
    return np.sort(np.maximum(8, np.round(heights)).astype(np.int64))[::-1]


def make_composite(rng: np.random.Generator, width: int, height: int, num_faces: int,
                   sources: list[FaceSource], photos: list[np.ndarray],
                   face_heights=None) -> tuple[np.ndarray, list[PastedFace]]:
    """Builds one image with pasted real faces and returns its exact ground truth.

    Faces are pasted largest first at random positions, fully inside the image, each with a
    random source, mirror (p 0.5), colour/brightness gains and, with p 0.3, a light blur;
    a position is rejected if the new face's mask would cover more than
    `MAX_COVERED_FRACTION` of an earlier face box. A face that finds no position in
    `PLACEMENT_ATTEMPTS` tries is left out, so fewer than `num_faces` may be returned.

    Args:
        rng: the random generator (the only source of randomness).
        width, height: image size in pixels.
        num_faces: how many faces to try to paste (0 gives a face-free image).
        sources: from `load_face_sources()`.
        photos: background photos from `load_background_photos()` (may be empty).
        face_heights: optional int sequence of face heights in pixels; drawn with
            `sample_face_heights` if None.

    Returns:
        image: uint8 [height, width, 3] RGB.
        faces: list of `PastedFace`, boxes pixels x1, y1, x2, y2 with integer values.
    """
    canvas = random_background(rng, height, width, photos).astype(np.float32)
    if face_heights is None:
        face_heights = sample_face_heights(rng, num_faces, max(width, height))
    faces: list[PastedFace] = []
    for face_height in face_heights:
        index = int(rng.integers(len(sources)))
        source = sources[index]
        box_w, box_h = source.box[2] - source.box[0], source.box[3] - source.box[1]
        th = int(min(face_height, height - 1, (width - 1) * box_h / box_w))
        tw = max(1, int(round(th * box_w / box_h)))
        if th < 2:
            continue
        placed = None
        for _ in range(PLACEMENT_ATTEMPTS):
            x1 = int(rng.integers(0, width - tw + 1))
            y1 = int(rng.integers(0, height - th + 1))
            candidate = np.array([x1, y1, x1 + tw, y1 + th], dtype=np.float64)
            centre = (candidate[:2] + candidate[2:]) / 2
            half = MASK_CLEAR_RADIUS * (candidate[2:] - candidate[:2]) / 2
            cover = np.concatenate([centre - half, centre + half])
            if all(_covered_fraction(face.box, cover) <= MAX_COVERED_FRACTION for face in faces):
                placed = candidate
                break
        if placed is None:
            continue
        flip = bool(rng.random() < 0.5)
        gains = rng.uniform(0.6, 1.3) * rng.uniform(0.85, 1.15, size=3)
        blur_sigma = float(rng.uniform(0.4, 1.5)) if rng.random() < 0.3 else 0.0
        paste_face(canvas, source, placed, flip=flip, gains=gains, blur_sigma=blur_sigma)
        faces.append(PastedFace(placed, index, blur_sigma, flip))
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), faces
