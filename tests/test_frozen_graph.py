"""Tests for src/frozen_graph.py, the library's frozen-graph runner (FaceDetector's answers).

Boxes: pixel [ymin, xmin, ymax, xmax], like FaceDetector.
"""
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(ROOT, "model", "facebox.pb")


def test_same_answers_as_face_detector_on_the_shipped_model():
    from face_detector import FaceDetector
    from src.frozen_graph import FrozenGraphDetector

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mine, theirs = FrozenGraphDetector(SHIPPED_MODEL), FaceDetector(SHIPPED_MODEL)
    for threshold in (0.0, 0.5):
        boxes, scores = mine(image, score_threshold=threshold)
        expected_boxes, expected_scores = theirs(image, score_threshold=threshold)
        assert boxes.dtype == np.float32 and boxes.shape == (len(scores), 4)
        np.testing.assert_array_equal(boxes, expected_boxes)
        np.testing.assert_array_equal(scores, expected_scores)
    raw_boxes, raw_scores, num_boxes = mine.run(np.stack([image, image]))
    assert raw_boxes.shape[0] == 2 and raw_scores.shape == raw_boxes.shape[:2] and num_boxes.shape == (2,)
    with pytest.raises(ValueError, match="uint8"):
        mine(image.astype(np.float32))


def test_load_errors_name_the_file(tmp_path):
    from src.frozen_graph import FrozenGraphDetector

    with pytest.raises(FileNotFoundError, match="not found"):
        FrozenGraphDetector(str(tmp_path / "missing.pb"))
    with pytest.raises(IsADirectoryError, match="directory"):
        FrozenGraphDetector(str(tmp_path))
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\xff\x00 definitely not a protobuf \x13\x37\n" * 40)
    with pytest.raises(ValueError, match="not a frozen GraphDef"):
        FrozenGraphDetector(str(garbage))

    import tensorflow as tf
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
    other = tmp_path / "other.pb"
    other.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ValueError, match="lacks the node.*boxes, scores, num_boxes"):
        FrozenGraphDetector(str(other))
