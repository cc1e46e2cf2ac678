"""Readers and writers for the FDDB text formats.

Box conventions in this module (all pixels, float64):
  * ellipse: [major_r, minor_r, angle_rad, cx, cy], the major radius lies along ``angle``
    (radians, measured from the image x axis), as in ``FDDB-fold-XX-ellipseList.txt``;
  * box: [x1, y1, x2, y2], the axis-aligned bounding box of an ellipse;
  * detection: [left, top, width, height, score], the format of the official FDDB
    evaluation program (``detections.txt``).

File layouts:
  * fold list (``FDDB-fold-XX.txt``): one image path per line, without extension,
    e.g. ``2002/08/11/big/img_591``;
  * ellipse list: image path line, face count line, then per face
    ``major_r minor_r angle cx cy 1`` (the trailing 1 is optional when reading);
  * detections: image path line, detection count line, then per detection
    ``left top width height score``.
"""
import logging
import os

import numpy as np

from src.atomic_io import write_text_atomic

logger = logging.getLogger(__name__)

ELLIPSE_FIELDS = 5  # major_r, minor_r, angle, cx, cy
DETECTION_FIELDS = 5  # left, top, width, height, score
ELLIPSE_DETECTION_FIELDS = 6  # major_r, minor_r, angle, cx, cy, score (evaluator's -f 1)


def _read_lines(path):
    """Returns the lines of a text file, right-stripped, with trailing blank lines removed."""
    with open(path, 'r', encoding='utf-8') as f:
        lines = [line.rstrip('\r\n').strip() for line in f]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def read_fold_list(path):
    """Reads an FDDB fold file (or any image list in the same format).

    Args:
        path: str, e.g. ``FDDB-folds/FDDB-fold-01.txt``.

    Returns:
        list of str, image paths without extension in file order,
        e.g. ``['2002/08/11/big/img_591', ...]``.

    Raises:
        ValueError: ``"<file>:<line>: <problem>"`` for a line that is not a single path.
    """
    paths = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line:
            continue
        if len(line.split()) != 1:
            raise ValueError('%s:%d: expected one image path, got %r' % (path, number, line))
        paths.append(line)
    return paths


