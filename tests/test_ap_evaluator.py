"""Tests for src/evaluation/ap.py (boxes [ymin, xmin, ymax, xmax], any consistent unit)."""
import math

import numpy as np
import pytest

from src.evaluation.ap import Evaluator, match_image, pairwise_iou

FACE_A = [0.0, 0.0, 10.0, 10.0]
FACE_B = [20.0, 20.0, 30.0, 30.0]


def test_pairwise_iou_values():
    iou = pairwise_iou([FACE_A, [0, 0, 10, 20]], [FACE_A, FACE_B, [5, 5, 5, 5]])
    np.testing.assert_allclose(iou, [[1.0, 0.0, 0.0], [0.5, 0.0, 0.0]])


def test_perfect_detections_give_ap_one():
    evaluator = Evaluator()
    evaluator.add([FACE_A, FACE_B], [0.9, 0.8], [FACE_A, FACE_B])
    evaluator.add(np.array([FACE_A]) / 100.0, [0.7], np.array([FACE_A]) / 100.0)  # normalized
    result = evaluator.compute()
    assert result['AP'] == 1.0
    assert result['precision'] == 1.0 and result['recall'] == 1.0
    assert result['FP'] == 0 and result['FN'] == 0
    assert result['threshold'] == 0.7
    assert result['mean_iou'] == 1.0
    assert (result['num_images'], result['num_faces'], result['num_detections']) == (2, 3, 3)


def test_duplicate_detection_is_a_false_positive():
    is_tp, best_iou = match_image([FACE_A, FACE_A, [0, 0, 10, 11]], [0.5, 0.9, 0.7], [FACE_A])
    # The highest score (index 1) takes the face; the others pointing at it are FPs.
    np.testing.assert_array_equal(is_tp, [False, True, False])
    np.testing.assert_allclose(best_iou, [1.0, 1.0, 10.0 / 11.0])
    evaluator = Evaluator()
    evaluator.add([FACE_A, FACE_A], [0.9, 0.6], [FACE_A])
    result = evaluator.compute()
    assert result['AP'] == 1.0  # the FP ranks after the only face is found
    assert result['threshold'] == 0.9 and result['FP'] == 0
    evaluator = Evaluator()
    evaluator.add([FACE_A, FACE_A], [0.9, 0.9], [FACE_A])  # tie: both kept or neither
    result = evaluator.compute()
    assert result['FP'] == 1 and result['precision'] == 0.5


def test_detection_does_not_fall_back_to_second_best_face():
    face_c = [0.0, 5.0, 10.0, 17.0]
    second = [0.0, 0.0, 10.0, 15.0]  # IoU 100/150 with FACE_A (best), 100/170 with face_c
    is_tp, best_iou = match_image([FACE_A, second], [0.9, 0.8], [FACE_A, face_c])
    # FACE_A is taken by the first detection; IoU 0.59 >= 0.5 with face_c does not rescue it.
    np.testing.assert_array_equal(is_tp, [True, False])
    np.testing.assert_allclose(best_iou, [1.0, 2.0 / 3.0])


def test_unmatched_face_lowers_recall():
    evaluator = Evaluator()
    evaluator.add([FACE_A], [0.9], [FACE_A, FACE_B])
    result = evaluator.compute()
    assert result['AP'] == 0.5
    assert result['recall'] == 0.5 and result['precision'] == 1.0
    assert result['FN'] == 1 and result['FP'] == 0


def test_hand_computed_mixed_case():
    evaluator = Evaluator()
    # Image 1: TP (IoU 1), duplicate FP, TP (IoU 100/110).
    evaluator.add([FACE_A, FACE_A, [20, 20, 30, 31]], [0.9, 0.8, 0.6], [FACE_A, FACE_B])
    # Image 2: FP far away, TP at IoU exactly 0.5 (inclusive).
    evaluator.add([[50, 50, 60, 60], [0, 0, 10, 20]], [0.7, 0.5], [FACE_A])
    # Image 3: no faces, one FP.
    evaluator.add([FACE_B], [0.65], np.zeros((0, 4)))
    result = evaluator.compute()
    # Ranked: TP .9, FP .8, FP .7, FP .65, TP .6, TP .5 with 3 faces:
    # precision 1, 1/2, 1/3, 1/4, 2/5, 1/2; recall 1/3, 1/3, 1/3, 1/3, 2/3, 1.
    # AP = 1 * 1/3 + 2/5 * 1/3 + 1/2 * 1/3 = 1.9 / 3.
    assert result['AP'] == pytest.approx(0.6333333333333333, abs=1e-12)
    # p * r * (1 - |p - r|): 1/9, 5/36, 1/9, 11/144, 0.19556, 1/4 -> the last point.
    assert result['threshold'] == 0.5
    assert result['precision'] == 0.5 and result['recall'] == 1.0
    assert result['FP'] == 3 and result['FN'] == 0
    assert result['mean_iou'] == pytest.approx((1.0 + 10.0 / 11.0 + 0.5) / 3.0, abs=1e-12)


