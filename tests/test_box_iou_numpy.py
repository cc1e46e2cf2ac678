"""Tests for src/box_iou_numpy.py, the one numpy IoU (boxes in an explicit convention)."""
import numpy as np
import pytest

from src.box_formats import xyxy_to_yxyx
from src.box_iou_numpy import CONVENTIONS, iou, pairwise_iou

# Hand-derived, in pixel [x1, y1, x2, y2]:
# A = [0, 0, 10, 10] (area 100), B = [5, 0, 15, 20] (area 200): overlap x 5..10, y 0..10 = 50,
# union 100 + 200 - 50 = 250, IoU 0.2.
# C = [2, 2, 6, 4] (area 8) lies inside A: IoU 8 / 100; with B it shares x 5..6, y 2..4 = 2:
# 2 / (200 + 8 - 2).
# D = [10, 0, 20, 10] touches A along x = 10: overlap 0; with B it shares x 10..15, y 0..10 = 50:
# 50 / (200 + 100 - 50) = 0.2.
# E = [3, 3, 3, 9] has zero width: area 0, IoU 0 with everything, also with itself.
# F = [8, 8, 2, 12] is inverted in x: IoU 0 (it would overlap A if its corners were sorted).
A, B, C, D, E, F = ([0, 0, 10, 10], [5, 0, 15, 20], [2, 2, 6, 4], [10, 0, 20, 10],
                    [3, 3, 3, 9], [8, 8, 2, 12])
EXPECTED = np.array([[1.0, 0.2, 0.08, 0.0, 0.0, 0.0],
                     [0.2, 1.0, 2 / 206, 0.2, 0.0, 0.0],
                     [0.08, 2 / 206, 1.0, 0.0, 0.0, 0.0]])  # rows A, B, C


def _xywh(boxes_xyxy):
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def test_hand_derived_values_in_every_convention():
    rows, cols = np.array([A, B, C], float), np.array([A, B, C, D, E, F], float)
    np.testing.assert_allclose(pairwise_iou(rows, cols, "xyxy"), EXPECTED, rtol=0, atol=1e-15)
    # The same boxes written in the other conventions give the same IoU.
    np.testing.assert_allclose(pairwise_iou(xyxy_to_yxyx(rows), xyxy_to_yxyx(cols), "yxyx"), EXPECTED,
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(pairwise_iou(_xywh(rows), _xywh(cols), "xywh"), EXPECTED, rtol=0, atol=1e-15)


def test_xywh_uses_width_and_height_as_given():
    # [left, top, width, height]: [0, 0, 10, 10] and [5, 0, 10, 10] share 50 of 150.
    assert pairwise_iou([[0, 0, 10, 10]], [[5, 0, 10, 10]], "xywh")[0, 0] == pytest.approx(1 / 3)
    # A negative width is an empty box, not a box reaching to the left.
    assert pairwise_iou([[10, 0, -10, 10]], [[0, 0, 10, 10]], "xywh")[0, 0] == 0.0


def test_no_plus_one_pixel_convention():
    # With the +1 convention (MATLAB tools) these would be 2x2 pixels overlapping in 1:
    # 1 / 7. Continuous coordinates: [0, 0, 1, 1] and [1, 1, 2, 2] only touch.
    assert pairwise_iou([[0, 0, 1, 1]], [[1, 1, 2, 2]], "xyxy")[0, 0] == 0.0


def test_empty_union_and_nan_give_zero():
    assert pairwise_iou([E], [E], "xyxy")[0, 0] == 0.0
    assert pairwise_iou([[np.nan, 0, 10, 10]], [A], "xyxy")[0, 0] == 0.0


def test_broadcasting_shapes_and_empty_inputs():
    a = np.array([A, B], float)
    np.testing.assert_allclose(iou(a, np.array([B, A], float), "xyxy"), [0.2, 0.2])  # elementwise
    assert iou(np.array(A, float), np.array(B, float), "xyxy").shape == ()
    assert iou(np.zeros((2, 3, 1, 4)), np.zeros((5, 4)), "xyxy").shape == (2, 3, 5)
    assert pairwise_iou(np.zeros((0, 4)), a, "yxyx").shape == (0, 2)
    assert pairwise_iou(a, np.zeros((0, 4)), "xywh").shape == (2, 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="convention"):
        pairwise_iou([A], [A], "cxcywh")
    with pytest.raises(ValueError, match="boxes2"):
        pairwise_iou([A], [[1, 2, 3]], "xyxy")
    with pytest.raises(ValueError, match=r"boxes1 must have shape \[K, 4\]"):
        pairwise_iou(np.zeros((2, 2, 4)), [A], "xyxy")
    assert set(CONVENTIONS) == {"xyxy", "yxyx", "xywh"}


def _reference_sort_iou_batch(bb_test, bb_gt):
    """`iou_batch` of reference SORT (abewley/sort, sort.py), verbatim but for the names."""
    bb_gt = np.expand_dims(bb_gt, 0)
    bb_test = np.expand_dims(bb_test, 1)
    xx1 = np.maximum(bb_test[..., 0], bb_gt[..., 0])
    yy1 = np.maximum(bb_test[..., 1], bb_gt[..., 1])
    xx2 = np.minimum(bb_test[..., 2], bb_gt[..., 2])
    yy2 = np.minimum(bb_test[..., 3], bb_gt[..., 3])
    w = np.maximum(0., xx2 - xx1)
    h = np.maximum(0., yy2 - yy1)
    wh = w * h
    return wh / ((bb_test[..., 2] - bb_test[..., 0]) * (bb_test[..., 3] - bb_test[..., 1])
                 + (bb_gt[..., 2] - bb_gt[..., 0]) * (bb_gt[..., 3] - bb_gt[..., 1]) - wh)


def test_equals_reference_sort_bit_for_bit_on_proper_boxes():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 600, (2, 80, 2))
    sizes = rng.uniform(1, 150, (2, 80, 2))
    dets, tracks = np.concatenate([corners, corners + sizes], axis=2)
    np.testing.assert_array_equal(pairwise_iou(dets, tracks, "xyxy"), _reference_sort_iou_batch(dets, tracks))


def test_pairwise_coverage_is_the_share_of_each_box_inside_each_region():
    from src.box_iou_numpy import pairwise_coverage
    np.testing.assert_allclose(pairwise_coverage([[0, 0, 10, 10], [0, 0, 0, 10]], [[0, 5, 10, 20], [20, 20, 30, 30]],
                                                 "yxyx"), [[0.5, 0.0], [0.0, 0.0]])
    # The convention matters: the same numbers as xyxy cut the first box the other way.
    np.testing.assert_allclose(pairwise_coverage([[0, 0, 10, 20]], [[0, 0, 10, 5]], "xyxy"), [[0.25]])
    assert pairwise_coverage(np.zeros((0, 4)), [[0, 0, 1, 1]], "yxyx").shape == (0, 1)
