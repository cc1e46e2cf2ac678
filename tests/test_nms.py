import numpy as np
import tensorflow as tf

from src.nms import batch_non_max_suppression


def test_padding_counts_and_threshold():
    boxes = tf.constant([[
        [0.0, 0.0, 0.4, 0.4],
        [0.01, 0.01, 0.41, 0.41],  # IoU ~0.9 with box 0: suppressed
        [0.5, 0.5, 0.9, 0.9],
        [0.0, 0.6, 0.2, 0.8],      # below the score threshold
    ], [
        [0.1, 0.1, 0.2, 0.2],
        [0.3, 0.3, 0.4, 0.4],
        [0.5, 0.5, 0.6, 0.6],
        [0.7, 0.7, 0.8, 0.8],
    ]])
    scores = tf.constant([[0.9, 0.8, 0.7, 0.01], [0.2, 0.6, 0.4, 0.001]])
    out_boxes, out_scores, num = batch_non_max_suppression(boxes, scores, 0.05, 0.3, max_boxes=5)
    assert out_boxes.shape == (2, 5, 4) and out_scores.shape == (2, 5)
    assert num.numpy().tolist() == [2, 3]
    np.testing.assert_allclose(out_scores.numpy(), [[0.9, 0.7, 0, 0, 0], [0.6, 0.4, 0.2, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(out_boxes.numpy()[0, :3], [[0, 0, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0, 0, 0, 0]])
    np.testing.assert_allclose(out_boxes.numpy()[1, 0], [0.3, 0.3, 0.4, 0.4])


def test_max_boxes_caps_output():
    boxes = tf.constant(np.stack([np.array([i, 0, i + 0.5, 0.5]) / 10 for i in range(10)])[None], tf.float32)
    scores = tf.constant(np.linspace(0.9, 0.5, 10)[None], tf.float32)
    _, out_scores, num = batch_non_max_suppression(boxes, scores, 0.05, 0.3, max_boxes=3)
    assert num.numpy().tolist() == [3]
    np.testing.assert_allclose(out_scores.numpy()[0], [0.9, 0.9 - 0.4 / 9, 0.9 - 0.8 / 9], rtol=1e-5)


def test_ties_and_threshold_follow_the_upstream_op():
    """Saturated scores (many exactly 1.0) and scores equal to the threshold, checked against
    NonMaxSuppressionV3 image by image (the upstream's NMS): same rows in the same order."""
    rng = np.random.default_rng(0)
    count = 3000
    centres = rng.uniform(0, 1, (2, count, 2))
    sizes = rng.uniform(0.02, 0.1, (2, count, 2))
    boxes = np.concatenate([centres - sizes, centres + sizes], axis=-1).astype(np.float32)
    scores = rng.choice(np.array([1.0, 1.0, 0.99, 0.5, 0.05, 0.01], np.float32), (2, count))
    out_boxes, out_scores, num = batch_non_max_suppression(boxes, scores, 0.05, 0.3, max_boxes=200)
    for b in range(2):
        reference = tf.image.non_max_suppression(boxes[b], scores[b], 200, 0.3, 0.05).numpy()
        n = int(num[b])
        assert n == len(reference) == 200
        np.testing.assert_array_equal(out_boxes.numpy()[b, :n], boxes[b][reference])
        np.testing.assert_array_equal(out_scores.numpy()[b, :n], scores[b][reference])
    # Ties go to the lower index; a score equal to the threshold is dropped (as the op does).
    twin = np.array([[0.25, 0.25, 0.5, 0.5], [0, 0, 0.5, 0.5]], np.float32)  # IoU 0.25
    boxes = tf.constant([[twin[0], twin[1], [0.6, 0.6, 0.9, 0.9], [0.6, 0.0, 0.9, 0.3]]], tf.float32)
    out_boxes, out_scores, num = batch_non_max_suppression(
        boxes, tf.constant([[1.0, 1.0, 0.05, 0.0500001]]), 0.05, 0.2, 4)
    assert int(num[0]) == 2
    np.testing.assert_array_equal(out_boxes.numpy()[0, :2], np.array([twin[0], [0.6, 0.0, 0.9, 0.3]], np.float32))
    # The reversed input keeps the other twin: ties are decided by index, not coordinates.
    out_boxes, _, _ = batch_non_max_suppression(boxes[:, ::-1], tf.constant([[0.0500001, 0.05, 1.0, 1.0]]), 0.05, 0.2, 4)
    np.testing.assert_array_equal(out_boxes.numpy()[0, 0], twin[1])
