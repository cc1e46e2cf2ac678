"""Tests for src/evaluation/wider.py: WIDER-style AP on tiny cases with hand-derived answers."""
import logging
import os

import numpy as np
import pytest
from scipy.io import savemat

from src.datasets.wider_format import WiderEntry
from src.evaluation import wider

G1 = [10.0, 10.0, 20.0, 20.0]
G2 = [100.0, 100.0, 30.0, 30.0]


def entry(relpath, boxes, invalid=None):
    rows = np.zeros((len(boxes), 10))
    rows[:, :4] = boxes
    if invalid is not None:
        rows[:, wider.INVALID_COLUMN] = invalid
    return WiderEntry(relpath, rows)


def test_iou_matrix_values():
    # Boxes [0,0,10,10] and [5,0,10,10] share 50 of 150 pixels.
    iou = wider.iou_matrix([[0, 0, 10, 10]], [[5, 0, 10, 10], [0, 0, 10, 10], [20, 20, 5, 5]])
    np.testing.assert_allclose(iou, [[1 / 3, 1.0, 0.0]])


def test_ap_tiny_case_known_answer():
    # Scores 0.9, 0.8, 0.7 normalise to 1, 0.5, 0. Detections: hit G1, miss, hit G2.
    # Thresholds in (0.5, 1): P 1, R 0.5; in (0, 0.5]: P 0.5, R 0.5; at 0: P 2/3, R 1.
    # Envelope: precision 1 up to recall 0.5, then 2/3: AP = 0.5 * 1 + 0.5 * 2/3 = 5/6.
    gt = wider.ground_truth_from_entries([entry('0--Parade/a.jpg', [G1, G2])])
    dets = {'0--Parade/a.jpg': np.array([G1 + [0.9], [300, 300, 10, 10, 0.8], G2 + [0.7]])}
    result = wider.evaluate_ap(gt, dets)
    assert result.ap == pytest.approx(5 / 6)
    assert result.num_faces == 2 and result.num_detections == 3
    assert result.precision[0] == 1.0 and result.recall[0] == 0.5
    assert result.precision[-1] == pytest.approx(2 / 3) and result.recall[-1] == 1.0


def test_duplicate_detection_is_false_positive():
    # Second detection on G1 is a FP: at the lowest threshold P = 1/2, R = 1 (one face):
    # the envelope keeps precision 1 at recall 1: AP 1. With a second face never found the
    # recall stops at 1/2: AP 0.5.
    gt = wider.ground_truth_from_entries([entry('e/a.jpg', [G1])])
    dets = {'e/a.jpg': np.array([G1 + [0.9], G1 + [0.5]])}
    result = wider.evaluate_ap(gt, dets)
    assert result.ap == pytest.approx(1.0)
    assert result.precision[-1] == pytest.approx(0.5)
    gt2 = wider.ground_truth_from_entries([entry('e/a.jpg', [G1, G2])])
    assert wider.evaluate_ap(gt2, dets).ap == pytest.approx(0.5)


def test_detection_on_ignored_face_is_neither_tp_nor_fp():
    # G2 is flagged invalid: ignored. The detection on it does not lower the precision.
    gt = wider.ground_truth_from_entries([entry('e/a.jpg', [G1, G2], invalid=[0, 1])])
    dets = {'e/a.jpg': np.array([G2 + [0.9], G1 + [0.5]])}
    result = wider.evaluate_ap(gt, dets)
    assert result.num_faces == 1
    assert result.ap == pytest.approx(1.0)
    assert result.precision[-1] == 1.0
    counted_all = wider.ground_truth_from_entries([entry('e/a.jpg', [G1, G2], invalid=[0, 1])],
                                                  ignore_invalid=False)
    assert wider.evaluate_ap(counted_all, dets).num_faces == 2


def test_degenerate_boxes_dropped_and_missing_images_counted():
    gt = wider.ground_truth_from_entries([entry('e/a.jpg', [G1, [5, 5, 0, 10]]), entry('e/b.jpg', [G2])])
    assert len(gt[0].boxes) == 1
    result = wider.evaluate_ap(gt, {'e/a.jpg': np.array([G1 + [0.3]])})
    assert result.images_without_detections == 1
    assert result.ap == pytest.approx(0.5)


