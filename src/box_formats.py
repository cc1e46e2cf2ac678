"""Conversions between the two box conventions that meet at module boundaries (numpy).

- yxyx: [ymin, xmin, ymax, xmax], the model's, the tfrecords' and FaceDetector's order
  (normalized in the model and tfrecords, pixels from FaceDetector);
- xyxy: [x1, y1, x2, y2], the order of the annotation JSON, the WIDER/FDDB tools, OpenCV
  drawing and the SORT tracker.

The conversion swaps coordinates only; units (normalized or pixels) are unchanged.
"""
import numpy as np

_SWAP = [1, 0, 3, 2]


def _as_boxes(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"boxes must have shape [..., 4], got {boxes.shape}")
    return boxes


def yxyx_to_xyxy(boxes):
    """[..., 4] ymin, xmin, ymax, xmax -> float64 [..., 4] x1, y1, x2, y2 (same unit)."""
    return _as_boxes(boxes)[..., _SWAP]


def xyxy_to_yxyx(boxes):
    """[..., 4] x1, y1, x2, y2 -> float64 [..., 4] ymin, xmin, ymax, xmax (same unit)."""
    return _as_boxes(boxes)[..., _SWAP]
