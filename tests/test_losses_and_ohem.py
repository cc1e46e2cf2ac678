import numpy as np
import pytest
import tensorflow as tf

from src.losses_and_ohem import (OHEMParams, classification_loss, distillation_losses, localization_loss,
                                 mine_hard_examples, ohem_losses)


def disjoint_boxes(n):
    """n non-overlapping boxes in a row, [n, 4]."""
    x = np.arange(n, dtype=np.float32) / n
    return np.stack([np.zeros(n), x, np.full(n, 0.5), x + 0.5 / n], axis=1).astype(np.float32)


def mine(num_anchors, positives, losses, params=OHEMParams()):
    boxes = disjoint_boxes(num_anchors)[None]
    is_positive = np.zeros([1, num_anchors], bool)
    is_positive[0, positives] = True
    selected, num_pos, num_neg = mine_hard_examples(
        tf.zeros([1, num_anchors]), tf.constant(losses[None], tf.float32), tf.constant(boxes),
        tf.constant(is_positive), params)
    return selected.numpy()[0], int(num_pos[0]), int(num_neg[0])


def test_three_negatives_per_positive():
    rng = np.random.default_rng(1)
    losses = rng.permutation(200).astype(np.float32)
    positives = np.arange(0, 200, 10)  # 20 positives
    selected, num_pos, num_neg = mine(200, positives, losses)
    assert (num_pos, num_neg) == (20, 60)
    negatives = np.setdiff1d(np.arange(200), positives)
    hardest = negatives[np.argsort(-losses[negatives])[:60]]
    assert set(np.flatnonzero(selected)) == set(positives) | set(hardest)


def test_minimum_negatives_per_image():
    losses = np.linspace(1, 2, 100).astype(np.float32)
    selected, num_pos, num_neg = mine(100, [0, 1], losses)
    assert (num_pos, num_neg) == (2, 30)  # 3 * 2 = 6 < 30
    assert set(np.flatnonzero(selected)) == {0, 1} | set(range(70, 100))
    selected, num_pos, num_neg = mine(100, [], losses)
    assert (num_pos, num_neg) == (0, 30)


def test_hard_example_cap_and_near_duplicates():
    params = OHEMParams(num_hard_examples=10, min_negatives_per_image=30)
    losses = np.arange(50, dtype=np.float32)
    selected, num_pos, num_neg = mine(50, [], losses, params)
    assert num_neg == 10 and set(np.flatnonzero(selected)) == set(range(40, 50))
    # Two identical boxes (IoU 1 > 0.99): only the higher-loss one is mined.
    boxes = np.repeat(disjoint_boxes(1), 2, axis=0)[None]
    selected, _, num_neg = mine_hard_examples(
        tf.zeros([1, 2]), tf.constant([[1.0, 2.0]]), tf.constant(boxes), tf.constant([[False, False]]),
        OHEMParams())
    assert selected.numpy().tolist() == [[False, True]] and int(num_neg[0]) == 1


def test_smooth_l1_and_cross_entropy_values():
    loc = localization_loss(tf.constant([[[0.5, 2.0, 0.0, -3.0]]]), tf.zeros([1, 1, 4]), tf.ones([1, 1]))
    np.testing.assert_allclose(loc.numpy(), [[0.125 + 1.5 + 0.0 + 2.5]])
    cls = classification_loss(tf.constant([[[0.0, 0.0], [np.log(3.0), 0.0]]]), tf.constant([[1, 0]]))
    np.testing.assert_allclose(cls.numpy(), [[np.log(2.0), np.log(4.0 / 3.0)]], rtol=1e-6)


def test_normalized_by_number_of_matches():
    num_anchors = 40
    anchors = tf.constant(disjoint_boxes(num_anchors))
    matches = -np.ones([2, num_anchors], np.int32)
    matches[0, :3] = 0
    matches[1, 5] = 0
    logits = tf.zeros([2, num_anchors, 2])  # every anchor: CE = log 2
    out = ohem_losses(tf.zeros([2, num_anchors, 4]), logits, anchors, tf.constant(matches),
                      tf.zeros([2, num_anchors, 4]), OHEMParams())
    # image 0: 3 pos + 30 neg; image 1: 1 pos + 30 neg -> 64 mined anchors over 4 matches
    np.testing.assert_allclose(out["classification_loss"].numpy(), 64 * np.log(2.0) / 4, rtol=1e-5)
    assert int(out["num_matches"]) == 4
    assert out["num_mined_negatives"].numpy().tolist() == [30, 30]
    np.testing.assert_allclose(out["localization_loss"].numpy(), 0.0)


