"""Intersection over union of boxes in numpy: the one implementation outside the graph.

(`src/box_utils.iou` is its TensorFlow twin for [ymin, xmin, ymax, xmax] tensors.)

Every function takes the box convention explicitly, as one of `CONVENTIONS`:

- 'xyxy': [x1, y1, x2, y2], edges (the annotation JSON, the tracker, OpenCV drawing);
- 'yxyx': [ymin, xmin, ymax, xmax] (the model, the tfrecords, FaceDetector, AP@0.5);
- 'xywh': [left, top, width, height] (the WIDER FACE files); widths and heights are used as
  given, the right/bottom edges are left + width, top + height.

Coordinates are continuous: a box's width is x2 - x1, never x2 - x1 + 1 (the official WIDER
MATLAB tool's +1 pixel convention is not used anywhere in this project). The unit does not
matter as long as both sides share it.

Degenerate boxes: a negative width or height counts as 0, so an inverted or empty box has
area 0 and IoU 0 with everything, and a pair whose union is empty (or NaN) gets IoU 0. For
boxes with x2 >= x1 and y2 >= y1 the result is exactly
intersection / (area1 + area2 - intersection), the formula of reference SORT
(Bewley et al. 2016, `iou_batch`); for any other box both give 0 (the intersection is 0).
"""
import numpy as np

CONVENTIONS = ("xyxy", "yxyx", "xywh")


def _edges_and_sizes(boxes, convention):
    """(x1, y1, x2, y2, width, height), float64 arrays [...] of boxes [..., 4]."""
    if convention == "xyxy":
        x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    elif convention == "yxyx":
        y1, x1, y2, x2 = np.moveaxis(boxes, -1, 0)
    elif convention == "xywh":
        x1, y1, width, height = np.moveaxis(boxes, -1, 0)
        return x1, y1, x1 + width, y1 + height, width, height
    else:
        raise ValueError(f"box convention must be one of {CONVENTIONS}, got {convention!r}")
    return x1, y1, x2, y2, x2 - x1, y2 - y1


def _as_boxes(boxes, name):
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"{name} must have shape [..., 4], got {boxes.shape}")
    return boxes


def iou(boxes1, boxes2, convention):
    """IoU of boxes broadcast against each other (numpy broadcasting of the leading axes).

    Args:
        boxes1: float array [..., 4] in `convention`.
        boxes2: float array [..., 4], same convention and unit, broadcastable with boxes1.
        convention: 'xyxy', 'yxyx' or 'xywh' (see the module docstring).

    Returns:
        float64 array of the broadcast leading shape, in [0, 1]; 0 where the union is
        empty or not a number.

    Raises:
        ValueError: an unknown convention, or a last axis that is not 4.
    """
    intersection, area1, area2 = _intersection_and_areas(boxes1, boxes2, convention)
    union = area1 + area2 - intersection
    intersection, union = np.broadcast_arrays(intersection, union)
    return np.divide(intersection, union, out=np.zeros(union.shape), where=union > 0)


def _intersection_and_areas(boxes1, boxes2, convention):
    """(intersection, area1, area2), broadcast float64 arrays; negative sizes count as 0."""
    ax1, ay1, ax2, ay2, aw, ah = _edges_and_sizes(_as_boxes(boxes1, "boxes1"), convention)
    bx1, by1, bx2, by2, bw, bh = _edges_and_sizes(_as_boxes(boxes2, "boxes2"), convention)
    inter_w = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0.0, None)
    inter_h = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0, None)
    return (inter_w * inter_h, np.clip(aw, 0.0, None) * np.clip(ah, 0.0, None),
            np.clip(bw, 0.0, None) * np.clip(bh, 0.0, None))


def pairwise_iou(boxes1, boxes2, convention):
    """IoU of every pair of boxes.

    Args:
        boxes1: float array [N, 4] in `convention`.
        boxes2: float array [M, 4], same convention and unit.
        convention: 'xyxy', 'yxyx' or 'xywh' (see the module docstring).

    Returns:
        float64 array [N, M]; entry (i, j) is the IoU of boxes1[i] and boxes2[j].

    Raises:
        ValueError: an unknown convention, or an input that is not [K, 4] (the message
            names it).
    """
    a = _as_boxes(boxes1, "boxes1")
    b = _as_boxes(boxes2, "boxes2")
    for name, boxes in (("boxes1", a), ("boxes2", b)):
        if boxes.ndim != 2:
            raise ValueError(f"{name} must have shape [K, 4], got {boxes.shape}")
    return iou(a[:, None, :], b[None, :, :], convention)


def pairwise_coverage(boxes, regions, convention):
    """Share of each box's area inside each region (intersection / area of the box).

    Args:
        boxes: float array [N, 4] in `convention`.
        regions: float array [M, 4], same convention and unit.
        convention: 'xyxy', 'yxyx' or 'xywh' (see the module docstring).

    Returns:
        float64 array [N, M] in [0, 1]; 0 for a box without area.
    """
    a = _as_boxes(boxes, "boxes").reshape(-1, 4)
    b = _as_boxes(regions, "regions").reshape(-1, 4)
    intersection, area, _ = _intersection_and_areas(a[:, None, :], b[None, :, :], convention)
    area = np.broadcast_to(area, intersection.shape)
    return np.divide(intersection, area, out=np.zeros(intersection.shape), where=area > 0)
