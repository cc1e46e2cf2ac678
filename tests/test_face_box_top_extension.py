"""Tests for the forehead label convention: augmentations.extend_box_tops and the input
pipeline's face_box_top_extension (boxes: normalized ymin, xmin, ymax, xmax)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from src.input_pipeline import augmentations as aug
from src.input_pipeline.pipeline import build_dataset
from src.tfrecords import encode_example, write_manifest
from tests.test_input_pipeline import encode_jpeg


def test_extend_box_tops_by_hand():
    boxes = tf.constant([[0.5, 0.1, 0.9, 0.3],     # height 0.4: top 0.5 -> 0.42
                         [0.05, 0.2, 0.45, 0.6],   # 0.05 - 0.08 < 0: stops at the image top
                         [0.0, 0.0, 1.0, 1.0]])    # already at the top
    np.testing.assert_allclose(aug.extend_box_tops(boxes, 0.2).numpy(),
                               [[0.42, 0.1, 0.9, 0.3], [0.0, 0.2, 0.45, 0.6], [0.0, 0.0, 1.0, 1.0]],
                               atol=1e-7)
    np.testing.assert_allclose(aug.extend_box_tops(boxes, 1.0).numpy()[0], [0.1, 0.1, 0.9, 0.3], atol=1e-7)
    assert aug.extend_box_tops(boxes, 0.0) is boxes
    assert aug.extend_box_tops(tf.zeros([0, 4]), 0.2).shape == (0, 4)


def _write_records(folder, records):
    path = os.path.join(folder, 'shard-0000.tfrecords')
    with tf.io.TFRecordWriter(path) as writer:
        for name, boxes, ignore in records:
            image = np.full((60, 80, 3), 128, np.uint8)
            writer.write(encode_example(name, encode_jpeg(image), np.array(boxes, np.float32),
                                        np.array(ignore, np.float32).reshape(-1, 4)))
    write_manifest(folder, [(path, len(records))])


def _boxes_by_name(folder, extension):
    dataset = build_dataset(folder, training=True, batch_size=1, image_size=(30, 40), deterministic=True,
                            seed=0, augment=False, face_box_top_extension=extension)
    result = {}
    for batch in dataset:
        name = batch['filenames'][0].numpy().decode()
        faces = batch['boxes'][0, :batch['num_boxes'][0]].numpy()
        ignore = batch['ignore_boxes'][0, :batch['num_ignore'][0]].numpy()
        result[name] = (faces, ignore)
    return result


def test_pipeline_moves_face_tops_and_leaves_ignore_regions(tmp_path):
    records = [('a.jpg', [[0.5, 0.1, 0.9, 0.3], [0.1, 0.5, 0.6, 0.9]], [[0.4, 0.4, 0.6, 0.6]]),
               ('b.jpg', np.zeros((0, 4)), [[0.2, 0.2, 0.4, 0.4]])]
    _write_records(str(tmp_path), records)
    plain = _boxes_by_name(str(tmp_path), 0.0)
    extended = _boxes_by_name(str(tmp_path), 0.25)
    np.testing.assert_allclose(plain['a.jpg'][0], records[0][1], atol=1e-6)
    np.testing.assert_allclose(extended['a.jpg'][0], [[0.4, 0.1, 0.9, 0.3], [0.0, 0.5, 0.6, 0.9]], atol=1e-6)
    for name in ('a.jpg', 'b.jpg'):
        np.testing.assert_array_equal(extended[name][1], plain[name][1])
    assert extended['b.jpg'][0].shape == (0, 4)


def test_pipeline_augments_the_extended_boxes(tmp_path):
    """With augmentation on, the pipeline's result is augment() applied to the extended boxes."""
    records = [('a.jpg', [[0.5, 0.1, 0.9, 0.3], [0.1, 0.5, 0.6, 0.9]], np.zeros((0, 4)))]
    _write_records(str(tmp_path), records)
    with_rule = next(iter(build_dataset(str(tmp_path), training=True, batch_size=1, image_size=(30, 40),
                                        deterministic=True, seed=3, face_box_top_extension=0.25)))
    relabelled = [('a.jpg', [[0.4, 0.1, 0.9, 0.3], [0.0, 0.5, 0.6, 0.9]], np.zeros((0, 4)))]
    other = tmp_path / 'relabelled'
    other.mkdir()
    _write_records(str(other), relabelled)
    by_hand = next(iter(build_dataset(str(other), training=True, batch_size=1, image_size=(30, 40),
                                      deterministic=True, seed=3)))
    np.testing.assert_allclose(with_rule['boxes'].numpy(), by_hand['boxes'].numpy(), atol=1e-6)
    np.testing.assert_array_equal(with_rule['images'].numpy(), by_hand['images'].numpy())


def test_pipeline_rejects_a_bad_extension(tmp_path):
    _write_records(str(tmp_path), [('a.jpg', [[0.5, 0.1, 0.9, 0.3]], np.zeros((0, 4)))])
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match='face_box_top_extension'):
            build_dataset(str(tmp_path), training=True, batch_size=1, image_size=(30, 40),
                          face_box_top_extension=bad)
