import numpy as np
import pytest
import tensorflow as tf

from src import box_utils


def test_iou_hand_computed():
    a = [[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]
    b = [[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]]
    expected = [[1 / 7, 1.0, 0.0], [0.0, 0.25, 0.0]]
    np.testing.assert_allclose(box_utils.iou(a, b).numpy(), expected, rtol=1e-6)


def test_iou_batched_and_degenerate():
    a = tf.constant([[[0.0, 0.0, 1.0, 1.0]], [[0.0, 0.0, 0.0, 0.0]]])  # [2, 1, 4]
    b = tf.constant([[[0.0, 0.0, 0.5, 1.0]], [[0.0, 0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(box_utils.iou(a, b).numpy(), [[[0.5]], [[0.0]]])


def test_area_and_intersection():
    np.testing.assert_allclose(box_utils.area([[1.0, 2.0, 4.0, 6.0]]).numpy(), [12.0])
    np.testing.assert_allclose(
        box_utils.intersection([[0.0, 0.0, 4.0, 4.0]], [[2.0, 1.0, 6.0, 3.0]]).numpy(), [[4.0]])


def test_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        box_utils.area(tf.zeros([3, 5]))


def test_encode_values_and_round_trip():
    anchors = tf.constant([[0.1, 0.2, 0.3, 0.6]])
    boxes = tf.constant([[0.15, 0.25, 0.45, 0.55]])
    codes = box_utils.encode(boxes, anchors).numpy()
    # anchor centre (0.2, 0.4), size (0.2, 0.4); box centre (0.3, 0.4), size (0.3, 0.3)
    np.testing.assert_allclose(codes, [[10 * 0.1 / 0.2, 0.0, 5 * np.log(1.5), 5 * np.log(0.75)]],
                               rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 0.5, size=(100, 2))
    hw = rng.uniform(0.01, 0.5, size=(100, 2))
    boxes = np.concatenate([yx, yx + hw], axis=1).astype(np.float32)
    anchors = np.roll(boxes, 1, axis=0)
    decoded = box_utils.decode(box_utils.encode(boxes, anchors), anchors).numpy()
    np.testing.assert_allclose(decoded, boxes, atol=1e-5)


def test_center_conversions():
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.4]])
    centre = box_utils.to_center_coordinates(boxes)
    np.testing.assert_allclose(centre.numpy(), [[0.3, 0.3, 0.4, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(box_utils.to_minmax_coordinates(centre).numpy(), boxes.numpy(), rtol=1e-6)


def test_decode_with_centres_and_sizes_equals_decode():
    rng = np.random.default_rng(3)
    yx = rng.uniform(0, 0.8, size=(300, 2))
    anchors = np.concatenate([yx, yx + rng.uniform(0.01, 0.2, size=(300, 2))], axis=1).astype(np.float32)
    codes = rng.normal(0, 1.0, size=(2, 300, 4)).astype(np.float32)
    sizes = np.tile(anchors[:, 2:] - anchors[:, :2], 2)
    centres = np.tile(anchors[:, :2], 2) + 0.5 * sizes
    got = box_utils.decode_with_centres_and_sizes(tf.constant(codes), tf.constant(centres), tf.constant(sizes))
    want = box_utils.decode(tf.constant(codes), tf.constant(anchors)[None])
    assert got.shape == (2, 300, 4)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_clip_to_window_clips_each_coordinate_to_its_axis():
    boxes = tf.constant([[-0.5, 0.1, 0.7, 1.4], [0.2, -0.1, 0.3, 0.5]])
    clipped = box_utils.clip_to_window(boxes, window=(0.0, 0.2, 0.6, 1.0)).numpy()
    np.testing.assert_array_equal(clipped, np.float32([[0.0, 0.2, 0.6, 1.0], [0.2, 0.2, 0.3, 0.5]]))
