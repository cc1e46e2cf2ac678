"""Tests for src/evaluation/fddb.py, evaluate_fddb.py and predict_for_fddb.py.

Hand-counted shapes used below (image pixels, x = column, y = row):

* Ellipse E: major 4 (vertical, angle pi/2), minor 2, centre (5, 6). OpenCV fills 33 pixels:
  row 2: x 5; row 3: x 4..6; rows 4..8: x 3..7; row 9: x 4..6; row 10: x 5 (1+3+25+3+1).
  Shifted by whole pixels it keeps that shape.
* Rectangle R25 = (left 3, top 4, width 4, height 4): x 3..7, y 4..8, 25 pixels, all inside E:
  overlap 25 / 33 = 0.757576 (a discrete TP).
* Rectangle R45 = (3, 2, 4, 8): x 3..7, y 2..10, 45 pixels holding all of E:
  overlap 33 / 45 = 0.733333 (a discrete TP).
* Rectangle R18 = (2, 4, 5, 2): x 2..7, y 4..6, 18 pixels, 15 inside E (rows 4..6, x 3..7):
  overlap 15 / (33 + 18 - 15) = 15 / 36 = 0.416667 (a discrete FP).
"""
import math
import os

import cv2
import numpy as np
import pytest
from PIL import Image

import evaluate_fddb
import predict_for_fddb
from src.datasets import fddb_format
from src.evaluation import fddb

HALF_PI = math.pi / 2
E = [4.0, 2.0, HALF_PI, 5.0, 6.0]
E_ROWS = {2: (5, 5), 3: (4, 6), 4: (3, 7), 5: (3, 7), 6: (3, 7), 7: (3, 7), 8: (3, 7),
          9: (4, 6), 10: (5, 5)}
R25 = [3.0, 4.0, 4.0, 4.0]
R45 = [3.0, 2.0, 4.0, 8.0]
R18 = [2.0, 4.0, 5.0, 2.0]


def shifted_ellipse(dx, dy=0):
    return [E[0], E[1], E[2], E[3] + dx, E[4] + dy]


def shifted_rect(rect, dx, dy=0, score=1.0):
    return [rect[0] + dx, rect[1] + dy, rect[2], rect[3], score]


