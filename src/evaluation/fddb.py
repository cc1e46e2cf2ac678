"""FDDB evaluation (discrete and continuous ROC) without the official C++ program.

Conventions (all pixels): annotations are ellipses ``[major_r, minor_r, angle_rad, cx, cy]``
(major radius along ``angle``); rectangle detections are ``[left, top, width, height, score]``;
ellipse detections are ``[major_r, minor_r, angle_rad, cx, cy, score]``. Pixel extents below
are inclusive integer ``[x1, y1, x2, y2]``.

Semantics follow the FDDB technical report (Jain & Learned-Miller, 2010) and its reference
program:

* Overlap: each annotated ellipse and each detection is filled on an image-sized pixel grid
  (so both are clipped to the image) and the overlap is ``|A n D| / |A u D|`` in pixels.
  An ellipse is drawn with its angle converted to degrees and rounded to a whole degree,
  its radii truncated to integers and its centre rounded; a rectangle covers the pixels from
  its rounded top-left corner to its rounded bottom-right corner ``(left + width,
  top + height)`` inclusive (what ``cv2.ellipse`` / ``cv2.rectangle`` with thickness -1 draw).
  Only the bounding region of each shape is rasterized.
* Matching: per image and per distinct detection score ``s`` (ascending), the detections
  scoring ``>= s`` are matched one-to-one to the ellipses maximising the summed overlap.
  We use the optimal assignment (``scipy.optimize.linear_sum_assignment``); the reference
  program's own assignment routine is occasionally sub-optimal on small problems, so rare
  images can differ from it. Pairs with zero overlap are not matches.
* Counts at ``s``: continuous TP = sum of matched overlaps; discrete TP = matched pairs with
  overlap strictly above 0.5; FP = kept detections minus discrete TP.
* ROC: the thresholds are all distinct scores over all images; at a global threshold ``t``
  each image contributes its counts at its smallest distinct score ``>= t`` (nothing when
  it has no detection ``>= t``); TPRs divide by the number of annotated faces.
"""
import dataclasses
import logging
import os

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from src.atomic_io import write_text_atomic
from src.datasets import fddb_format

logger = logging.getLogger(__name__)

# A matched pair counts as a discrete true positive above this overlap (FDDB report).
DISCRETE_OVERLAP_THRESHOLD = 0.5
# The reference program ends its ROC with this threshold (C's DBL_MAX) when some image has
# no detection at all.
SENTINEL_THRESHOLD = np.finfo(np.float64).max
# The headline number: true positive rate at this many false positives.
REPORT_FALSE_POSITIVES = 1000


@dataclasses.dataclass(frozen=True)
class FddbImage:
    """One image of an FDDB evaluation problem.

    Attributes:
        name: str, image path without extension (e.g. '2002/08/11/big/img_591').
        height: int, image height in pixels.
        width: int, image width in pixels.
        ellipses: float64 [E, 5] annotated faces (major_r, minor_r, angle_rad, cx, cy).
        detections: float64 [D, 5] rectangles (left, top, width, height, score), or [D, 6]
            ellipses (major_r, minor_r, angle_rad, cx, cy, score).
    """

    name: str
    height: int
    width: int
    ellipses: np.ndarray
    detections: np.ndarray


@dataclasses.dataclass(frozen=True)
class ImageCounts:
    """Per-image counts at each of its distinct detection scores.

    Attributes:
        thresholds: float64 [M], the image's distinct scores, ascending.
        tp_discrete: int64 [M], matched pairs with overlap > 0.5 at each threshold.
        tp_continuous: float64 [M], summed overlap of the matched pairs.
        false_positives: int64 [M], kept detections minus discrete TP.
    """

    thresholds: np.ndarray
    tp_discrete: np.ndarray
    tp_continuous: np.ndarray
    false_positives: np.ndarray


@dataclasses.dataclass(frozen=True)
class RocCurve:
    """The discrete and continuous ROC, one row per threshold, lowest threshold first.

    Attributes:
        thresholds: float64 [T], distinct scores ascending (the sentinel row, when present,
            is the last one with threshold SENTINEL_THRESHOLD and zero counts).
        tpr_discrete: float64 [T].
        tpr_continuous: float64 [T].
        false_positives: int64 [T].
        num_faces: int, annotated faces (the TPR denominator).
        has_sentinel: bool, True when some image has no detection at all.
    """

    thresholds: np.ndarray
    tpr_discrete: np.ndarray
    tpr_continuous: np.ndarray
    false_positives: np.ndarray
    num_faces: int
    has_sentinel: bool


