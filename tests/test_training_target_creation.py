import numpy as np
import tensorflow as tf

from src import anchor_generator, box_utils
from src.training_target_creation import MATCHING_THRESHOLD, create_targets, match_anchors


def real_anchors():
    anchors, _ = anchor_generator.generate_anchors(1024, 1024)
    return anchors


def test_every_box_matched_and_threshold_rule():
    anchors = real_anchors()
    boxes = tf.constant([[[100, 100, 180, 160], [500, 600, 900, 900], [10, 900, 40, 930]]],
                        tf.float32) / 1024.0
    matches = match_anchors(anchors, boxes, tf.constant([3])).numpy()[0]
    overlaps = box_utils.iou(boxes[0], anchors).numpy()  # [3, A]
    assert set(np.unique(matches)) == {-1, 0, 1, 2}
    best = overlaps.max(axis=0)
    forced = overlaps.argmax(axis=1)
    for a in np.flatnonzero(matches >= 0):
        if a not in forced:
            assert best[a] >= MATCHING_THRESHOLD
            assert matches[a] == overlaps[:, a].argmax()
    background = np.flatnonzero(matches < 0)
    assert np.all(best[background] < MATCHING_THRESHOLD)
    for g in range(3):  # forced match to each box's best anchor
        assert matches[forced[g]] == g


def test_two_faces_sharing_their_best_anchor_both_keep_an_anchor():
    anchors = real_anchors()
    # Two 18 px faces inside the first 32 px anchor of cell (1, 2), whose pixel box is
    # [20, 52, 52, 84]: IoU 324/1024 < 0.35, so only forced matching can give them anchors.
    boxes = tf.constant([[[27, 59, 45, 77], [28, 60, 46, 78]]], tf.float32) / 1024.0
    overlaps = box_utils.iou(boxes[0], anchors).numpy()
    base = (1 * 32 + 2) * 21
    assert overlaps[0].argmax() == base and overlaps[1].argmax() == base  # the shared best anchor
    assert overlaps.max() < MATCHING_THRESHOLD
    matches = match_anchors(anchors, boxes, tf.constant([2])).numpy()[0]
    # Equal areas: box 0 goes first and takes the shared anchor; box 1 takes its best other one.
    assert matches[base] == 0
    second = np.argsort(-overlaps[1], kind="stable")
    second = second[second != base][0]
    assert matches[second] == 1
    assert np.count_nonzero(matches >= 0) == 2


def test_zero_faces_and_padding():
    anchors = real_anchors()
    boxes = tf.zeros([2, 0, 4])
    matches, targets = create_targets(anchors, boxes, tf.constant([0, 0]))
    assert np.all(matches.numpy() == -1)
    assert np.all(targets.numpy() == 0)
    # Padded rows are ignored even when they overlap anchors.
    boxes = tf.constant([[[0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 1.0, 1.0]],
                         [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]])
    matches = match_anchors(anchors, boxes, tf.constant([1, 0])).numpy()
    assert set(np.unique(matches[0])) == {-1, 0}
    assert np.all(matches[1] == -1)


def test_regression_targets_decode_to_gt():
    anchors = real_anchors()
    boxes = tf.constant([[[0.2, 0.3, 0.35, 0.42]]])
    matches, targets = create_targets(anchors, boxes, tf.constant([1]))
    positive = matches.numpy()[0] >= 0
    decoded = box_utils.decode(targets[0], anchors).numpy()[positive]
    np.testing.assert_allclose(decoded, np.repeat(boxes.numpy()[0], positive.sum(), 0), atol=1e-5)
    assert np.all(targets.numpy()[0][~positive] == 0)
