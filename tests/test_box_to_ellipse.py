"""Tests for src/evaluation/box_to_ellipse.py: the FDDB rectangle -> ellipse regressor, its
leave-one-fold-out fitting and its command line."""
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

import evaluate_fddb
from src.datasets import fddb_format
from src.evaluation import box_to_ellipse, fddb

# Two regressors with clearly different numbers, to tell which one a fold received.
TRUE_A = box_to_ellipse.EllipseRegressor(major_scale=0.65, minor_scale=0.54, dx=0.01, dy=-0.13, num_pairs=0)
TRUE_B = box_to_ellipse.EllipseRegressor(major_scale=0.72, minor_scale=0.50, dx=-0.02, dy=-0.20, num_pairs=0)


def faces_from_boxes(regressor, rectangles):
    """Annotations that `regressor` maps `rectangles` [N, 4] onto exactly ([N, 5])."""
    rectangles = np.asarray(rectangles, np.float64)
    scored = np.concatenate([rectangles, np.ones((len(rectangles), 1))], axis=1)
    return regressor.apply(scored)[:, :5]


def test_apply_by_hand():
    ellipses = TRUE_A.apply([[10.0, 20.0, 40.0, 50.0, 0.9], [0.0, 0.0, 100.0, 200.0, 0.3]])
    np.testing.assert_allclose(ellipses, [
        [0.65 * 50, 0.54 * 40, math.pi / 2, 10 + 40 * 0.51, 20 + 50 * 0.37, 0.9],
        [0.65 * 200, 0.54 * 100, math.pi / 2, 100 * 0.51, 200 * 0.37, 0.3]])
    assert TRUE_A.apply(np.zeros((0, 5))).shape == (0, 6)


def test_fit_recovers_the_coefficients_exactly():
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(0, 300, (30, 2)), rng.uniform(10, 120, (30, 2))], axis=1)
    fitted = box_to_ellipse.fit(boxes, faces_from_boxes(TRUE_B, boxes))
    assert fitted.num_pairs == 30
    for name in ('major_scale', 'minor_scale', 'dx', 'dy'):
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE_B, name), abs=1e-12)


def test_fit_is_least_squares_through_the_origin():
    # Heights 10 and 20 with major radii 7 and 12: sum(h * r) / sum(h^2) = (70 + 240) / 500.
    boxes = [[0, 0, 10, 10], [0, 0, 10, 20]]
    faces = [[7, 5, 1.5, 5, 5], [12, 5, 1.5, 5, 10]]
    assert box_to_ellipse.fit(boxes, faces).major_scale == pytest.approx(310 / 500)


def test_fit_without_pairs_is_an_error():
    with pytest.raises(ValueError, match='no matched'):
        box_to_ellipse.fit(np.zeros((0, 4)), np.zeros((0, 5)))
    with pytest.raises(ValueError, match='2 rectangles but 1 ellipses'):
        box_to_ellipse.fit(np.ones((2, 4)), np.ones((1, 5)))


def image_with(name, boxes, regressor, scores, extra=()):
    """An FddbImage whose faces are `regressor`(boxes), detected as `boxes` plus `extra` rows."""
    boxes = np.asarray(boxes, np.float64)
    detections = np.concatenate([boxes, np.asarray(scores, np.float64)[:, None]], axis=1)
    if len(extra):
        detections = np.concatenate([detections, np.asarray(extra, np.float64)], axis=0)
    return fddb.FddbImage(name=name, height=200, width=300, ellipses=faces_from_boxes(regressor, boxes),
                          detections=detections)


def test_matched_pairs_keep_confident_overlapping_detections_one_to_one():
    image = image_with('a', [[20, 30, 60, 80], [150, 40, 50, 60]], TRUE_A, [0.9, 0.2],
                       extra=[[22, 32, 60, 80, 0.8],      # a second box on face 1: not matched twice
                              [240, 140, 40, 40, 0.95]])  # far from every face: overlap 0
    rectangles, ellipses = box_to_ellipse.matched_pairs([image], min_score=0.5, min_overlap=0.3)
    # Face 2's detection scores 0.2 (< min_score); face 1 keeps exactly one of its two boxes.
    assert rectangles.shape == (1, 4) and ellipses.shape == (1, 5)
    np.testing.assert_allclose(ellipses[0], image.ellipses[0])
    assert rectangles[0].tolist() in ([20, 30, 60, 80], [22, 32, 60, 80])
    # Every pair is dropped when min_overlap exceeds what a box and its ellipse share.
    assert len(box_to_ellipse.matched_pairs([image], 0.5, 0.99)[0]) == 0


def test_cross_validation_applies_to_each_fold_what_the_other_folds_fit():
    rng = np.random.default_rng(1)

    def boxes():
        return np.concatenate([rng.uniform(60, 160, (3, 2)), rng.uniform(40, 80, (3, 2))], axis=1)

    # Fold 1's faces follow TRUE_A, fold 2's TRUE_B: a fold fitted on itself would get its own.
    images = [image_with('f1_%d' % i, boxes(), TRUE_A, [0.9] * 3) for i in range(2)]
    images += [image_with('f2_%d' % i, boxes(), TRUE_B, [0.9] * 3) for i in range(2)]
    fold_of = {image.name: 1 if image.name.startswith('f1') else 2 for image in images}
    converted, regressors = box_to_ellipse.cross_validate(images, fold_of, min_score=0.5, min_overlap=0.1)
    assert regressors[1].major_scale == pytest.approx(TRUE_B.major_scale, abs=1e-12)
    assert regressors[2].dy == pytest.approx(TRUE_A.dy, abs=1e-12)
    assert regressors[1].num_pairs == regressors[2].num_pairs == 6
    for image, original in zip(converted, images):
        other = TRUE_B if fold_of[image.name] == 1 else TRUE_A
        assert image.name == original.name and image.detections.shape == (3, 6)
        np.testing.assert_allclose(image.detections, other.apply(original.detections), atol=1e-9)