def _as_rows(array, columns, what):
    """Returns ``array`` as float64 [N, columns] ([0, columns] when empty); ValueError otherwise."""
    array = np.asarray(array, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, columns), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError('%s must have shape [N, %d], got %s' % (what, columns, array.shape))
    return array


def _ellipse_params(ellipse):
    """Returns the drawing parameters of an ellipse the way the reference program draws it.

    Args:
        ellipse: float sequence (major_r, minor_r, angle_rad, cx, cy[, score]).

    Returns:
        (cx, cy, a, b, angle_deg) as ints: centre rounded, radii truncated, angle rounded.
    """
    major, minor, angle, cx, cy = (float(v) for v in ellipse[:5])
    return (int(np.rint(cx)), int(np.rint(cy)), int(major), int(minor),
            int(np.rint(np.degrees(angle))))


def rasterize_ellipse(ellipse, height, width):
    """Fills one ellipse on the bounding region it occupies inside an image.

    Args:
        ellipse: float sequence (major_r, minor_r, angle_rad, cx, cy[, score]), pixels.
        height: int, image height.
        width: int, image width.

    Returns:
        (x0, y0, mask): the region's top-left pixel and a uint8 mask [h, w] of 0/1 whose
        pixel (i, j) is image pixel (y0 + i, x0 + j). The mask is [0, 0] when the ellipse
        lies outside the image. Its pixels equal ``cv2.ellipse`` drawn on the whole image.
    """
    cx, cy, a, b, angle_deg = _ellipse_params(ellipse)
    t = np.radians(angle_deg)
    # Half extents of the drawn polygon plus a margin for OpenCV's vertex rounding.
    half_w = int(np.ceil(np.hypot(a * np.cos(t), b * np.sin(t)))) + 2
    half_h = int(np.ceil(np.hypot(a * np.sin(t), b * np.cos(t)))) + 2
    x0, x1 = max(cx - half_w, 0), min(cx + half_w, width - 1)
    y0, y1 = max(cy - half_h, 0), min(cy + half_h, height - 1)
    if x1 < x0 or y1 < y0:
        return 0, 0, np.zeros((0, 0), dtype=np.uint8)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.ellipse(mask, (cx - x0, cy - y0), (a, b), angle_deg, 0, 360, 1, -1)
    return x0, y0, mask


def rectangle_extents(rectangles, height, width):
    """Pixel extents of filled rectangles, clipped to the image.

    Args:
        rectangles: float array [D, >=4] (left, top, width, height, ...), pixels.
        height: int, image height.
        width: int, image width.

    Returns:
        (extents, areas): int64 [D, 4] inclusive x1, y1, x2, y2 after clipping, and int64 [D]
        pixel counts (0 for a rectangle entirely outside the image).
    """
    rectangles = np.asarray(rectangles, dtype=np.float64)
    if rectangles.ndim != 2 or rectangles.shape[1] < 4:
        raise ValueError('rectangles must have shape [D, >=4], got %s' % (rectangles.shape,))
    left, top = rectangles[:, 0], rectangles[:, 1]
    xa, xb = np.rint(left), np.rint(left + rectangles[:, 2])
    ya, yb = np.rint(top), np.rint(top + rectangles[:, 3])
    x1 = np.maximum(np.minimum(xa, xb), 0).astype(np.int64)
    x2 = np.minimum(np.maximum(xa, xb), width - 1).astype(np.int64)
    y1 = np.maximum(np.minimum(ya, yb), 0).astype(np.int64)
    y2 = np.minimum(np.maximum(ya, yb), height - 1).astype(np.int64)
    areas = np.maximum(x2 - x1 + 1, 0) * np.maximum(y2 - y1 + 1, 0)
    return np.stack([x1, y1, x2, y2], axis=1), areas


def _rectangle_overlaps(ellipses, rectangles, height, width):
    """Overlap matrix float64 [E, D] between ellipses and rectangles (see module doc)."""
    extents, rect_areas = rectangle_extents(rectangles, height, width)
    overlaps = np.zeros((len(ellipses), len(rectangles)), dtype=np.float64)
    for e, ellipse in enumerate(ellipses):
        x0, y0, mask = rasterize_ellipse(ellipse, height, width)
        h, w = mask.shape
        # Summed-area table: integral[i, j] = pixels of mask[:i, :j].
        integral = np.zeros((h + 1, w + 1), dtype=np.int64)
        np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=integral[1:, 1:])
        ellipse_area = integral[h, w]
        lx1 = np.clip(extents[:, 0] - x0, 0, w)
        lx2 = np.clip(extents[:, 2] - x0 + 1, 0, w)
        ly1 = np.clip(extents[:, 1] - y0, 0, h)
        ly2 = np.clip(extents[:, 3] - y0 + 1, 0, h)
        lx2, ly2 = np.maximum(lx2, lx1), np.maximum(ly2, ly1)
        inter = integral[ly2, lx2] - integral[ly1, lx2] - integral[ly2, lx1] + integral[ly1, lx1]
        inter = np.where(rect_areas > 0, inter, 0)
        union = ellipse_area + rect_areas - inter
        overlaps[e] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return overlaps