def test_operating_point_before_the_end():
    evaluator = Evaluator()
    evaluator.add([FACE_A, FACE_B, [40, 40, 50, 50], [60, 60, 70, 70]], [0.9, 0.8, 0.3, 0.2],
                  [FACE_A, FACE_B, [80, 80, 90, 90]])
    result = evaluator.compute()
    # Points: (p, r) = (1, 1/3), (1, 2/3), (2/3, 2/3), (1/2, 2/3); scores 1/9, 4/9, 4/9, 2/9.
    # The first maximum (threshold 0.8) wins the tie with (2/3, 2/3).
    assert result['threshold'] == 0.8
    assert result['precision'] == 1.0 and result['recall'] == pytest.approx(2.0 / 3.0)
    assert result['FP'] == 0 and result['FN'] == 1
    assert result['AP'] == pytest.approx(2.0 / 3.0)


def test_empty_predictions():
    evaluator = Evaluator()
    evaluator.add(np.zeros((0, 4)), np.zeros(0), [FACE_A])
    evaluator.add([], [], [FACE_B])
    result = evaluator.compute()
    assert result['AP'] == 0.0 and result['recall'] == 0.0 and result['precision'] == 0.0
    assert result['FN'] == 2 and result['FP'] == 0
    assert math.isnan(result['threshold']) and math.isnan(result['mean_iou'])
    assert Evaluator().compute()['num_images'] == 0


def test_images_without_faces_only_add_false_positives():
    evaluator = Evaluator()
    evaluator.add([FACE_A], [0.4], [])
    result = evaluator.compute()
    assert result['AP'] == 0.0 and result['FP'] == 1 and result['num_faces'] == 0
    evaluator.add([FACE_B], [0.9], [FACE_B])
    result = evaluator.compute()
    assert result['AP'] == 1.0  # the faceless image's FP ranks below the only TP
    assert result['threshold'] == 0.9 and result['FP'] == 0


def test_reset_forgets():
    evaluator = Evaluator()
    evaluator.add([FACE_A], [0.4], [])
    evaluator.reset()
    evaluator.add([FACE_A], [0.4], [FACE_A])
    assert evaluator.compute()['AP'] == 1.0


@pytest.mark.parametrize('boxes, scores, gt, message', [
    ([[0, 0, 1]], [0.5], [], 'predicted boxes must have shape'),
    ([FACE_A], [0.5, 0.4], [], 'scores of shape'),
    ([FACE_A], [0.5], [[0, 1]], 'ground-truth boxes must have shape'),
    ([FACE_A], [float('nan')], [], 'NaN'),
    ([[0, 0, float('inf'), 1]], [0.5], [], 'NaN or infinity'),
])
def test_bad_input_names_the_image(boxes, scores, gt, message):
    with pytest.raises(ValueError, match='img_7.*' + message):
        Evaluator().add(boxes, scores, gt, image_id='img_7')


# --- ignore regions and the fixed operating point (this project's additions) --------------------

def test_unmatched_detections_mostly_inside_an_ignore_region_are_dropped():
    ignore = [[40.0, 40.0, 60.0, 60.0]]
    detections = [FACE_A,                    # a true positive
                  [40.0, 40.0, 50.0, 50.0],  # fully inside the ignore region: dropped
                  [45.0, 50.0, 55.0, 60.0],  # fully inside: dropped
                  [50.0, 54.0, 60.0, 64.0],  # 60% inside: dropped
                  [50.0, 56.0, 60.0, 66.0]]  # 40% inside: a false positive
    evaluator = Evaluator()
    evaluator.add(detections, [0.9, 0.8, 0.75, 0.7, 0.6], [FACE_A], ignore_boxes=ignore)
    result = evaluator.compute()
    assert result['num_detections'] == 2
    assert result['AP'] == 1.0 and result['recall'] == 1.0
    plain = Evaluator()
    plain.add(detections, [0.9, 0.8, 0.75, 0.7, 0.6], [FACE_A])
    assert plain.compute()['num_detections'] == 5  # no ignore regions: everything counts


def test_a_true_positive_inside_an_ignore_region_stays_a_true_positive():
    evaluator = Evaluator()
    evaluator.add([FACE_A, FACE_A], [0.9, 0.8], [FACE_A], ignore_boxes=[[0.0, 0.0, 20.0, 20.0]])
    result = evaluator.compute()
    # The duplicate (a false positive without the region) lies inside it: dropped.
    assert (result['num_detections'], result['AP'], result['FP']) == (1, 1.0, 0)


def test_fixed_threshold_counts_the_detections_scoring_at_least_it():
    evaluator = Evaluator()
    evaluator.add([FACE_A, FACE_B, [50.0, 50.0, 60.0, 60.0]], [0.9, 0.6, 0.7], [FACE_A, FACE_B])
    evaluator.add([], [], [FACE_A])
    result = evaluator.compute(fixed_threshold=0.7)
    assert result['fixed_threshold'] == 0.7
    assert result['fixed_recall'] == pytest.approx(1 / 3)
    assert result['fixed_precision'] == 0.5 and result['fixed_FP'] == 1
    none_kept = evaluator.compute(fixed_threshold=0.95)
    assert (none_kept['fixed_recall'], none_kept['fixed_precision'], none_kept['fixed_FP']) == (0.0, 0.0, 0)
    assert 'fixed_recall' not in evaluator.compute()


def test_the_fixed_operating_point_is_the_trackers_default_threshold():
    import start
    from src.evaluation.ap import OPERATING_SCORE_THRESHOLD
    assert OPERATING_SCORE_THRESHOLD == start.DEFAULT_SCORE_THRESHOLD
