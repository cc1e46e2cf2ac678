"""The detections picture: a detector's boxes and scores on image files or video frames.

Boxes: the detector (`src.frozen_graph.FrozenGraphDetector`, FaceDetector's API) returns pixel
``[ymin, xmin, ymax, xmax]``; they are drawn in pixel ``[x1, y1, x2, y2]``.
"""
from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from src.visualize.drawing import draw_boxes, fit_in_box, pixel_yxyx_to_xyxy, read_rgb, tile_height_for

logger = logging.getLogger(__name__)


def read_video_frames(path, indices):
    """Reads chosen frames of a video.

    Args:
        path: a video file OpenCV can read.
        indices: frame numbers counting from 0.

    Returns:
        list of uint8 [H, W, 3] RGB frames, in the order of `indices`.

    Raises:
        ValueError: the video cannot be opened, or a frame number is past its end.
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot open the video")
    wanted, found, index = set(int(i) for i in indices), {}, 0
    try:
        while len(found) < len(wanted):
            ok, frame = capture.read()
            if not ok:
                missing = sorted(wanted - set(found))
                raise ValueError(f"{path}: frame {missing[0]} is past the end of the video ({index} frames)")
            if index in wanted:
                found[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    return [found[int(i)] for i in indices]


def draw_detections(detector, image, label, score_threshold, tile_height, tile_width):
    """Runs a detector on one image and draws its boxes, scores and a caption into a tile.

    Args:
        detector: callable (uint8 RGB [H, W, 3], score_threshold) -> (boxes float [N, 4] pixel
            ymin, xmin, ymax, xmax; scores float [N]), e.g. `src.frozen_graph.FrozenGraphDetector`.
        image: uint8 [H, W, 3] RGB.
        label: caption written at the top left of the tile (with the detection count).
        score_threshold: detections with a score above it are drawn.
        tile_height, tile_width: the tile size; the image is fitted into it.

    Returns:
        uint8 [tile_height, tile_width, 3] RGB.
    """
    boxes, scores = detector(image, score_threshold)
    tile, scale, (left, top) = fit_in_box(image, tile_height, tile_width)
    xyxy = pixel_yxyx_to_xyxy(np.asarray(boxes).reshape(-1, 4)) * scale + [left, top, left, top]
    tile = draw_boxes(tile, xyxy, [f"{s:.2f}" for s in np.asarray(scores).reshape(-1)])
    caption = f"{label}: {len(xyxy)} face(s)"
    (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    cv2.rectangle(tile, (0, 0), (tw + 8, th + base + 6), (255, 255, 255), -1)
    cv2.putText(tile, caption, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def detection_tiles(detector, named_images, score_threshold, tile_width):
    """Draws a detector's boxes on several images, in tiles of one size (see `draw_detections`).

    Args:
        detector: as for `draw_detections`.
        named_images: list of (label, uint8 [H, W, 3] RGB image); at least one.
        score_threshold: detections with a score above it are drawn.
        tile_width: tile width; the height fits the tallest image (`tile_height_for`).

    Returns:
        list of uint8 [tile_height, tile_width, 3] RGB tiles, in order.
    """
    tile_height = tile_height_for([image for _, image in named_images], tile_width)
    return [draw_detections(detector, image, label, score_threshold, tile_height, tile_width)
            for label, image in named_images]


def read_images(paths):
    """Reads image files, skipping unreadable ones.

    Returns:
        (named_images, failures): list of (file name, uint8 [H, W, 3] RGB) in order; list of the
        one-line error messages of the files that could not be read (each also logged, unless
        `paths` is a single file: the caller then has one error to report, not a warning too).
    """
    named, failures = [], []
    for path in paths:
        try:
            named.append((os.path.basename(path), read_rgb(path)))
        except ValueError as error:
            if len(paths) > 1:
                logger.warning("%s", error)
            failures.append(str(error))
    return named, failures