def _ellipse_overlaps(ellipses, detections, height, width):
    """Overlap matrix float64 [E, D] between annotated and detected ellipses."""
    masks_a = [rasterize_ellipse(e, height, width) for e in ellipses]
    masks_d = [rasterize_ellipse(d, height, width) for d in detections]
    overlaps = np.zeros((len(ellipses), len(detections)), dtype=np.float64)
    for e, (ax, ay, am) in enumerate(masks_a):
        area_a = int(am.sum())
        for d, (dx, dy, dm) in enumerate(masks_d):
            area_d = int(dm.sum())
            x1, y1 = max(ax, dx), max(ay, dy)
            x2 = min(ax + am.shape[1], dx + dm.shape[1])
            y2 = min(ay + am.shape[0], dy + dm.shape[0])
            inter = 0
            if x2 > x1 and y2 > y1:
                inter = int(np.count_nonzero(am[y1 - ay:y2 - ay, x1 - ax:x2 - ax] &
                                             dm[y1 - dy:y2 - dy, x1 - dx:x2 - dx]))
            union = area_a + area_d - inter
            overlaps[e, d] = inter / union if union > 0 else 0.0
    return overlaps


def overlap_matrix(ellipses, detections, height, width, detection_ellipses=False):
    """Pixel overlap |A n D| / |A u D| of every annotation with every detection.

    Args:
        ellipses: float array [E, 5] annotated faces (major_r, minor_r, angle_rad, cx, cy).
        detections: float array [D, 5] (left, top, width, height, score) rectangles, or
            [D, 6] (major_r, minor_r, angle_rad, cx, cy, score) when detection_ellipses.
        height: int, image height (shapes are clipped to the image).
        width: int, image width.
        detection_ellipses: bool, whether detections are ellipses.

    Returns:
        float64 np.ndarray [E, D] in [0, 1].
    """
    ellipses = _as_rows(ellipses, 5, 'ellipses')
    detections = _as_rows(detections, 6 if detection_ellipses else 5, 'detections')
    if len(ellipses) == 0 or len(detections) == 0:
        return np.zeros((len(ellipses), len(detections)), dtype=np.float64)
    if detection_ellipses:
        return _ellipse_overlaps(ellipses, detections, height, width)
    return _rectangle_overlaps(ellipses, detections, height, width)


def assign(overlaps):
    """The optimal one-to-one matching of a [E, K] overlap matrix (maximum summed overlap).

    Returns:
        (rows, cols): int arrays [P], the matched (annotation, detection) pairs; pairs with zero
        overlap are not matches.
    """
    rows = np.flatnonzero(overlaps.any(axis=1))
    cols = np.flatnonzero(overlaps.any(axis=0))
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r, c = linear_sum_assignment(overlaps[np.ix_(rows, cols)], maximize=True)
    rows, cols = rows[r], cols[c]
    positive = overlaps[rows, cols] > 0.0
    return rows[positive], cols[positive]


def _match(overlaps):
    """Optimal one-to-one matching; returns (discrete TP, continuous TP) for a [E, K] matrix."""
    values = overlaps[assign(overlaps)]
    return int(np.count_nonzero(values > DISCRETE_OVERLAP_THRESHOLD)), float(values.sum())


