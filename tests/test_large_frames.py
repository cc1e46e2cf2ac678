"""Large frames: FaceDetector caps the network's input by default (max_dimension) and refuses huge upscales.

The photo is skimage's astronaut (512x512), whose face is (x1, y1, x2, y2) = (172, 58, 272, 178);
boxes from FaceDetector are pixel [ymin, xmin, ymax, xmax] of the image passed in.
"""
import os

import cv2
import numpy as np
import pytest

import face_detector
import start
from face_detector import FaceDetector

SHIPPED_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "model", "facebox.pb")
FACE_XYXY = np.array([172.0, 58.0, 272.0, 178.0])


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(SHIPPED_MODEL)  # the defaults: float32, max_dimension=DEFAULT_MAX_DIMENSION


def _upscaled_astronaut(factor, crop=None):
    """The astronaut upscaled by `factor` (RGB uint8), optionally cropped to (width, height) around the
    face; returns the image and the face as pixel [ymin, xmin, ymax, xmax] in it."""
    skimage_data = pytest.importorskip("skimage.data")
    image = cv2.resize(skimage_data.astronaut(), None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    x1, y1, x2, y2 = FACE_XYXY * factor
    if crop:
        width, height = crop
        left = int(np.clip((x1 + x2) / 2 - width / 2, 0, image.shape[1] - width))
        top = int(np.clip((y1 + y2) / 2 - height / 2, 0, image.shape[0] - height))
        image = np.ascontiguousarray(image[top:top + height, left:left + width])
        x1, x2, y1, y2 = x1 - left, x2 - left, y1 - top, y2 - top
    return image, np.array([y1, x1, y2, x2])


def _iou(boxes, box):
    """IoU of pixel [ymin, xmin, ymax, xmax] boxes [N, 4] with one box [4]."""
    top_left = np.maximum(boxes[:, :2], box[:2])
    bottom_right = np.minimum(boxes[:, 2:], box[2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(boxes) + area(box) - inter)


def test_a_4k_frame_with_a_1500_px_face_gives_the_face_and_nothing_else(detector):
    frame, face = _upscaled_astronaut(12.5, crop=(3840, 2160))  # the face is 1500 px tall
    assert frame.shape == (2160, 3840, 3) and face[2] - face[0] == pytest.approx(1500)
    boxes, scores = detector(frame, score_threshold=0.5)
    assert len(scores) == 1 and _iou(boxes, face)[0] >= 0.6, (boxes, scores)
    # At full size the face is far larger than the 512 px anchor: missed, parts of it found instead.
    full_boxes, full_scores = detector(frame, score_threshold=0.5, max_dimension=0)
    assert not (len(full_scores) == 1 and _iou(full_boxes, face)[0] >= 0.6)


def test_a_10000_px_photo_gives_the_face_and_nothing_else(detector):
    photo, face = _upscaled_astronaut(10000 / 512)
    assert photo.shape == (10000, 10000, 3)
    boxes, scores = detector(photo, score_threshold=0.5)
    assert len(scores) == 1 and _iou(boxes, face)[0] >= 0.6, (boxes, scores)


def test_min_dimension_refuses_a_huge_upscale_in_one_line(detector):
    strip = np.zeros((1, 1000, 3), np.uint8)
    uncapped = FaceDetector(SHIPPED_MODEL, max_dimension=None)
    with pytest.raises(ValueError) as info:
        uncapped(strip, min_dimension=768)
    assert str(info.value) == ("min_dimension=768 would upscale this 1000x1 image to 768000x768 pixels; upscaling "
                               "is refused beyond 4096 pixels on a side (pass a smaller min_dimension, or a "
                               "max_dimension)")
    assert uncapped._target_size((100, 100, 3), 4096, None) == ((4096, 4096), False)  # the bound itself is fine
    # With the default cap, max_dimension wins: 768 x 768000 becomes 1 x 1024.
    assert detector._target_size(strip.shape, 768, None) == ((1, 1024), False)


def test_start_uses_the_detector_default_cap():
    assert start.DEFAULT_MAX_DIMENSION == face_detector.DEFAULT_MAX_DIMENSION
    assert start.parse_args([]).max_dimension == face_detector.DEFAULT_MAX_DIMENSION
    loaded = start.load_face_detector(SHIPPED_MODEL, "float32", max_dimension=None)
    assert loaded._max_dimension is None
