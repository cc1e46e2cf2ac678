"""Ignore regions end to end: JSON, tfrecords, augmentations, matching and OHEM."""
import json

import numpy as np
import pytest
import tensorflow as tf

from src import anchor_generator, box_utils
from src.annotations import Annotation, read_annotation, write_annotation
from src.input_pipeline import augmentations as aug
from src.input_pipeline.parse import parse_example
from src.losses_and_ohem import OHEMParams, mine_hard_examples, ohem_losses
from src.tfrecords import IGNORE_BOX_KEYS, encode_example
from src.training_target_creation import (BACKGROUND, IGNORE_IOU_THRESHOLD, IGNORED,
                                          create_targets, match_anchors)

ANCHORS_1024 = None


def anchors_1024():
    global ANCHORS_1024
    if ANCHORS_1024 is None:
        ANCHORS_1024 = anchor_generator.generate_anchors(1024, 1024)[0]
    return ANCHORS_1024


def test_annotation_json_round_trip_and_upstream_files_unchanged(tmp_path):
    path = str(tmp_path / "a.json")
    write_annotation(path, Annotation("a.jpg", 100, 80, 3, [[1, 2, 30, 40]], [[50, 10, 70, 30.5]]))
    again = read_annotation(path)
    np.testing.assert_array_equal(again.ignore_boxes, [[50, 10, 70, 30.5]])
    assert json.load(open(path))["ignore"][0]["name"] == "ignore"
    # Without regions the file is exactly the upstream format: no "ignore" key.
    write_annotation(path, Annotation("a.jpg", 100, 80, 3, [[1, 2, 30, 40]]))
    assert "ignore" not in json.load(open(path))
    assert read_annotation(path).ignore_boxes.shape == (0, 4)


def test_annotation_rejects_bad_ignore_entries(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"filename": "a.jpg", "size": {"width": 9, "height": 9},
                                "object": [], "ignore": [{"bndbox": {"xmin": 1, "ymin": 1, "xmax": "x", "ymax": 2}}]}))
    with pytest.raises(ValueError, match=r"bad.json: ignore 0 bndbox.xmax must be a finite number"):
        read_annotation(str(path))


def test_tfrecord_round_trip_of_ignore_regions():
    boxes = np.array([[0.1, 0.2, 0.3, 0.4]])
    ignore = np.array([[0.5, 0.5, 0.75, 0.625], [0.0, 0.0, 0.25, 0.5]])
    parsed = parse_example(encode_example("x.jpg", b"jpeg", boxes, ignore))
    np.testing.assert_allclose(parsed["boxes"].numpy(), boxes)
    np.testing.assert_allclose(parsed["ignore_boxes"].numpy(), ignore)
    # A record without regions carries no ignore_* feature at all (upstream schema) and
    # parses to [0, 4].
    record = encode_example("x.jpg", b"jpeg", boxes)
    example = tf.train.Example.FromString(record)
    assert not set(IGNORE_BOX_KEYS) & set(example.features.feature.keys())
    assert parse_example(record)["ignore_boxes"].shape == (0, 4)


def test_matching_marks_anchors_on_ignore_regions():
    anchors = anchors_1024()
    face = np.array([[100, 100, 164, 164]], np.float32) / 1024.0
    region = np.array([[500, 300, 540, 340]], np.float32) / 1024.0
    matches = match_anchors(anchors, face[None], tf.constant([1]), ignore_boxes=region[None],
                            num_ignore=tf.constant([1])).numpy()[0]
    plain = match_anchors(anchors, face[None], tf.constant([1])).numpy()[0]
    # Face matches are untouched.
    np.testing.assert_array_equal(matches >= 0, plain >= 0)
    # Expected ignored anchors, computed independently.
    a = anchors.numpy()
    iou = box_utils.iou(tf.constant(region), anchors).numpy()[0]
    cy, cx = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
    inside = (cy >= region[0, 0]) & (cy <= region[0, 2]) & (cx >= region[0, 1]) & (cx <= region[0, 3])
    expected = ((iou >= IGNORE_IOU_THRESHOLD) | inside) & (plain < 0)
    assert expected.sum() > 10  # densified 32 px anchors around a 40 px region
    np.testing.assert_array_equal(matches == IGNORED, expected)
    assert set(np.unique(matches)) == {IGNORED, BACKGROUND, 0}


def test_face_matches_win_over_an_overlapping_ignore_region():
    anchors = anchors_1024()
    face = np.array([[[200, 200, 264, 264]]], np.float32) / 1024.0
    matches_face_only = match_anchors(anchors, face, tf.constant([1])).numpy()[0]
    matches = match_anchors(anchors, face, tf.constant([1]), ignore_boxes=face,
                            num_ignore=tf.constant([1])).numpy()[0]
    np.testing.assert_array_equal(matches[matches_face_only >= 0], 0)
    assert np.all(matches[matches_face_only < 0] != 0)
    # Padded ignore rows (beyond num_ignore) do nothing.
    padded = match_anchors(anchors, face, tf.constant([1]), ignore_boxes=face,
                           num_ignore=tf.constant([0])).numpy()[0]
    np.testing.assert_array_equal(padded, matches_face_only)