def _write_submission(root, relpath, rows, name=None):
    path = os.path.join(root, os.path.splitext(relpath)[0] + '.txt')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('%s\n%d\n' % (name or os.path.basename(relpath)[:-4], len(rows)))
        for row in rows:
            f.write('%g %g %g %g %g\n' % tuple(row))
    return path


def test_submission_folder_and_absent_mat_files_reported(tmp_path, caplog):
    det_dir = os.path.join(str(tmp_path), 'dets')
    _write_submission(det_dir, '0--Parade/a.jpg', [G1 + [0.9], [300, 300, 10, 10, 0.8], G2 + [0.7]])
    entries = [entry('0--Parade/a.jpg', [G1, G2])]
    with caplog.at_level(logging.WARNING):
        report = wider.evaluate_wider(entries, det_dir, mat_dir=str(tmp_path))
    assert report.overall.ap == pytest.approx(5 / 6)
    assert not report.settings_available and report.settings == {}
    assert 'wider_face_val.mat' in report.message
    assert 'absent' in caplog.text


def test_submission_file_errors(tmp_path):
    path = os.path.join(str(tmp_path), 'a.txt')
    with open(path, 'w') as f:
        f.write('a\n2\n1 2 3 4 0.5\n')
    with pytest.raises(ValueError, match=r'a\.txt:4: expected 2 detection lines, found 1'):
        wider.read_submission_file(path)
    with open(path, 'w') as f:
        f.write('a\n1\n1 2 3 0.5\n')
    with pytest.raises(ValueError, match=r'a\.txt:3: expected 5 finite numbers'):
        wider.read_submission_file(path)
    detections, missing, bad = wider.read_submission_dir(str(tmp_path), ['a.jpg', 'b.jpg'])
    assert (detections, missing, bad) == ({}, 1, 1)


def _cell(items):
    array = np.empty((len(items), 1), dtype=object)
    for k, item in enumerate(items):
        array[k, 0] = item
    return array


def test_mat_settings_easy_medium_hard(tmp_path):
    # One event, one image with faces G1 and G2. easy counts only G2, medium only G1,
    # hard both. Detections: G1 at 0.9, G2 at 0.7.
    root = str(tmp_path)
    savemat(os.path.join(root, 'wider_face_val.mat'), {
        'event_list': _cell([np.array(['0--Parade'])]),
        'file_list': _cell([_cell([np.array(['a'])])]),
        'face_bbx_list': _cell([_cell([np.array([G1, G2])])]),
    })
    for setting, keep in (('easy', [2]), ('medium', [1]), ('hard', [1, 2])):
        savemat(os.path.join(root, 'wider_%s_val.mat' % setting),
                {'gt_list': _cell([_cell([np.array(keep, dtype=np.float64).reshape(-1, 1)])])})
    dets = {'0--Parade/a.jpg': np.array([G1 + [0.9], G2 + [0.7]])}
    report = wider.evaluate_wider([entry('0--Parade/a.jpg', [G1, G2])], dets, mat_dir=root)
    assert report.settings_available and report.message == ''
    assert {k: v.num_faces for k, v in report.settings.items()} == {'easy': 1, 'medium': 1, 'hard': 2}
    # Each setting ignores the other face's detection, so precision stays 1: AP 1 throughout.
    assert [report.settings[k].ap for k in wider.SETTINGS] == pytest.approx([1.0, 1.0, 1.0])


def test_mat_gt_list_index_out_of_range(tmp_path):
    root = str(tmp_path)
    savemat(os.path.join(root, 'wider_face_val.mat'), {
        'event_list': _cell([np.array(['e'])]), 'file_list': _cell([_cell([np.array(['a'])])]),
        'face_bbx_list': _cell([_cell([np.array([G1])])])})
    for setting in wider.SETTINGS:
        savemat(os.path.join(root, 'wider_%s_val.mat' % setting),
                {'gt_list': _cell([_cell([np.array([[3.0]])])])})
    with pytest.raises(ValueError, match=r'wider_easy_val\.mat: gt_list of e/a has a face index outside 1\.\.1'):
        wider.load_mat_ground_truth(root)
