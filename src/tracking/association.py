"""Detection-to-track association by IoU and the Hungarian algorithm (SORT's matcher).

Box convention: pixel [x1, y1, x2, y2]. IoU is `src.box_iou_numpy` ('xyxy', continuous
coordinates, no +1 on widths), equal to reference SORT's `iou_batch` on every box with
x2 >= x1 and y2 >= y1 (the only kind the tracker accepts).
"""
import numpy as np
from scipy.optimize import linear_sum_assignment

from src import box_iou_numpy

_EMPTY_PAIRS = np.empty((0, 2), dtype=np.int64)


def _expand(boxes, buffers):
    """Grows boxes [..., 4] by buffers [...] times their width/height on every side."""
    w = (boxes[..., 2] - boxes[..., 0]) * buffers
    h = (boxes[..., 3] - boxes[..., 1]) * buffers
    return np.stack([boxes[..., 0] - w, boxes[..., 1] - h, boxes[..., 2] + w, boxes[..., 3] + h], axis=-1)


def iou_matrix(boxes_a, boxes_b):
    """Pairwise intersection over union.

    Args:
        boxes_a: float array [N, >=4], pixel x1, y1, x2, y2 (extra columns ignored).
        boxes_b: float array [M, >=4], same convention.

    Returns:
        float64 array [N, M] of IoU in [0, 1] (0 where both boxes are empty).

    Raises:
        ValueError: if an input is not two-dimensional with at least 4 columns.
    """
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    for name, arr in (("boxes_a", a), ("boxes_b", b)):
        if arr.ndim != 2 or arr.shape[1] < 4:
            raise ValueError(f"{name} must have shape [N, >=4], got {arr.shape}")
    return box_iou_numpy.iou(a[:, None, :4], b[None, :, :4], "xyxy")  # [N, M]


def buffered_iou_matrix(det_boxes, track_boxes, buffers):
    """IoU after growing both boxes of each pair by the track's buffer (C-BIoU, Yang et al. 2023).

    A track lost for a while has an uncertain predicted box; growing both boxes by a
    fraction of their size on every side lets a nearby detection still overlap it.

    Args:
        det_boxes: float array [N, >=4], pixel x1, y1, x2, y2.
        track_boxes: float array [M, >=4], same convention.
        buffers: float array [M], per track, the growth per side as a fraction of the box
            width/height (0 gives plain IoU).

    Returns:
        float64 array [N, M].
    """
    a = np.asarray(det_boxes, dtype=np.float64)[:, None, :4]  # [N, 1, 4]
    b = np.asarray(track_boxes, dtype=np.float64)[None, :, :4]  # [1, M, 4]
    buffers = np.asarray(buffers, dtype=np.float64)[None, :]  # [1, M]
    return box_iou_numpy.iou(_expand(a, buffers), _expand(b, buffers), "xyxy")


def associate(det_boxes, track_boxes, iou_threshold, iou=None):
    """Matches detections to predicted track boxes, one-to-one, maximising total IoU.

    As in reference SORT: when every detection and every track has at most one partner
    above the threshold (and at least one pair exists) those pairs are taken directly;
    otherwise the Hungarian algorithm runs on -IoU. Pairs with IoU below the threshold
    are then rejected.

    Args:
        det_boxes: float array [N, >=4], pixel x1, y1, x2, y2.
        track_boxes: float array [M, >=4], predicted boxes, same convention.
        iou_threshold: float, the gate; a pair needs IoU >= this to match.
        iou: optional float array [N, M] to use instead of the plain IoU of the boxes.

    Returns:
        (matches, unmatched_dets, unmatched_tracks): int64 arrays [K, 2] of
        (detection index, track index) sorted by detection index, [N - K] and [M - K]
        (ascending).
    """
    n, m = len(det_boxes), len(track_boxes)
    if n == 0 or m == 0:
        return _EMPTY_PAIRS.copy(), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    if iou is None:
        iou = iou_matrix(det_boxes, track_boxes)
    above = iou > iou_threshold
    if above.sum(axis=1).max() == 1 and above.sum(axis=0).max() == 1:
        pairs = np.stack(np.nonzero(above), axis=1).astype(np.int64)
    else:
        rows, cols = linear_sum_assignment(-iou)  # rows come back sorted
        pairs = np.stack([rows, cols], axis=1).astype(np.int64)
    pairs = pairs[iou[pairs[:, 0], pairs[:, 1]] >= iou_threshold]
    det_free = np.ones(n, dtype=bool)
    det_free[pairs[:, 0]] = False
    track_free = np.ones(m, dtype=bool)
    track_free[pairs[:, 1]] = False
    return pairs, np.flatnonzero(det_free), np.flatnonzero(track_free)