def test_create_targets_zero_regression_for_ignored_anchors():
    anchors = anchors_1024()
    region = np.array([[[500, 300, 540, 340]]], np.float32) / 1024.0
    matches, targets = create_targets(anchors, tf.zeros([1, 0, 4]), tf.constant([0]),
                                      ignore_boxes=region, num_ignore=tf.constant([1]))
    assert np.all(matches.numpy() <= BACKGROUND) and (matches.numpy() == IGNORED).any()
    assert not np.any(targets.numpy())


def test_ohem_never_mines_ignored_anchors():
    n = 100
    x = np.arange(n, dtype=np.float32) / n
    boxes = np.stack([np.zeros(n), x, np.full(n, 0.5), x + 0.5 / n], axis=1)[None].astype(np.float32)
    losses = np.arange(n, dtype=np.float32)[None]  # anchor 99 is the hardest
    is_ignored = np.zeros([1, n], bool)
    is_ignored[0, 70:] = True  # the 30 hardest are ignored
    selected, num_pos, num_neg = mine_hard_examples(
        tf.zeros([1, n]), tf.constant(losses), tf.constant(boxes), tf.zeros([1, n], tf.bool),
        OHEMParams(), tf.constant(is_ignored))
    assert (int(num_pos[0]), int(num_neg[0])) == (0, 30)
    assert set(np.flatnonzero(selected.numpy()[0])) == set(range(40, 70))


def test_ignored_anchors_add_no_loss_and_no_gradient():
    anchors = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]])
    matches = tf.constant([[0, IGNORED, BACKGROUND]])
    targets = tf.zeros([1, 3, 4])
    logits = tf.Variable([[[0.0, 0.0], [-5.0, 5.0], [1.0, 0.0]]])
    with tf.GradientTape() as tape:
        out = ohem_losses(tf.zeros([1, 3, 4]), logits, anchors, matches, targets, OHEMParams())
    gradient = tape.gradient(out["classification_loss"], logits).numpy()
    assert np.all(gradient[0, 1] == 0.0) and np.any(gradient[0, 0] != 0.0)
    # The same batch with the ignored anchor as background: its (large) loss counts.
    with tf.GradientTape() as tape:
        background = ohem_losses(tf.zeros([1, 3, 4]), logits, anchors,
                                 tf.constant([[0, BACKGROUND, BACKGROUND]]), targets, OHEMParams())
    assert float(background["classification_loss"]) > float(out["classification_loss"]) + 5.0


def test_crop_keeps_every_region_that_touches_the_window():
    window = tf.constant([0.2, 0.2, 0.8, 0.8])
    regions = tf.constant([[0.1, 0.1, 0.25, 0.25],   # 1/9 inside: a face would be dropped
                           [0.85, 0.85, 0.9, 0.9],   # outside
                           [0.3, 0.3, 0.5, 0.5]])    # inside
    kept = aug.crop_ignore_boxes(regions, window).numpy()
    np.testing.assert_allclose(kept, [[0.0, 0.0, 0.05 / 0.6, 0.05 / 0.6],
                                      [0.1 / 0.6, 0.1 / 0.6, 0.3 / 0.6, 0.3 / 0.6]], atol=1e-6)
    faces, _ = aug.crop_boxes_to_window(regions, window)
    assert faces.shape[0] == 1  # faces follow the upstream 0.4 overlap rule
    np.testing.assert_array_equal(aug.crop_ignore_boxes(regions, tf.constant([0., 0., 1., 1.])).numpy(),
                                  regions.numpy()[[0, 1, 2]])


def test_augment_moves_ignore_regions_with_the_pixels():
    """A region identical to a face ends where the face ends (up to the face's 1% jitter)."""
    image = np.zeros([200, 300, 3], np.float32)
    boxes = np.array([[0.3, 0.2, 0.6, 0.45], [0.5, 0.6, 0.9, 0.9]], np.float32)
    flips = crops = 0
    for index in range(30):
        seed = tf.constant([index, 3])
        out, new_boxes, new_ignore = aug.augment(tf.constant(image), tf.constant(boxes), (64, 64), seed,
                                                 ignore_boxes=tf.constant(boxes))
        new_boxes, new_ignore = new_boxes.numpy(), new_ignore.numpy()
        assert new_ignore.shape[0] >= new_boxes.shape[0]
        if new_boxes.shape[0] == new_ignore.shape[0]:
            size = np.tile(new_boxes[:, 2:] - new_boxes[:, :2], 2)
            assert np.all(np.abs(new_boxes - new_ignore) <= 0.0101 * size + 1e-6)
        flips += int(new_ignore[0, 1] > 0.5)
        crops += int(new_ignore.shape[0] > new_boxes.shape[0] or np.any(new_ignore[0] != boxes[0]))
    assert flips > 0 and crops > 0
    # Without regions the result is the same as before their introduction (empty [0, 4]).
    _, _, none = aug.augment(tf.constant(image), tf.constant(boxes), (64, 64), tf.constant([1, 1]))
    assert none.shape == (0, 4)