def full_mask(ellipse, height, width):
    x0, y0, mask = fddb.rasterize_ellipse(ellipse, height, width)
    out = np.zeros((height, width), dtype=np.uint8)
    out[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    return out


# ---------------------------------------------------------------- rasterization


def test_two_by_two_rectangle_covers_nine_pixels():
    _, areas = fddb.rectangle_extents(np.array([[2.0, 3.0, 2.0, 2.0, 0.9]]), 10, 10)
    assert areas.tolist() == [9]
    drawn = np.zeros((10, 10), np.uint8)
    cv2.rectangle(drawn, (2, 3), (4, 5), 1, -1)
    assert drawn.sum() == 9


def test_rectangle_clipped_and_rounded():
    rects = np.array([[8.0, 8.0, 6.0, 7.0],     # x 8..9, y 8..9 inside a 10x10 image: 4
                      [-5.0, -5.0, 4.0, 4.0],   # entirely outside: 0
                      [2.6, 0.0, 1.8, 0.0],     # x rint(2.6)=3 .. rint(4.4)=4, y 0..0: 2
                      [-3.0, 2.0, 5.0, 1.0]])   # x -3..2 clipped to 0..2, y 2..3: 6
    extents, areas = fddb.rectangle_extents(rects, 10, 10)
    assert areas.tolist() == [4, 0, 2, 6]
    assert extents[0].tolist() == [8, 8, 9, 9]


def test_ellipse_pixels_hand_counted():
    mask = full_mask(E, 14, 12)
    assert mask.sum() == 33
    for y in range(14):
        xs = np.flatnonzero(mask[y])
        if y in E_ROWS:
            assert (xs.min(), xs.max(), len(xs)) == (E_ROWS[y][0], E_ROWS[y][1],
                                                    E_ROWS[y][1] - E_ROWS[y][0] + 1)
        else:
            assert len(xs) == 0


def test_ellipse_drawing_rounds_angle_truncates_radii_rounds_centre():
    # 0.2 degrees off, radii 4.9/2.9 and centre 5.4/6.4 all draw the same 33 pixels.
    variant = [4.9, 2.9, HALF_PI + math.radians(0.2), 5.4, 6.4]
    np.testing.assert_array_equal(full_mask(variant, 14, 12), full_mask(E, 14, 12))


def test_ellipse_clipped_by_image():
    # E centred on x = 0: only its columns x 0..2 remain: 9 + 7 + 5 pixels.
    mask = full_mask(shifted_ellipse(-5), 14, 12)
    assert mask.sum() == 21
    assert fddb.rasterize_ellipse([4, 2, HALF_PI, -50, 6], 14, 12)[2].size == 0


def test_overlaps_match_whole_image_drawing():
    rng = np.random.default_rng(3)
    for _ in range(25):
        height, width = (int(v) for v in rng.integers(20, 80, 2))
        ellipses = np.stack([rng.uniform(4, 30, 3), rng.uniform(2, 15, 3), rng.uniform(-3, 3, 3),
                             rng.uniform(-5, width + 5, 3), rng.uniform(-5, height + 5, 3)], 1)
        rects = np.stack([rng.uniform(-15, width, 4), rng.uniform(-15, height, 4),
                          rng.uniform(1, 40, 4), rng.uniform(1, 40, 4), rng.uniform(0, 1, 4)], 1)
        overlaps = fddb.overlap_matrix(ellipses, rects, height, width)
        for e, ellipse in enumerate(ellipses):
            a = full_mask(ellipse, height, width).astype(bool)
            for d, (left, top, w, h, _) in enumerate(rects):
                b = np.zeros((height, width), np.uint8)
                cv2.rectangle(b, (int(np.rint(left)), int(np.rint(top))),
                              (int(np.rint(left + w)), int(np.rint(top + h))), 1, -1)
                b = b.astype(bool)
                union = (a | b).sum()
                expected = (a & b).sum() / union if union else 0.0
                assert overlaps[e, d] == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- overlaps and matching


def test_hand_counted_overlaps():
    rects = np.array([R25 + [0.9], R45 + [0.8], R18 + [0.7]])
    overlaps = fddb.overlap_matrix([E], rects, 14, 12)
    np.testing.assert_allclose(overlaps[0], [25 / 33, 33 / 45, 15 / 36])


def test_detection_rows_of_the_wrong_width_are_rejected():
    # Six-column (ellipse) rows given as rectangles must not be silently reshaped.
    with pytest.raises(ValueError, match=r"image 'x': detections must have shape \[N, 5\], got \(5, 6\)"):
        fddb.evaluate_image(fddb.FddbImage('x', 14, 12, np.array([E]), np.ones((5, 6))))


def test_ellipse_detections_overlap():
    # The same ellipse detected exactly: overlap 1. Shifted by 2 columns: E's columns 3..7 hold
    # 5, 7, 9, 7, 5 pixels; columns 5, 6, 7 are shared with min(9, 5) + 7 + min(5, 9) = 17
    # pixels, union 33 + 33 - 17 = 49.
    dets = np.array([E + [0.9], shifted_ellipse(2) + [0.5]])
    overlaps = fddb.overlap_matrix([E], dets, 14, 14, detection_ellipses=True)
    np.testing.assert_allclose(overlaps[0], [1.0, 17 / 49])


def image(ellipses, detections, height=14, width=40, name='img'):
    return fddb.FddbImage(name=name, height=height, width=width,
                          ellipses=np.asarray(ellipses, dtype=np.float64).reshape(-1, 5),
                          detections=np.asarray(detections, dtype=np.float64).reshape(-1, 5))


def test_discrete_fp_at_0_42_and_tp_at_0_73():
    # Two faces: the first found at 15/36 (a discrete FP adding 0.4167 continuous), the second
    # at 33/45 (a discrete TP adding 0.7333).
    img = image([E, shifted_ellipse(10)], [R18 + [0.9], shifted_rect(R45, 10, score=0.8)])
    counts = fddb.evaluate_image(img)
    np.testing.assert_allclose(counts.thresholds, [0.8, 0.9])
    assert counts.tp_discrete.tolist() == [1, 0]
    assert counts.false_positives.tolist() == [1, 1]
    np.testing.assert_allclose(counts.tp_continuous, [15 / 36 + 33 / 45, 15 / 36])


def test_one_detection_covering_two_faces_matches_one():
    # Faces at x 3..7 and x 9..13; the box x 3..13, y 2..10 has 99 pixels and overlaps each
    # face 33/99: only one of them is matched.
    img = image([E, shifted_ellipse(6)], [[3.0, 2.0, 10.0, 8.0, 0.9]])
    counts = fddb.evaluate_image(img)
    assert counts.tp_discrete.tolist() == [0]
    assert counts.false_positives.tolist() == [1]
    np.testing.assert_allclose(counts.tp_continuous, [1 / 3])


def test_two_detections_on_one_face_better_one_matched():
    img = image([E], [R45 + [0.9], R25 + [0.8]])
    counts = fddb.evaluate_image(img)
    assert counts.tp_discrete.tolist() == [1, 1]
    assert counts.false_positives.tolist() == [1, 0]
    # At 0.8 both are kept and the better (25/33) wins; at 0.9 only R45 (33/45) exists.
    np.testing.assert_allclose(counts.tp_continuous, [25 / 33, 33 / 45])


def test_lower_threshold_changes_matching():
    # At 0.9 only the poor box exists (FP); at 0.5 the good box appears and takes the face.
    img = image([E], [R18 + [0.9], R25 + [0.5]])
    counts = fddb.evaluate_image(img)
    assert counts.tp_discrete.tolist() == [1, 0]
    assert counts.false_positives.tolist() == [1, 1]
    np.testing.assert_allclose(counts.tp_continuous, [25 / 33, 15 / 36])


def test_optimal_assignment_beats_greedy():
    # Greedy would pair d0 with f0 (0.8) and leave f1 unmatched; the optimum pairs d0-f1 and
    # d1-f0 (0.6 + 0.7): two discrete TPs.
    counts = fddb.match_image(np.array([[0.8, 0.7], [0.6, 0.0]]), np.array([0.9, 0.9]))
    assert counts.tp_discrete.tolist() == [2]
    np.testing.assert_allclose(counts.tp_continuous, [1.3])
    assert counts.false_positives.tolist() == [0]


def test_zero_overlap_pairs_are_not_matches():
    counts = fddb.match_image(np.zeros((2, 3)), np.array([0.3, 0.2, 0.1]))
    assert counts.tp_discrete.tolist() == [0, 0, 0]
    assert counts.false_positives.tolist() == [3, 2, 1]
    assert counts.tp_continuous.tolist() == [0.0, 0.0, 0.0]


def test_image_without_faces_every_detection_is_fp():
    img = image([], [R25 + [0.9], R45 + [0.9], R18 + [0.2]])
    counts = fddb.evaluate_image(img)
    assert counts.false_positives.tolist() == [3, 2]
    assert counts.tp_discrete.tolist() == [0, 0]


# ---------------------------------------------------------------- ROC


def test_perfect_detections_tpr_one_zero_fp():
    faces = [[E, shifted_ellipse(10)], [E], [shifted_ellipse(20)]]
    scores = [[0.9, 0.6], [0.8], [0.7]]
    images = [image(f, [shifted_rect(R25, e[3] - 5, score=s) for e, s in zip(f, sc)], name='i%d' % k)
              for k, (f, sc) in enumerate(zip(faces, scores))]
    curve = fddb.evaluate(images)
    np.testing.assert_allclose(curve.thresholds, [0.6, 0.7, 0.8, 0.9])
    assert curve.false_positives.tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(curve.tpr_discrete, [1.0, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(curve.tpr_continuous, np.array([4, 3, 2, 1]) * 25 / 33 / 4)
    assert not curve.has_sentinel
    assert fddb.tpr_at_false_positives(curve) == 1.0


def test_roc_combines_images_at_their_smallest_score_above_threshold():
    a = fddb.ImageCounts(thresholds=np.array([0.5, 0.9]), tp_discrete=np.array([2, 1]),
                         tp_continuous=np.array([1.5, 0.8]), false_positives=np.array([3, 0]))
    b = fddb.ImageCounts(thresholds=np.array([0.7]), tp_discrete=np.array([1]),
                         tp_continuous=np.array([0.6]), false_positives=np.array([4]))
    empty = fddb.ImageCounts(np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    curve = fddb.roc_curve([a, b, empty], num_faces=4)
    # t=0.5: a@0.5 + b@0.7; t=0.7: a@0.9 + b@0.7; t=0.9: a@0.9 only; then the sentinel row.
    assert curve.thresholds[:3].tolist() == [0.5, 0.7, 0.9]
    assert curve.false_positives.tolist() == [7, 4, 0, 0]
    np.testing.assert_allclose(curve.tpr_discrete, [0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(curve.tpr_continuous, [2.1 / 4, 1.4 / 4, 0.8 / 4, 0.0])
    assert curve.has_sentinel
    disc, cont = fddb.format_roc(curve)
    assert disc.splitlines() == ['0.75 7 0.5', '0.5 4 0.7', '0.25 0 0.9', '0 0 1.79769e+308']
    assert cont.splitlines() == ['0.525 7', '0.35 4', '0.2 0', '0 0']


def test_tpr_at_1000_fp_takes_largest_fp_not_above_1000():
    curve = fddb.RocCurve(thresholds=np.array([0.1, 0.2, 0.3, 0.4]),
                          tpr_discrete=np.array([0.95, 0.91, 0.90, 0.80]),
                          tpr_continuous=np.zeros(4), false_positives=np.array([1200, 1000, 1000, 400]),
                          num_faces=10, has_sentinel=False)
    assert fddb.tpr_at_false_positives(curve) == 0.91
    assert fddb.tpr_at_false_positives(curve, 999) == 0.80
    assert fddb.tpr_at_false_positives(curve, 100) == 0.0


# ---------------------------------------------------------------- files and scripts


def _save_image(path, height, width, mode='RGB'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new(mode, (width, height), 128).save(path)


def _problem_files(tmp_path):
    root = str(tmp_path)
    _save_image(os.path.join(root, 'pics', 'a', 'img_1.jpg'), 14, 40)
    _save_image(os.path.join(root, 'pics', 'a', 'img_2.jpg'), 14, 12)
    fddb_format.write_ellipse_list(os.path.join(root, 'ell.txt'),
                                   [('a/img_1', np.array([E, shifted_ellipse(10)])),
                                    ('a/img_2', np.array([E]))])
    fddb_format.write_fold_list(os.path.join(root, 'list.txt'), ['a/img_1', 'a/img_2'])
    fddb_format.write_detections(os.path.join(root, 'det.txt'),
                                 [('a/img_1', np.array([R18 + [0.9], shifted_rect(R45, 10, score=0.8)]))])
    return root


def test_evaluate_script_writes_official_files(tmp_path, capsys):
    root = _problem_files(tmp_path)
    prefix = os.path.join(root, 'out', '')
    code = evaluate_fddb.main(['-a', os.path.join(root, 'ell.txt'), '-d', os.path.join(root, 'det.txt'),
                               '-i', os.path.join(root, 'pics'), '-l', os.path.join(root, 'list.txt'),
                               '-r', prefix])
    assert code == 0
    with open(prefix + 'DiscROC.txt') as f:
        # 3 faces; img_2 has no detections, hence the closing sentinel row.
        assert f.read().splitlines() == ['%g 1 0.8' % (1 / 3), '0 1 0.9', '0 0 1.79769e+308']
    with open(prefix + 'ContROC.txt') as f:
        assert f.read().splitlines() == ['%g 1' % ((15 / 36 + 33 / 45) / 3), '%g 1' % (15 / 36 / 3), '0 0']
    assert os.path.getsize(prefix + 'ROC.png') > 0
    continuous = (15 / 36 + 33 / 45) / 3
    assert 'discrete TPR 0.3333, continuous %.4f at 1000 false positives' % continuous in capsys.readouterr().out
    # Budgets of a partial FDDB: at 0 FP no row qualifies except the sentinel (TPR 0).
    code = evaluate_fddb.main(['-a', os.path.join(root, 'ell.txt'), '-d', os.path.join(root, 'det.txt'),
                               '-i', os.path.join(root, 'pics'), '-l', os.path.join(root, 'list.txt'),
                               '-r', prefix, '--no_plot', '--at_fp', '0,1', '--overwrite'])
    out = capsys.readouterr().out
    assert code == 0
    assert 'discrete TPR 0.0000, continuous 0.0000 at 0 false positives; discrete TPR 0.3333, continuous %.4f at 1 false' % continuous in out


def test_detection_for_unlisted_image_is_a_clear_error(tmp_path):
    root = _problem_files(tmp_path)
    fddb_format.write_detections(os.path.join(root, 'det.txt'),
                                 [('a/img_1', np.zeros((0, 5))), ('a/img_9', np.array([R25 + [0.5]]))])
    with pytest.raises(ValueError, match=r"det\.txt: detection entry 2 names image 'a/img_9' which "
                                         r"is not in the image list"):
        fddb.load_problem(os.path.join(root, 'ell.txt'), os.path.join(root, 'det.txt'),
                          os.path.join(root, 'pics'), os.path.join(root, 'list.txt'))


def test_missing_image_file_is_a_clear_error(tmp_path):
    root = _problem_files(tmp_path)
    os.remove(os.path.join(root, 'pics', 'a', 'img_2.jpg'))
    with pytest.raises(FileNotFoundError, match=r'img_2\.jpg: image not found'):
        fddb.load_problem(os.path.join(root, 'ell.txt'), os.path.join(root, 'det.txt'),
                          os.path.join(root, 'pics'), os.path.join(root, 'list.txt'))


class RecordingDetector:
    """Test double for FaceDetector: one fixed box per image, records what it was given."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, score_threshold=0.5, min_dimension=None):
        self.calls.append((image.shape, image.dtype, score_threshold, min_dimension))
        return np.array([[2.0, 3.0, 12.0, 8.0]], np.float32), np.array([0.75], np.float32)


def test_predict_for_fddb_with_test_double(tmp_path):
    root = str(tmp_path)
    folds = os.path.join(root, 'FDDB-folds')
    os.makedirs(folds)
    fold_names = [['2002/big/img_1', '2002/big/img_2'], ['2003/big/img_3']]
    for k, names in enumerate(fold_names, start=1):
        fddb_format.write_fold_list(os.path.join(folds, 'FDDB-fold-%02d.txt' % k), names)
        fddb_format.write_ellipse_list(os.path.join(folds, 'FDDB-fold-%02d-ellipseList.txt' % k),
                                       [(n, np.array([E])) for n in names])
    pics = os.path.join(root, 'originalPics')
    _save_image(os.path.join(pics, '2002/big/img_1.jpg'), 20, 30)
    _save_image(os.path.join(pics, '2002/big/img_2.jpg'), 16, 24, mode='L')  # grayscale
    os.makedirs(os.path.join(pics, '2003/big'))
    with open(os.path.join(pics, '2003/big/img_3.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    detector = RecordingDetector()
    out = os.path.join(root, 'result')
    summary = predict_for_fddb.run(detector, root, out, min_dimension=768)
    assert summary['images'] == 3 and summary['failed'] == 1 and summary['detections'] == 2
    assert [c[0] for c in detector.calls] == [(20, 30, 3), (16, 24, 3)]
    assert all(c[1] == np.uint8 and c[2] == 0.05 and c[3] == 768 for c in detector.calls)
    with open(os.path.join(out, 'detections.txt')) as f:
        lines = f.read().splitlines()
    assert lines == ['2002/big/img_1', '1', '3.000000 2.000000 5.000000 10.000000 0.750000',
                     '2002/big/img_2', '1', '3.000000 2.000000 5.000000 10.000000 0.750000',
                     '2003/big/img_3', '0']
    assert fddb_format.read_fold_list(os.path.join(out, 'faceList.txt')) == sum(fold_names, [])
    ellipses = fddb_format.read_ellipse_list(os.path.join(out, 'ellipseList.txt'))
    assert [n for n, _ in ellipses] == sum(fold_names, [])


def test_predict_detector_boxes_conversion():
    rows = predict_for_fddb.detector_boxes_to_fddb([[10.0, 20.0, 50.0, 45.0]], [0.5])
    np.testing.assert_allclose(rows, [[20.0, 10.0, 25.0, 40.0, 0.5]])
    with pytest.raises(ValueError, match='2 boxes but 1 scores'):
        predict_for_fddb.detector_boxes_to_fddb(np.zeros((2, 4)), [0.5])


def test_roc_equals_direct_evaluation_at_each_threshold():
    # At a global threshold t the detections an image contributes are exactly those scoring
    # >= t: re-match them from scratch for every row and compare.
    from scipy.optimize import linear_sum_assignment
    rng = np.random.default_rng(7)
    images = []
    for k in range(12):
        num_faces = int(rng.integers(0, 4))
        ellipses = np.stack([rng.uniform(8, 20, num_faces), rng.uniform(5, 8, num_faces),
                             rng.normal(HALF_PI, 0.2, num_faces), rng.uniform(0, 80, num_faces),
                             rng.uniform(0, 60, num_faces)], 1)
        rects = [[cx - b + rng.normal(0, 2), cy - a + rng.normal(0, 2), 2 * b, 2 * a, rng.uniform(0.3, 1)]
                 for a, b, _, cx, cy in ellipses for _ in range(2)]
        rects += [[rng.uniform(0, 80), rng.uniform(0, 60), 15, 18, rng.uniform(0, 0.5)] for _ in range(3)]
        rects = np.array(rects) if k != 3 else np.zeros((0, 5))
        if len(rects):
            rects[:, 4] = np.round(rects[:, 4], 1)  # ties between scores
        images.append(fddb.FddbImage('i%d' % k, 60, 80, ellipses, rects))
    curve = fddb.evaluate(images)
    assert curve.has_sentinel
    assert curve.tpr_discrete.max() > 0.5 and curve.false_positives.max() > 10  # not trivial
    num_faces = sum(len(i.ellipses) for i in images)
    for row, t in enumerate(curve.thresholds[:-1]):
        tp_d, tp_c, fp = 0, 0.0, 0
        for img in images:
            kept = img.detections[img.detections[:, 4] >= t]
            overlaps = fddb.overlap_matrix(img.ellipses, kept, img.height, img.width)
            r, c = linear_sum_assignment(overlaps, maximize=True)
            values = overlaps[r, c][overlaps[r, c] > 0]
            tp_d += int((values > 0.5).sum())
            tp_c += values.sum()
            fp += len(kept) - int((values > 0.5).sum())
        assert curve.false_positives[row] == fp
        assert curve.tpr_discrete[row] == pytest.approx(tp_d / num_faces)
        assert curve.tpr_continuous[row] == pytest.approx(tp_c / num_faces)