def _is_number(text):
    """True if `text` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_blocks(path, num_fields, allowed_extra, what, check=None):
    """Parses the common 'path line, count line, count record lines' layout.

    Args:
        path: str, file to read.
        num_fields: int, numbers kept per record line.
        allowed_extra: int, how many further trailing numbers a record line may carry
            (they are checked to be numbers and dropped).
        what: str, the record's name for error messages ('face', 'detection').
        check: optional callable(list of float) -> problem str or None, run on each record.

    Returns:
        list of (str, float64 np.ndarray [N, num_fields]).

    Raises:
        ValueError: ``"<file>:<line>: <problem>"``.
    """
    lines = _read_lines(path)
    items = []
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        image_line = lines[i]
        if len(image_line.split()) != 1:
            raise ValueError('%s:%d: expected an image path line, got %r' % (path, i + 1, image_line))
        if i + 1 >= len(lines):
            raise ValueError('%s:%d: file ends after image path %r, expected a %s count line'
                             % (path, i + 1, image_line, what))
        count_line = lines[i + 1]
        try:
            count = int(count_line)
        except ValueError:
            raise ValueError('%s:%d: expected a %s count (integer), got %r'
                             % (path, i + 2, what, count_line)) from None
        if count < 0:
            raise ValueError('%s:%d: negative %s count %d' % (path, i + 2, what, count))
        records = np.zeros((count, num_fields), dtype=np.float64)
        for k in range(count):
            number = i + 3 + k
            if number > len(lines):
                raise ValueError('%s:%d: file ends after %d of %d %s lines for %r'
                                 % (path, len(lines), k, count, what, image_line))
            fields = lines[number - 1].split()
            if len(fields) == 1 and not _is_number(fields[0]):  # an image path: the count promised more
                raise ValueError('%s:%d: the %s count says %d for %r, but %d %s line(s) follow before '
                                 'the next image path %r (line %d)' % (path, i + 2, what, count, image_line,
                                                                      k, what, lines[number - 1], number))
            if not num_fields <= len(fields) <= num_fields + allowed_extra:
                raise ValueError('%s:%d: expected %d numbers on a %s line, got %d in %r'
                                 % (path, number, num_fields, what, len(fields), lines[number - 1]))
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise ValueError('%s:%d: non-numeric value in %s line %r'
                                 % (path, number, what, lines[number - 1])) from None
            if not np.all(np.isfinite(values)):
                raise ValueError('%s:%d: non-finite value in %s line %r'
                                 % (path, number, what, lines[number - 1]))
            problem = check(values) if check is not None else None
            if problem:
                raise ValueError('%s:%d: %s in %s line %r' % (path, number, problem, what, lines[number - 1]))
            records[k] = values[:num_fields]
        items.append((image_line, records))
        i += 2 + count
    return items


def read_ellipse_list(path):
    """Reads an FDDB ellipse annotation file.

    Args:
        path: str, e.g. ``FDDB-folds/FDDB-fold-01-ellipseList.txt``.

    Returns:
        list of (image path without extension, float64 np.ndarray [N, 5]) with columns
        major_r, minor_r, angle (radians), cx, cy in pixels; N may be 0.

    Raises:
        ValueError: ``"<file>:<line>: <problem>"`` on malformed input (bad count, too few
            or too many numbers, non-numeric values, non-positive radii, early end of file).
    """
    return _parse_blocks(path, ELLIPSE_FIELDS, 1, 'face', check=_radius_problem)


def _radius_problem(values):
    """Returns a problem description for an ellipse with a non-positive radius, else None."""
    return 'non-positive ellipse radius' if min(values[0], values[1]) <= 0.0 else None


def _check_ellipses(ellipses):
    ellipses = np.asarray(ellipses, dtype=np.float64)
    if ellipses.ndim != 2 or ellipses.shape[1] < ELLIPSE_FIELDS:
        raise ValueError('ellipses must have shape [N, 5], got %s' % (ellipses.shape,))
    return ellipses


def ellipses_to_boxes(ellipses):
    """Exact axis-aligned bounding boxes of rotated ellipses.

    With a the major radius (lying along angle t), b the minor radius:
    half-width = sqrt(a^2 cos^2 t + b^2 sin^2 t), half-height = sqrt(a^2 sin^2 t + b^2 cos^2 t).

    Args:
        ellipses: float array [N, 5] (major_r, minor_r, angle_rad, cx, cy), pixels.
            Extra trailing columns (a score) are ignored.

    Returns:
        float64 np.ndarray [N, 4]: x1, y1, x2, y2 in pixels (not clipped to the image).
    """
    ellipses = _check_ellipses(ellipses)
    a, b, t, cx, cy = (ellipses[:, k] for k in range(ELLIPSE_FIELDS))
    cos2, sin2 = np.cos(t) ** 2, np.sin(t) ** 2
    half_w = np.sqrt(a * a * cos2 + b * b * sin2)
    half_h = np.sqrt(a * a * sin2 + b * b * cos2)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


def ellipses_to_boxes_upstream_approx(ellipses):
    """The upstream FaceBoxes repository's ellipse-to-box conversion (an approximation).

    The upstream ignored the rotation and treated every ellipse as unrotated with its major
    axis vertical: x1 = cx - minor, x2 = cx + minor, y1 = cy - major, y2 = cy + major. It is
    exact only for angle = +-pi/2; kept to reproduce upstream numbers.

    Args:
        ellipses: float array [N, 5] (major_r, minor_r, angle_rad, cx, cy), pixels.

    Returns:
        float64 np.ndarray [N, 4]: x1, y1, x2, y2 in pixels.
    """
    ellipses = _check_ellipses(ellipses)
    a, b, cx, cy = ellipses[:, 0], ellipses[:, 1], ellipses[:, 3], ellipses[:, 4]
    return np.stack([cx - b, cy - a, cx + b, cy + a], axis=1)


def read_detections(path, ellipses=False):
    """Reads a detections file in the official FDDB evaluator's format.

    Args:
        path: str, e.g. ``detections.txt``.
        ellipses: bool, False for rectangle detections (the evaluator's ``-f 0``,
            ``left top width height score``), True for ellipse detections (``-f 1``,
            ``major_r minor_r angle cx cy score``).

    Returns:
        list of (image path, float64 np.ndarray [N, 5] left, top, width, height, score),
        or [N, 6] for ellipse detections; N may be 0.

    Raises:
        ValueError: ``"<file>:<line>: <problem>"`` on malformed input.
    """
    fields = ELLIPSE_DETECTION_FIELDS if ellipses else DETECTION_FIELDS
    return _parse_blocks(path, fields, 0, 'detection')


def _format_blocks(items, num_fields, trailer, what):
    lines = []
    for image, records in items:
        records = np.asarray(records, dtype=np.float64)
        if records.size == 0:
            records = np.zeros((0, num_fields))
        if records.ndim != 2 or records.shape[1] != num_fields:
            raise ValueError('%s list item %r: expected an array [N, %d], got shape %s'
                             % (what, image, num_fields, records.shape))
        if len(str(image).split()) != 1:
            raise ValueError('%s list item %r: image path must be one token without spaces' % (what, image))
        lines.append(str(image))
        lines.append(str(len(records)))
        for row in records:
            lines.append(' '.join('%.6f' % v for v in row) + trailer)
    return '\n'.join(lines) + ('\n' if lines else '')


def write_detections(path, items):
    """Writes detections in the official FDDB evaluator's format, atomically.

    Args:
        path: str, output file.
        items: iterable of (image path without extension, float array [N, 5] left, top,
            width, height, score in pixels); N may be 0 (the count line is then 0).
    """
    write_text_atomic(path, _format_blocks(items, DETECTION_FIELDS, '', 'detection'))


def write_ellipse_detections(path, items):
    """Writes ellipse detections (the official evaluator's ``-f 1`` format), atomically.

    Args:
        path: str, output file.
        items: iterable of (image path without extension, float array [N, 6] major_r, minor_r,
            angle_rad, cx, cy, score in pixels); N may be 0.
    """
    write_text_atomic(path, _format_blocks(items, ELLIPSE_DETECTION_FIELDS, '', 'ellipse detection'))


def write_ellipse_list(path, items):
    """Writes an FDDB ellipse annotation file, atomically.

    Args:
        path: str, output file.
        items: iterable of (image path, float array [N, 5] major_r, minor_r, angle_rad,
            cx, cy); each face line gets the customary trailing ``1``.
    """
    write_text_atomic(path, _format_blocks(items, ELLIPSE_FIELDS, '  1', 'ellipse'))


def write_fold_list(path, image_paths):
    """Writes an image list (one path without extension per line), atomically.

    Args:
        path: str, output file.
        image_paths: iterable of str.
    """
    image_paths = list(image_paths)
    write_text_atomic(path, ''.join('%s\n' % p for p in image_paths))


def find_fold_files(folds_dir):
    """Lists the FDDB fold files of an ``FDDB-folds`` folder in fold order.

    Args:
        folds_dir: str, folder holding ``FDDB-fold-XX.txt`` and ``FDDB-fold-XX-ellipseList.txt``.

    Returns:
        list of (fold list path, ellipse list path) sorted by fold number.

    Raises:
        FileNotFoundError: when no fold file exists, or a fold has no ellipse list.
    """
    if not os.path.isdir(folds_dir):
        raise FileNotFoundError('%s: FDDB folds folder not found' % folds_dir)
    folds = []
    for name in os.listdir(folds_dir):
        stem, ext = os.path.splitext(name)
        if ext != '.txt' or not stem.startswith('FDDB-fold-') or stem.endswith('-ellipseList'):
            continue
        number = stem[len('FDDB-fold-'):]
        if not number.isdigit():
            continue
        ellipse_path = os.path.join(folds_dir, stem + '-ellipseList.txt')
        if not os.path.isfile(ellipse_path):
            raise FileNotFoundError('%s: missing ellipse list for fold %s' % (ellipse_path, number))
        folds.append((int(number), os.path.join(folds_dir, name), ellipse_path))
    if not folds:
        raise FileNotFoundError('%s: no FDDB-fold-XX.txt files found' % folds_dir)
    return [(fold, ellipse) for _, fold, ellipse in sorted(folds)]