def test_split_partial_faces_by_hand():
    window = tf.constant([0.0, 0.0, 0.5, 0.5])
    boxes = tf.constant([[0.1, 0.1, 0.2, 0.2],     # inside: a face
                         [0.1, 0.4, 0.2, 0.6],     # half inside: 0.5
                         [0.3, 0.36, 0.4, 0.56],   # 0.14 / 0.2 = 0.7 inside
                         [0.45, 0.45, 0.55, 0.65], # 0.05 * 0.05 / (0.1 * 0.2) = 0.125 inside
                         [0.6, 0.6, 0.7, 0.7]])    # outside
    faces, partial = aug.split_partial_faces(boxes, window, 0.6)
    np.testing.assert_allclose(faces.numpy(), [[0.2, 0.2, 0.4, 0.4], [0.6, 0.72, 0.8, 1.0]], atol=1e-6)
    np.testing.assert_allclose(partial.numpy(), [[0.2, 0.8, 0.4, 1.0], [0.9, 0.9, 1.0, 1.0]], atol=1e-6)
    # The upstream rule (0.4) keeps the half-visible face as a face and drops the 0.125 one.
    upstream, _ = aug.crop_boxes_to_window(boxes, window)
    np.testing.assert_allclose(upstream.numpy(), [[0.2, 0.2, 0.4, 0.4], [0.2, 0.8, 0.4, 1.0],
                                                  [0.6, 0.72, 0.8, 1.0]], atol=1e-6)
    # min_visible 1: only the face entirely inside stays one.
    faces, partial = aug.split_partial_faces(boxes, window, 1.0)
    assert faces.shape == (1, 4) and partial.shape == (3, 4)


def test_crop_faces_and_ignore_boxes_upstream_uncropped_and_partial():
    window = tf.constant([0.0, 0.0, 0.5, 0.5])
    boxes = tf.constant([[0.1, 0.1, 0.2, 0.2], [0.1, 0.4, 0.2, 0.6]])
    regions = tf.constant([[0.0, 0.0, 0.1, 0.1]])
    yes, no = tf.constant(True), tf.constant(False)
    # None: the upstream rule; faces first, then the regions as crop_ignore_boxes leaves them.
    faces, ignore = aug.crop_faces_and_ignore_boxes(boxes, regions, window, yes)
    assert faces.shape == (2, 4)
    np.testing.assert_allclose(ignore.numpy(), [[0.0, 0.0, 0.2, 0.2]], atol=1e-6)
    faces, ignore = aug.crop_faces_and_ignore_boxes(boxes, regions, window, yes, 0.6)
    np.testing.assert_allclose(faces.numpy(), [[0.2, 0.2, 0.4, 0.4]], atol=1e-6)
    np.testing.assert_allclose(ignore.numpy(), [[0.0, 0.0, 0.2, 0.2], [0.2, 0.8, 0.4, 1.0]], atol=1e-6)
    # Not cropped: the faces as they are, whatever the rule (the window is the whole image).
    for rule in (None, 0.6):
        faces, ignore = aug.crop_faces_and_ignore_boxes(boxes, regions, tf.constant([0., 0., 1., 1.]), no, rule)
        np.testing.assert_array_equal(faces.numpy(), boxes.numpy())
        np.testing.assert_array_equal(ignore.numpy(), regions.numpy())


def test_augment_turns_partly_cropped_faces_into_ignore_regions():
    """Over many crops: with the rule every face cut below 60% visibility reappears as an ignore
    region, so faces + regions = every face touching the window; without it they vanish or stay faces."""
    image = np.zeros([200, 200, 3], np.float32)
    grid = np.array([[y, x, y + 0.2, x + 0.2] for y in (0.05, 0.4, 0.75) for x in (0.05, 0.4, 0.75)], np.float32)
    moved = 0
    for index in range(20):
        seed = tf.constant([index, 7])
        _, up_faces, up_ignore = aug.augment(tf.constant(image), tf.constant(grid), (64, 64), seed)
        _, faces, ignore = aug.augment(tf.constant(image), tf.constant(grid), (64, 64), seed,
                                       partial_face_ignore_below=0.6)
        _, window, cropped = aug.sample_crop_window(tf.constant([200, 200, 3]), tf.constant(grid),
                                                    aug.split_step_seeds(seed).crop)
        window = window.numpy()
        inter = (np.clip(np.minimum(grid[:, 2:], window[2:]) - np.maximum(grid[:, :2], window[:2]), 0, None)
                 .prod(axis=1))
        visible = inter / 0.04
        # Windows and boxes sit on the 1/200 pixel grid, so a face can be exactly 0.4 or 0.6
        # inside; such ties may fall either way in float32, so they count on both sides.
        def at_least(threshold):
            return int(np.sum(visible >= threshold + 1e-4)), int(np.sum(visible > threshold - 1e-4))
        assert up_ignore.shape == (0, 4)
        low, high = at_least(0.6)
        assert low <= faces.shape[0] <= high
        assert faces.shape[0] + ignore.shape[0] == int(np.sum(visible > 1e-4))
        low, high = at_least(0.4)
        assert low <= up_faces.shape[0] <= high
        moved += ignore.shape[0]
    assert moved > 0