def test_cross_validation_errors():
    image = image_with('x', [[60, 60, 50, 60]], TRUE_A, [0.9])
    with pytest.raises(ValueError, match="'x' belongs to no fold"):
        box_to_ellipse.cross_validate([image], {})
    with pytest.raises(ValueError, match='at least two folds'):
        box_to_ellipse.cross_validate([image], {'x': 1})
    weak = image_with('y', [[60, 60, 50, 60]], TRUE_A, [0.1])
    with pytest.raises(ValueError, match='fold 1 left out: no matched'):
        box_to_ellipse.cross_validate([image, weak], {'x': 1, 'y': 2})


def write_fddb_predictions(root):
    """A two-fold FDDB layout and predict_for_fddb-style outputs whose boxes follow TRUE_A."""
    rng = np.random.default_rng(2)
    os.makedirs(os.path.join(root, 'FDDB-folds'))
    predictions = os.path.join(root, 'pred')
    os.makedirs(predictions)
    names, annotations, detections = [], [], []
    for fold in (1, 2):
        fold_names = ['2002/07/0%d/big/img_%d' % (fold, i) for i in range(3)]
        fold_annotations = []
        for name in fold_names:
            os.makedirs(os.path.join(root, 'originalPics', os.path.dirname(name)), exist_ok=True)
            Image.new('RGB', (300, 200)).save(os.path.join(root, 'originalPics', name + '.jpg'))
            boxes = np.concatenate([rng.uniform(20, 180, (2, 1)), rng.uniform(30, 100, (2, 1)),
                                    np.full((2, 1), 50.0), rng.uniform(50, 70, (2, 1))], axis=1)
            boxes[1, 0] += 60  # side by side, never overlapping
            fold_annotations.append((name, faces_from_boxes(TRUE_A, boxes)))
            detections.append((name, np.concatenate([boxes, [[0.9], [0.7]]], axis=1)))
        fddb_format.write_fold_list(os.path.join(root, 'FDDB-folds', 'FDDB-fold-%02d.txt' % fold), fold_names)
        fddb_format.write_ellipse_list(
            os.path.join(root, 'FDDB-folds', 'FDDB-fold-%02d-ellipseList.txt' % fold), fold_annotations)
        names += fold_names
        annotations += fold_annotations
    fddb_format.write_detections(os.path.join(predictions, 'detections.txt'), detections)
    fddb_format.write_fold_list(os.path.join(predictions, 'faceList.txt'), names)
    fddb_format.write_ellipse_list(os.path.join(predictions, 'ellipseList.txt'), annotations)
    return predictions


def test_command_line_writes_ellipse_detections_the_evaluator_scores(tmp_path, capsys):
    predictions = write_fddb_predictions(str(tmp_path))
    out = str(tmp_path / 'ellipses')
    args = ['--predictions', predictions, '--folds_dir', str(tmp_path / 'FDDB-folds'), '--output_dir', out]
    assert box_to_ellipse.main(args) == 0
    assert 'fold 01: fitted on 6 pairs' in capsys.readouterr().out
    fitted = json.load(open(os.path.join(out, 'regressors.json')))
    assert sorted(fitted) == ['fold 01 left out', 'fold 02 left out']
    assert fitted['fold 02 left out']['major_scale'] == pytest.approx(TRUE_A.major_scale, abs=1e-5)
    detections = fddb_format.read_detections(os.path.join(out, 'detections.txt'), ellipses=True)
    assert len(detections) == 6 and all(rows.shape == (2, 6) for _, rows in detections)
    # The ellipses are the faces again (to the files' 6 decimals), so every face is found.
    assert evaluate_fddb.main(['-f', '1', '-a', os.path.join(out, 'ellipseList.txt'),
                               '-d', os.path.join(out, 'detections.txt'), '-i', str(tmp_path / 'originalPics'),
                               '-l', os.path.join(out, 'faceList.txt'), '-r', out + '/', '--no_plot',
                               '--at_fp', '0']) == 0
    assert 'discrete TPR 1.0000, continuous 1.0000 at 0 false positives' in capsys.readouterr().out


def test_command_line_errors_are_one_line(tmp_path, capsys):
    predictions = write_fddb_predictions(str(tmp_path))
    folds = str(tmp_path / 'FDDB-folds')
    out = str(tmp_path / 'ellipses')
    base = ['--predictions', predictions, '--folds_dir', folds, '--output_dir', out]
    assert box_to_ellipse.main(base) == 0
    capsys.readouterr()
    cases = [
        (base, 'ellipses/detections.txt: already exists; pass --overwrite'),
        (['--predictions', str(tmp_path / 'none'), '--folds_dir', folds, '--output_dir', out],
         'none/detections.txt: not found (run predict_for_fddb.py'),
        (['--predictions', predictions, '--folds_dir', folds, '--output_dir', predictions],
         '--output_dir: must differ from --predictions'),
        (base + ['--overwrite', '--min_overlap', '1.5'], '--min_overlap: expected a value in [0, 1]'),
        (['--predictions', predictions, '--folds_dir', str(tmp_path / 'nofolds'), '--output_dir', out,
          '--overwrite'], 'nofolds: FDDB folds folder not found'),
    ]
    for args, message in cases:
        assert box_to_ellipse.main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and err.startswith('error: ') and message in err, err
    assert box_to_ellipse.main(base + ['--overwrite']) == 0
