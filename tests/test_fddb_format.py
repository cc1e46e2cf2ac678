"""Tests for src/datasets/fddb_format.py: parsing, round trips, errors, ellipse boxes."""
import math
import os

import numpy as np
import pytest

from src.datasets import fddb_format as ff

ELLIPSE_TEXT = """2002/08/11/big/img_591
1
123.583300 85.549500 1.265839 269.693400 161.781200  1
2002/08/26/big/img_265
3
67.363819 44.511485 -1.476417 105.249970 87.209036  1
41.936870 27.064477 1.471906 184.070915 129.345601  1
70.993052 43.355200 1.370217 340.894300 117.498951  1
"""


def _write(tmp_path, name, text):
    path = os.path.join(str(tmp_path), name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def test_read_fold_list(tmp_path):
    path = _write(tmp_path, 'fold.txt', '2002/08/11/big/img_591\n2002/08/26/big/img_265\n\n')
    assert ff.read_fold_list(path) == ['2002/08/11/big/img_591', '2002/08/26/big/img_265']


def test_read_fold_list_rejects_two_tokens(tmp_path):
    path = _write(tmp_path, 'fold.txt', 'a/b\nc d\n')
    with pytest.raises(ValueError, match=r'fold\.txt:2: expected one image path'):
        ff.read_fold_list(path)


def test_read_ellipse_list_values(tmp_path):
    items = ff.read_ellipse_list(_write(tmp_path, 'e.txt', ELLIPSE_TEXT))
    assert [name for name, _ in items] == ['2002/08/11/big/img_591', '2002/08/26/big/img_265']
    assert items[0][1].dtype == np.float64 and items[0][1].shape == (1, 5)
    assert items[1][1].shape == (3, 5)
    np.testing.assert_array_equal(items[0][1][0], [123.5833, 85.5495, 1.265839, 269.6934, 161.7812])
    assert items[1][1][0, 2] == -1.476417


def test_ellipse_list_round_trip(tmp_path):
    items = ff.read_ellipse_list(_write(tmp_path, 'e.txt', ELLIPSE_TEXT))
    items.append(('2003/01/01/big/img_1', np.zeros((0, 5))))
    out = os.path.join(str(tmp_path), 'out.txt')
    ff.write_ellipse_list(out, items)
    again = ff.read_ellipse_list(out)
    assert [n for n, _ in again] == [n for n, _ in items]
    for (_, a), (_, b) in zip(items, again):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert again[-1][1].shape == (0, 5)
    assert not [f for f in os.listdir(str(tmp_path)) if f.endswith('.tmp')]


@pytest.mark.parametrize('text, line, problem', [
    ('img_1\nx\n', 2, 'expected a face count'),
    ('img_1\n2\n1 1 0 5 5 1\n', 3, 'file ends after 1 of 2 face lines'),
    ('img_1\n1\n1 1 0 5\n', 3, 'expected 5 numbers'),
    ('img_1\n1\n1 1 0 5 5 1 7\n', 3, 'expected 5 numbers'),
    ('img_1\n1\n1 1 zero 5 5 1\n', 3, 'non-numeric'),
    ('img_1\n1\n1 1 0 5 5 1\n\nimg_2\n1\n1 -1 0 5 5 1\n', 7, 'non-positive ellipse radius'),
    ('img_1\n1\n1 1 0 5 5 1\n3 4\n', 4, 'expected an image path line'),
    ('img_1\n-1\n', 2, 'negative face count'),
    ('img_1\n', 1, 'file ends after image path'),
])
def test_read_ellipse_list_errors_name_file_and_line(tmp_path, text, line, problem):
    path = _write(tmp_path, 'bad.txt', text)
    with pytest.raises(ValueError) as info:
        ff.read_ellipse_list(path)
    message = str(info.value)
    assert message.startswith('%s:%d: ' % (path, line)), message
    assert problem in message


def test_detections_round_trip_and_zero_count(tmp_path):
    items = [('2002/08/11/big/img_591', np.array([[10.5, 20.25, 30.0, 40.0, 0.99], [0, 0, 5, 5, 0.05]])),
             ('2002/08/26/big/img_265', np.zeros((0, 5)))]
    path = os.path.join(str(tmp_path), 'detections.txt')
    ff.write_detections(path, items)
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[:3] == ['2002/08/11/big/img_591', '2', '10.500000 20.250000 30.000000 40.000000 0.990000']
    assert lines[-2:] == ['2002/08/26/big/img_265', '0']
    again = ff.read_detections(path)
    assert again[1][1].shape == (0, 5)
    np.testing.assert_allclose(again[0][1], items[0][1])


def test_read_detections_error_line(tmp_path):
    path = _write(tmp_path, 'd.txt', 'a\n1\n1 2 3 4 0.5\nb\n2\n1 2 3 4 0.5\n1 2 3 4\n')
    with pytest.raises(ValueError, match=r'd\.txt:7: expected 5 numbers on a detection line'):
        ff.read_detections(path)


def test_read_detections_ellipse_format(tmp_path):
    path = _write(tmp_path, 'd.txt', 'a\n1\n20 10 1.5 50 60 0.9\n')
    (_, dets), = ff.read_detections(path, ellipses=True)
    np.testing.assert_array_equal(dets, [[20, 10, 1.5, 50, 60, 0.9]])


def test_ellipses_to_boxes_exact_values():
    # a = 20 along t = pi/3, b = 10: half-width sqrt(400/4 + 100*3/4) = sqrt(175),
    # half-height sqrt(400*3/4 + 100/4) = sqrt(325).
    boxes = ff.ellipses_to_boxes([[20.0, 10.0, math.pi / 3, 100.0, 50.0],
                                  [20.0, 10.0, 0.0, 0.0, 0.0],
                                  [20.0, 10.0, math.pi / 2, 0.0, 0.0]])
    np.testing.assert_allclose(boxes[0], [100 - 175 ** 0.5, 50 - 325 ** 0.5, 100 + 175 ** 0.5, 50 + 325 ** 0.5])
    np.testing.assert_allclose(boxes[1], [-20, -10, 20, 10])
    np.testing.assert_allclose(boxes[2], [-10, -20, 10, 20], atol=1e-12)


def test_ellipses_to_boxes_touches_sampled_outline():
    # The box of the first FDDB fold-01 face must equal the extent of its sampled outline.
    a, b, t, cx, cy = 123.5833, 85.5495, 1.265839, 269.6934, 161.7812
    phi = np.linspace(0, 2 * np.pi, 200001)
    xs = cx + a * np.cos(phi) * np.cos(t) - b * np.sin(phi) * np.sin(t)
    ys = cy + a * np.cos(phi) * np.sin(t) + b * np.sin(phi) * np.cos(t)
    box = ff.ellipses_to_boxes([[a, b, t, cx, cy]])[0]
    np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max(), ys.max()], atol=1e-6)
    np.testing.assert_allclose(box, [180.050817, 41.133961, 359.335983, 282.428439], atol=1e-6)