def match_image(overlaps, scores):
    """Counts for one image at each of its distinct detection scores.

    Args:
        overlaps: float array [E, D], overlap of annotation e with detection d.
        scores: float array [D], detection scores.

    Returns:
        ImageCounts with M = number of distinct scores (M = 0 when D = 0).
    """
    overlaps = np.asarray(overlaps, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if overlaps.shape[1] != scores.shape[0]:
        raise ValueError('overlaps %s and scores %s disagree on the number of detections'
                         % (overlaps.shape, scores.shape))
    order = np.argsort(-scores, kind='stable')
    overlaps, scores = overlaps[:, order], scores[order]
    thresholds = np.unique(scores)  # ascending
    # kept[m]: how many detections score >= thresholds[m] (scores are sorted descending).
    kept = np.searchsorted(-scores, -thresholds, side='right')
    tp_d = np.zeros(len(thresholds), dtype=np.int64)
    tp_c = np.zeros(len(thresholds), dtype=np.float64)
    useful = overlaps.any(axis=0)  # detections that overlap some face
    useful_before = np.concatenate([[0], np.cumsum(useful)])
    previous_useful, previous = -1, (0, 0.0)
    for m in range(len(thresholds) - 1, -1, -1):  # highest threshold first: fewest detections
        k = kept[m]
        if useful_before[k] != previous_useful:  # the matching can only change then
            previous = _match(overlaps[:, :k])
            previous_useful = useful_before[k]
        tp_d[m], tp_c[m] = previous
    return ImageCounts(thresholds=thresholds, tp_discrete=tp_d, tp_continuous=tp_c,
                       false_positives=kept.astype(np.int64) - tp_d)


def evaluate_image(image, detection_ellipses=False):
    """Overlaps and per-threshold counts of one FddbImage.

    Args:
        image: FddbImage.
        detection_ellipses: bool, whether image.detections are ellipses ([D, 6]).

    Returns:
        ImageCounts.
    """
    try:
        detections = _as_rows(image.detections, 6 if detection_ellipses else 5, 'detections')
        ellipses = _as_rows(image.ellipses, 5, 'ellipses')
    except ValueError as error:
        raise ValueError('image %r: %s' % (image.name, error)) from None
    overlaps = overlap_matrix(ellipses, detections, image.height, image.width, detection_ellipses)
    return match_image(overlaps, detections[:, -1])


def roc_curve(counts, num_faces):
    """Combines per-image counts into the ROC.

    Args:
        counts: list of ImageCounts, one per image of the evaluation list (images without
            detections have M = 0).
        num_faces: int, annotated faces over all images.

    Returns:
        RocCurve, rows from the lowest threshold to the highest, plus the sentinel row
        (threshold SENTINEL_THRESHOLD, zero TPR and FP) when some image has no detection.
    """
    all_thresholds = [c.thresholds for c in counts if len(c.thresholds)]
    thresholds = np.unique(np.concatenate(all_thresholds)) if all_thresholds else np.zeros(0)
    size = len(thresholds)
    # Image result m applies to global rows (index of its previous threshold, index of its own].
    diff = np.zeros((3, size + 1), dtype=np.float64)
    for c in counts:
        if not len(c.thresholds):
            continue
        ends = np.searchsorted(thresholds, c.thresholds)
        starts = np.concatenate([[0], ends[:-1] + 1])
        values = np.stack([c.tp_discrete, c.tp_continuous, c.false_positives]).astype(np.float64)
        np.add.at(diff, (slice(None), starts), values)
        np.add.at(diff, (slice(None), ends + 1), -values)
    totals = np.cumsum(diff[:, :size], axis=1)
    denominator = float(num_faces) if num_faces > 0 else 1.0
    if num_faces <= 0:
        logger.warning('no annotated faces: every true positive rate is 0')
    tpr_d = np.rint(totals[0]) / denominator
    tpr_c = totals[1] / denominator
    fp = np.rint(totals[2]).astype(np.int64)
    has_sentinel = any(len(c.thresholds) == 0 for c in counts)
    if has_sentinel:
        thresholds = np.append(thresholds, SENTINEL_THRESHOLD)
        tpr_d, tpr_c, fp = np.append(tpr_d, 0.0), np.append(tpr_c, 0.0), np.append(fp, 0)
    return RocCurve(thresholds=thresholds, tpr_discrete=tpr_d, tpr_continuous=tpr_c,
                    false_positives=fp, num_faces=int(num_faces), has_sentinel=has_sentinel)


def evaluate(images, detection_ellipses=False, progress=None):
    """Runs the whole FDDB evaluation on in-memory data.

    Args:
        images: sequence of FddbImage (the evaluation list; its faces are the denominator).
        detection_ellipses: bool, whether detections are ellipses ([D, 6]).
        progress: optional callable wrapping an iterable (e.g. tqdm) for a progress bar.

    Returns:
        RocCurve.
    """
    iterable = progress(images) if progress is not None else images
    counts = [evaluate_image(image, detection_ellipses) for image in iterable]
    num_faces = sum(len(_as_rows(image.ellipses, 5, 'ellipses')) for image in images)
    return roc_curve(counts, num_faces)


def tpr_at_false_positives(curve, max_false_positives=REPORT_FALSE_POSITIVES, continuous=False):
    """Discrete (or continuous) TPR at a false-positive budget.

    The rule: take the rows with the largest FP count that does not exceed the budget, and
    among them the highest TPR. Returns 0.0 when no row qualifies.

    Args:
        curve: RocCurve.
        max_false_positives: int.
        continuous: report the continuous TPR (summed overlaps) instead of the discrete one.

    Returns:
        float.
    """
    fp = curve.false_positives
    allowed = fp <= max_false_positives
    if not np.any(allowed):
        return 0.0
    best_fp = fp[allowed].max()
    tpr = curve.tpr_continuous if continuous else curve.tpr_discrete
    return float(tpr[fp == best_fp].max())


def format_roc(curve):
    """Renders the ROC in the official output format.

    Args:
        curve: RocCurve.

    Returns:
        (disc_text, cont_text): DiscROC.txt lines 'true_positive_rate false_positives
        threshold' and ContROC.txt lines 'continuous_true_positive_rate false_positives',
        aligned row for row, lowest threshold first, numbers as C's %g.
    """
    disc, cont = [], []
    for tpr_d, tpr_c, fp, t in zip(curve.tpr_discrete, curve.tpr_continuous,
                                   curve.false_positives, curve.thresholds):
        disc.append('%g %g %g\n' % (tpr_d, fp, t))
        cont.append('%g %g\n' % (tpr_c, fp))
    return ''.join(disc), ''.join(cont)


def write_roc(prefix, curve):
    """Writes ``<prefix>DiscROC.txt`` and ``<prefix>ContROC.txt`` atomically.

    Args:
        prefix: str, output prefix as the official ``-r`` option (e.g. 'result/').
        curve: RocCurve.

    Returns:
        (disc_path, cont_path).
    """
    disc_text, cont_text = format_roc(curve)
    disc_path, cont_path = prefix + 'DiscROC.txt', prefix + 'ContROC.txt'
    write_text_atomic(disc_path, disc_text)
    write_text_atomic(cont_path, cont_text)
    return disc_path, cont_path


def _image_size(path):
    """Returns (height, width) of an image file, reading only its header."""
    from PIL import Image  # only the file-based loader needs Pillow
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise FileNotFoundError('%s: image not found' % path) from None
    except OSError as error:
        raise ValueError('%s: unreadable image (%s)' % (path, error)) from None
    return height, width


def load_problem(annotation_file, detection_file, image_dir, image_list_file=None,
                 extension='.jpg', detection_ellipses=False, progress=None):
    """Reads annotations, detections and image sizes into FddbImage records.

    Args:
        annotation_file: str, ellipse list (the official ``-a``).
        detection_file: str, detections (``-d``).
        image_dir: str, folder with the images (``-i``); ``<image_dir>/<name><extension>``.
        image_list_file: str or None, image list (``-l``); None: the annotation file's images.
        extension: str, image file extension (``-z``).
        detection_ellipses: bool, detections are ellipses (``-f 1``) instead of rectangles.
        progress: optional callable wrapping an iterable (e.g. tqdm).

    Returns:
        list of FddbImage in image-list order (images without detections get [0, 5|6]).

    Raises:
        ValueError: a detection or annotation entry names an image outside the list, a
            listed image has no annotation entry, or an entry is duplicated.
    """
    annotations = fddb_format.read_ellipse_list(annotation_file)
    detections = fddb_format.read_detections(detection_file, ellipses=detection_ellipses)
    if image_list_file is not None:
        names = fddb_format.read_fold_list(image_list_file)
        list_label = image_list_file
    else:
        names = [name for name, _ in annotations]
        list_label = annotation_file + ' (used as image list)'
    listed = {}
    for index, name in enumerate(names):
        if name in listed:
            raise ValueError('%s: image %r listed twice (items %d and %d)'
                             % (list_label, name, listed[name] + 1, index + 1))
        listed[name] = index
    by_name = {}
    for label, entries in (('annotation', annotations), ('detection', detections)):
        source = annotation_file if label == 'annotation' else detection_file
        table = {}
        for index, (name, values) in enumerate(entries):
            if name not in listed:
                raise ValueError('%s: %s entry %d names image %r which is not in the image list %s'
                                 % (source, label, index + 1, name, list_label))
            if name in table:
                raise ValueError('%s: %s entry %d repeats image %r' % (source, label, index + 1, name))
            table[name] = values
        by_name[label] = table
    images = []
    width = 6 if detection_ellipses else 5
    iterable = progress(names) if progress is not None else names
    for name in iterable:
        if name not in by_name['annotation']:
            raise ValueError('%s: listed image %r has no entry in %s'
                             % (list_label, name, annotation_file))
        height, image_width = _image_size(os.path.join(image_dir, name + extension))
        images.append(FddbImage(name=name, height=height, width=image_width,
                                ellipses=by_name['annotation'][name],
                                detections=by_name['detection'].get(name, np.zeros((0, width)))))
    return images
