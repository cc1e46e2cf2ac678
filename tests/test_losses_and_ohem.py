import numpy as np
import tensorflow as tf

from src.losses_and_ohem import (OHEMParams, classification_loss, localization_loss,
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