# Overlapping candidates. Boxes of width W = 396/1024 shifted right by d/1024 (all coordinates
# are multiples of 1/1024, exact in float32): two boxes of the same size shifted by d have
# IoU (396 - d) / (396 + d): d = 1 -> 395/397 = 0.99496 (> 0.99, a near-duplicate),
# d = 3 -> 393/399 = 0.98496 and d = 4 -> 392/400 = 0.98 exactly (both kept at 0.99).
W = 396 / 1024


def shifted(row, d):
    """A box of width W in the top (row 0) or bottom (row 1) half, shifted right by d/1024."""
    x = row * 0.5 + d / 1024
    return [row * 0.5, x, row * 0.5 + 0.5, x + W]


# index: (box, mined loss, positive)
OVERLAPPING = [
    (shifted(0, 0), 10.0, False),  # 0: highest loss of the top group -> kept first
    (shifted(0, 4), 9.0, False),   # 1: IoU 0.98 with 0 -> kept
    (shifted(0, 1), 8.0, True),    # 2: IoU 0.995 with 0 -> dropped (a positive: not mined)
    (shifted(0, 5), 7.0, False),   # 3: IoU 0.995 with 1 (0.975 with 0) -> dropped
    (shifted(0, 0), 6.0, False),   # 4: identical to 0 (IoU 1) -> dropped
    (shifted(1, 0), 1.0, False),   # 5: IoU 0.995 with 7, which has a higher loss -> dropped
    (shifted(1, 4), 3.0, True),    # 6: IoU 0.985 with 7, 0.98 with 5 -> kept (mined positive)
    (shifted(1, 1), 5.0, False),   # 7: highest loss of the bottom group -> kept first
]
OVERLAPPING_SELECTED = [0, 1, 6, 7]


def test_overlapping_boxes_geometry():
    """The IoUs the NMS test relies on, computed in float64."""
    def iou(a, b):
        inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
    box = [b for b, _, _ in OVERLAPPING]
    assert iou(box[0], box[1]) == pytest.approx(0.98, abs=1e-12)
    assert iou(box[0], box[2]) == pytest.approx(395 / 397) and 395 / 397 > 0.99
    assert iou(box[1], box[3]) == pytest.approx(395 / 397) and iou(box[0], box[3]) < 0.98
    assert iou(box[0], box[4]) == 1.0
    assert iou(box[7], box[5]) == pytest.approx(395 / 397)
    assert iou(box[7], box[6]) == pytest.approx(393 / 399) and 393 / 399 < 0.99
    assert iou(box[5], box[6]) == pytest.approx(0.98)
    assert iou(box[0], box[5]) == 0.0


def test_nms_drops_near_duplicates_above_099_and_keeps_098():
    boxes = np.array([b for b, _, _ in OVERLAPPING], np.float32)
    losses = np.array([l for _, l, _ in OVERLAPPING], np.float32)
    is_positive = np.array([p for _, _, p in OVERLAPPING])
    selected, num_pos, num_neg = mine_hard_examples(
        tf.zeros([1, 8]), tf.constant(losses[None]), tf.constant(boxes[None]),
        tf.constant(is_positive[None]), OHEMParams())  # nms_threshold 0.99
    assert np.flatnonzero(selected.numpy()[0]).tolist() == OVERLAPPING_SELECTED
    assert (int(num_pos[0]), int(num_neg[0])) == (1, 3)
    # The order of the candidates does not matter, only their losses: reversed, the same boxes win.
    selected, _, _ = mine_hard_examples(
        tf.zeros([1, 8]), tf.constant(losses[None, ::-1]), tf.constant(boxes[None, ::-1]),
        tf.constant(is_positive[None, ::-1]), OHEMParams())
    assert np.flatnonzero(selected.numpy()[0, ::-1]).tolist() == OVERLAPPING_SELECTED
    # num_hard_examples counts NMS survivors: a cap of 3 takes the 3 highest-loss survivors.
    selected, num_pos, num_neg = mine_hard_examples(
        tf.zeros([1, 8]), tf.constant(losses[None]), tf.constant(boxes[None]),
        tf.constant(is_positive[None]), OHEMParams(num_hard_examples=3))
    assert np.flatnonzero(selected.numpy()[0]).tolist() == [0, 1, 7]
    assert (int(num_pos[0]), int(num_neg[0])) == (0, 3)


