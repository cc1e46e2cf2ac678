"""Pseudo-labels from a pretrained face detector (the "teacher"): YuNet via ``yuface``.

Box convention: pixels ``[x1, y1, x2, y2]`` (float64; x2/y2 are the right/bottom edges), the
annotation JSON's convention.

YuNet (libfacedetection, BSD-3) ships compiled into the ``yuface`` wheel (CPython 3.11,
Linux x86_64 only). ``yuface.detect(bgr_uint8, conf=c)`` returns ``(scores, boxes,
landmarks)``: scores are integers 0-100 (while ``conf`` is 0-1), boxes integer XYWH that can
extend past the image. Its raw scores never go below 0.20. On real FDDB photos its boxes
scoring >= 0.7 had recall 0.94 and near-perfect precision (most "false positives" were
unannotated real faces); boxes between 0.2 and 0.7 were mostly real but hard faces, so they
become ignore regions rather than faces or background. Its boxes run from the eyebrows to
the chin (about 0.8x the height of an FDDB ellipse's box); they are used as they are.

The labelling rule itself (`label_detections`) is plain numpy and takes any detector.
"""
from __future__ import annotations

import os
from typing import Callable

import cv2
import numpy as np

# Teacher boxes scoring at least this are faces; between IGNORE_THRESHOLD and this they
# are ignore regions (measured on FDDB photos, see the module docstring).
FACE_THRESHOLD = 0.7
IGNORE_THRESHOLD = 0.2
# The photo is padded with this fraction of its width/height of grey on every side before
# detection, so that tight face crops (portraits, LFW) have the context YuNet expects.
PAD_FRACTION = 0.25
PAD_VALUE = 127
# YuNet warns on (and slows down with) inputs beyond about this size; larger photos are
# downscaled for detection and the boxes scaled back.
MAX_TEACHER_SIDE = 960
# Boxes smaller than this (pixels, the shorter side after clipping) are too small to train
# on as faces; they become ignore regions.
MIN_FACE_SIZE = 4.0


class TeacherUnavailable(RuntimeError):
    """The teacher package cannot be imported (not installed, or no wheel for this platform)."""


def load_yunet() -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Imports yuface and returns a detector ``bgr uint8 [H, W, 3] -> (boxes, scores)``.

    Sets OMP_NUM_THREADS=1 if it is unset (YuNet's OpenMP threads ran 3-6x slower than one
    thread on a loaded 2-core machine); call this once per process, before anything else
    imports yuface.

    Returns:
        a function returning boxes float64 [N, 4] pixels x1, y1, x2, y2 (unclipped) and
        scores float64 [N] in [0, 1].

    Raises:
        TeacherUnavailable: when yuface cannot be imported.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import yuface  # noqa: PLC0415 (optional dependency, imported on use)
    except ImportError as error:
        raise TeacherUnavailable(
            f"the YuNet teacher needs the 'yuface' package ({error}); install it with "
            "'pip install yuface' (wheels exist for CPython 3.11 on Linux x86_64 only)") from None

    def detect(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = bgr.shape[:2]
        scale = min(1.0, MAX_TEACHER_SIDE / max(height, width))
        if scale < 1.0:
            bgr = cv2.resize(bgr, (round(width * scale), round(height * scale)),
                             interpolation=cv2.INTER_AREA)
        scores, boxes, _ = yuface.detect(np.ascontiguousarray(bgr), conf=IGNORE_THRESHOLD)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # XYWH -> x1, y1, x2, y2
        return boxes / scale, np.asarray(scores, np.float64).reshape(-1) / 100.0

    return detect


def pad_photo(image: np.ndarray, fraction: float = PAD_FRACTION) -> tuple[np.ndarray, int, int]:
    """Pads an image with a grey border.

    Args:
        image: uint8 [H, W, 3].
        fraction: border width as a fraction of the width (left/right) and height (top/bottom).

    Returns:
        padded: uint8 [H + 2 * dy, W + 2 * dx, 3].
        dx, dy: the left and top border in pixels.
    """
    height, width = image.shape[:2]
    dx, dy = int(round(width * fraction)), int(round(height * fraction))
    padded = cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_CONSTANT,
                                value=(PAD_VALUE,) * 3)
    return padded, dx, dy


def label_detections(boxes: np.ndarray, scores: np.ndarray, width: int, height: int,
                     face_threshold: float = FACE_THRESHOLD,
                     ignore_threshold: float = IGNORE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Turns teacher detections into faces and ignore regions.

    Boxes are clipped to the image; boxes with no area left are dropped. A box scoring at
    least ``face_threshold`` whose shorter clipped side is at least MIN_FACE_SIZE is a face;
    every other box scoring at least ``ignore_threshold`` is an ignore region.

    Args:
        boxes: float [N, 4] pixels x1, y1, x2, y2 (may extend past the image).
        scores: float [N] in [0, 1].
        width, height: the image size in pixels.
        face_threshold, ignore_threshold: floats with 0 <= ignore_threshold <= face_threshold.

    Returns:
        faces: float64 [F, 4], ignore: float64 [G, 4], pixels x1, y1, x2, y2, in input order.
    """
    if not 0.0 <= ignore_threshold <= face_threshold <= 1.0:
        raise ValueError(f"need 0 <= ignore_threshold ({ignore_threshold}) <= face_threshold "
                         f"({face_threshold}) <= 1")
    boxes = np.clip(np.asarray(boxes, np.float64).reshape(-1, 4), 0.0, [width, height, width, height])
    scores = np.asarray(scores, np.float64).reshape(-1)
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    has_area = sides > 0
    is_face = has_area & (scores >= face_threshold) & (sides >= MIN_FACE_SIZE)
    is_ignore = has_area & ~is_face & (scores >= ignore_threshold)
    return boxes[is_face], boxes[is_ignore]


def label_photo(rgb: np.ndarray, detect, face_threshold: float = FACE_THRESHOLD,
                ignore_threshold: float = IGNORE_THRESHOLD,
                pad_fraction: float = PAD_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Runs the teacher on a photo (padded with grey) and labels its detections.

    Args:
        rgb: uint8 [H, W, 3] RGB.
        detect: a detector as returned by `load_yunet` (BGR in).
        face_threshold, ignore_threshold: see `label_detections`.
        pad_fraction: see `pad_photo` (0: no padding).

    Returns:
        faces: float64 [F, 4], ignore: float64 [G, 4], pixels x1, y1, x2, y2 of ``rgb``.
    """
    padded, dx, dy = pad_photo(rgb[:, :, ::-1], pad_fraction)
    boxes, scores = detect(padded)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) - [dx, dy, dx, dy]
    height, width = rgb.shape[:2]
    return label_detections(boxes, scores, width, height, face_threshold, ignore_threshold)