def test_upstream_approx_ignores_rotation():
    boxes = ff.ellipses_to_boxes_upstream_approx([[123.5833, 85.5495, 1.265839, 269.6934, 161.7812]])
    np.testing.assert_allclose(boxes[0], [269.6934 - 85.5495, 161.7812 - 123.5833,
                                          269.6934 + 85.5495, 161.7812 + 123.5833])


def test_ellipses_to_boxes_bad_shape():
    with pytest.raises(ValueError, match=r'\[N, 5\]'):
        ff.ellipses_to_boxes(np.zeros((3, 4)))


def test_find_fold_files_orders_by_number(tmp_path):
    for k in (10, 2):
        _write(tmp_path, 'FDDB-fold-%02d.txt' % k, 'a\n')
        _write(tmp_path, 'FDDB-fold-%02d-ellipseList.txt' % k, 'a\n0\n')
    folds = ff.find_fold_files(str(tmp_path))
    assert [os.path.basename(f) for f, _ in folds] == ['FDDB-fold-02.txt', 'FDDB-fold-10.txt']
    os.remove(os.path.join(str(tmp_path), 'FDDB-fold-10-ellipseList.txt'))
    with pytest.raises(FileNotFoundError, match='missing ellipse list'):
        ff.find_fold_files(str(tmp_path))