def test_ohem_losses_nms_on_decoded_overlapping_boxes():
    """Through ohem_losses: zero encodings decode to the anchors, the mined-loss ranking comes
    from the logits; the positive dropped by the NMS adds no loss but counts as a match."""
    anchors = np.array([b for b, _, _ in OVERLAPPING], np.float32)
    losses = np.array([l for _, l, _ in OVERLAPPING], np.float32)
    is_positive = np.array([p for _, _, p in OVERLAPPING])
    # Cross-entropy softplus(z): logits [0, z] for background, [z, 0] for faces.
    z = np.log(np.expm1(losses))  # softplus(z) == losses
    logits = np.where(is_positive[:, None], np.stack([z, 0 * z], 1), np.stack([0 * z, z], 1))
    matches = np.where(is_positive, 0, -1).astype(np.int32)
    targets = np.zeros([8, 4], np.float32)
    targets[2, 0] = 2.0  # smooth L1 1.5, must not count (anchor 2 is not mined)
    targets[6, 0] = 0.5  # smooth L1 0.125
    out = ohem_losses(tf.zeros([1, 8, 4]), tf.constant(logits[None], tf.float32), tf.constant(anchors),
                      tf.constant(matches[None]), tf.constant(targets[None]), OHEMParams())
    assert int(out["num_matches"]) == 2
    assert out["num_mined_positives"].numpy().tolist() == [1]
    assert out["num_mined_negatives"].numpy().tolist() == [3]
    np.testing.assert_allclose(out["classification_loss"].numpy(), losses[OVERLAPPING_SELECTED].sum() / 2,
                               rtol=1e-5)
    np.testing.assert_allclose(out["localization_loss"].numpy(), 0.125 / 2, rtol=1e-5)


# --- distillation ------------------------------------------------------------------------------

def test_distillation_losses_by_hand():
    # Anchor 0: the teacher says face with p = 0.75 (logits 0, ln 3), the model 0.5; the model's
    # box is 0.5 off in one coordinate. Anchor 1: both agree exactly.
    teacher_logits = tf.constant([[[0.0, np.log(3.0)], [2.0, -1.0]]], tf.float32)
    logits = tf.constant([[[0.0, 0.0], [2.0, -1.0]]], tf.float32)
    teacher_encodings = tf.zeros([1, 2, 4])
    encodings = tf.constant([[[0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]], tf.float32)
    out = distillation_losses(encodings, logits, teacher_encodings, teacher_logits, tf.constant(2.0))
    kl = 0.25 * np.log(0.25 / 0.5) + 0.75 * np.log(0.75 / 0.5)
    np.testing.assert_allclose(out["distillation_classification_loss"].numpy(), kl / 2, rtol=1e-6)
    np.testing.assert_allclose(out["distillation_localization_loss"].numpy(), 0.75 * 0.125 / 2, rtol=1e-6)


def test_distillation_is_zero_at_agreement_and_only_the_model_gets_gradients():
    rng = np.random.default_rng(0)
    logits = tf.Variable(rng.normal(size=(2, 50, 2)).astype(np.float32))
    encodings = tf.Variable(rng.normal(size=(2, 50, 4)).astype(np.float32))
    teacher_logits, teacher_encodings = tf.Variable(logits), tf.Variable(encodings)
    with tf.GradientTape(persistent=True) as tape:
        same = distillation_losses(encodings, logits, teacher_encodings, teacher_logits, 1.0)
        moved = distillation_losses(encodings + 0.3, logits + [0.0, 1.0], teacher_encodings,
                                    teacher_logits, 1.0)
        total = moved["distillation_classification_loss"] + moved["distillation_localization_loss"]
    assert abs(float(same["distillation_classification_loss"])) < 1e-5
    assert float(same["distillation_localization_loss"]) == 0.0
    assert float(moved["distillation_classification_loss"]) > 0.1
    assert float(moved["distillation_localization_loss"]) > 0.1
    assert tape.gradient(total, teacher_logits) is None and tape.gradient(total, teacher_encodings) is None
    assert float(tf.reduce_max(tf.abs(tape.gradient(total, logits)))) > 0
