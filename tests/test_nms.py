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
