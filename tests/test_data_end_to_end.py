"""Official layouts -> JSON -> tfrecords -> the input pipeline's eval dataset, against the generator's truth.

Truth: pixels x1, y1, x2, y2. Pipeline output: [ymin, xmin, ymax, xmax] normalized.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

import create_tfrecords as ct
from prepare_data import make_sample_dataset as sample
from prepare_data import prepare_fddb as pf
from prepare_data import prepare_wider as pw
from src.input_pipeline.pipeline import build_dataset


@pytest.mark.parametrize("part", ["wider", "fddb"])
def test_official_layout_to_eval_batches(tmp_path, part):
    root = str(tmp_path / "sample")
    truth = sample.make_sample_dataset(root, seed=21, num_train=4 if part == "wider" else 0, num_val=0,
                                       num_fddb=3 if part == "fddb" else 0, image_size=256)
    prepared = str(tmp_path / "prepared")
    if part == "wider":
        counts = pw.prepare_wider(os.path.join(root, "WIDER"), prepared, splits=("train",), show_progress=False)
        expected = {relpath.replace("/", "_"): boxes for relpath, boxes in truth["wider"]["train"].items()}
    else:
        counts = pf.prepare_fddb(os.path.join(root, "FDDB"), prepared, folds=[1, 2, 3], show_progress=False)
        expected = {path.replace("/", "_") + ".jpg": boxes for path, boxes in truth["fddb"].items()}
    assert counts["images"] == len(expected)
    shards = str(tmp_path / "shards")
    written = ct.create_tfrecords(os.path.join(prepared, "images"), os.path.join(prepared, "annotations"), shards, 2,
                                  seed=0, show_progress=False)
    assert written["written"] == len(expected)

    seen = set()
    for batch in build_dataset(shards, training=False, batch_size=1, image_size=None):
        name = batch["filenames"].numpy()[0].decode()
        seen.add(name)
        image = batch["images"].numpy()[0]
        height, width = image.shape[:2]
        with open(os.path.join(prepared, "images", name), "rb") as f:
            decoded = tf.io.decode_jpeg(f.read(), channels=3).numpy()
        assert decoded.shape == image.shape  # no resize in evaluation
        np.testing.assert_allclose(image, decoded / 255.0, atol=1e-6)
        boxes = np.array(expected[name], np.float64).reshape(-1, 4)  # x1, y1, x2, y2 pixels
        normalized = boxes[:, [1, 0, 3, 2]] / [height, width, height, width]
        num = int(batch["num_boxes"].numpy()[0])
        assert num == len(boxes)
        got = batch["boxes"].numpy()[0]
        # The FDDB truth passes through six printed decimals of the ellipse file.
        np.testing.assert_allclose(got[:num], normalized, atol=1e-6 if part == "wider" else 1e-6 + 1e-4 / 256)
        assert np.all(got[num:] == 0)
    assert seen == set(expected)
    if part == "wider":  # image 3 of each WIDER split has no face
        assert any(len(b) == 0 for b in expected.values())
