"""Average precision at IoU 0.5, PASCAL VOC style, as the upstream evaluates during training.

Box convention: boxes are [ymin, xmin, ymax, xmax], normalized or in pixels — IoU does not
depend on the unit as long as predictions and ground truth of one image share it. IoU is
computed on continuous coordinates (no "+1" pixel convention).

Semantics (the upstream's evaluation_utils.py, run during training):
* Per image, detections are taken in descending score order; each is matched to the
  ground-truth box it overlaps most. It is a true positive when that IoU is >= 0.5 and that
  box was not already taken by a higher-scored detection; otherwise a false positive (a
  detection never falls back to its second-best box).
* Over the whole set, detections are sorted by descending score (ties keep insertion order);
  AP = sum over detections of precision x (recall increment), without interpolation.
* The operating point is the score threshold t (detections with score >= t are kept)
  maximising precision * recall * (1 - |precision - recall|); at t we report precision,
  recall, the counts of false positives and missed faces, and the mean IoU of the true
  positives.

Two additions of this project (absent from the upstream's metric, and neutral when unused):
* Ignore regions (faces nobody is sure of, e.g. a teacher's doubtful detections): a detection
  that is not a true positive and lies at least half inside one ignore region
  (intersection / detection area >= 0.5) is dropped, counted neither as a false positive
  nor as a true positive. Without ignore regions nothing changes.
* A fixed operating point: `compute(fixed_threshold=t)` also reports recall, precision and
  false positives of the detections scoring >= t (for example the score threshold the
  tracker ships with), so that models are compared where users run them.
"""
import numpy as np

from src import box_iou_numpy

IOU_THRESHOLD = 0.5  # PASCAL VOC / upstream
# The score threshold start.py tracks faces at (its --score_threshold default): the fixed
# operating point reported next to AP by train.py's evaluation and evaluate_model.py.
OPERATING_SCORE_THRESHOLD = 0.7
IGNORE_COVERAGE = 0.5  # share of a detection's area inside an ignore region that drops it


def pairwise_iou(boxes1, boxes2):
    """IoU of every pair of [ymin, xmin, ymax, xmax] boxes (`src.box_iou_numpy.pairwise_iou`).

    Args:
        boxes1: float array [N, 4], [ymin, xmin, ymax, xmax].
        boxes2: float array [M, 4], same convention and unit.

    Returns:
        float64 array [N, M]; pairs whose union is empty get 0.
    """
    return box_iou_numpy.pairwise_iou(boxes1, boxes2, 'yxyx')


def match_image(boxes, scores, gt_boxes, iou_threshold=IOU_THRESHOLD):
    """Greedy VOC matching of one image's detections to its ground truth.

    Args:
        boxes: float array [N, 4], predicted [ymin, xmin, ymax, xmax].
        scores: float array [N].
        gt_boxes: float array [M, 4], same convention and unit as `boxes`.
        iou_threshold: float, the IoU a true positive needs (inclusive).

    Returns:
        is_tp: bool array [N], in the order of `boxes`.
        best_iou: float64 array [N], each detection's IoU with its best ground-truth box
            (0 when the image has none).
    """
    num_detections = len(scores)
    if num_detections == 0 or len(gt_boxes) == 0:
        return np.zeros(num_detections, bool), np.zeros(num_detections)
    iou = pairwise_iou(boxes, gt_boxes)  # [N, M]
    best_gt = iou.argmax(axis=1)  # [N]
    best_iou = iou[np.arange(num_detections), best_gt]
    order = np.argsort(-np.asarray(scores), kind='stable')
    candidates = order[best_iou[order] >= iou_threshold]  # score order
    # The first (highest-scored) candidate pointing at a box takes it; later ones are FPs.
    _, first = np.unique(best_gt[candidates], return_index=True)
    is_tp = np.zeros(num_detections, bool)
    is_tp[candidates[first]] = True
    return is_tp, best_iou


class Evaluator:
    """Accumulates detections image by image and computes AP@0.5 and an operating point.

    Example:
        evaluator = Evaluator()
        for boxes, scores, gt_boxes in data:
            evaluator.add(boxes, scores, gt_boxes)
        metrics = evaluator.compute()  # {'AP': ..., 'precision': ..., ...}
    """

    def __init__(self, iou_threshold=IOU_THRESHOLD):
        """Args: iou_threshold: float in (0, 1], the IoU a true positive needs."""
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError('iou_threshold must be in (0, 1], got %r' % iou_threshold)
        self.iou_threshold = iou_threshold
        self.reset()

    def reset(self):
        """Forgets everything added so far."""
        self._scores = []
        self._is_tp = []
        self._ious = []
        self._num_gt = 0
        self._num_images = 0

    def add(self, boxes, scores, gt_boxes, image_id=None, ignore_boxes=None):
        """Adds one image.

        Args:
            boxes: float array [N, 4], predicted [ymin, xmin, ymax, xmax] (N may be 0).
            scores: float array [N].
            gt_boxes: float array [M, 4], ground truth in the unit of `boxes` (M may be 0).
            image_id: anything printable, names the image in error messages (default: its
                position in the order of add calls).
            ignore_boxes: optional float array [K, 4], ignore regions in the unit of `boxes`:
                unmatched detections at least half inside one are dropped (module docstring).

        Raises:
            ValueError: bad shapes, or non-finite values.
        """
        name = image_id if image_id is not None else 'image #%d' % self._num_images
        boxes = _as_boxes(boxes, 'predicted boxes', name)
        gt_boxes = _as_boxes(gt_boxes, 'ground-truth boxes', name)
        scores = np.asarray(scores, dtype=np.float64)
        if scores.size == 0:
            scores = scores.reshape(0)
        if scores.ndim != 1 or len(scores) != len(boxes):
            raise ValueError('%s: %d predicted boxes but scores of shape %s'
                             % (name, len(boxes), np.shape(scores)))
        if not np.all(np.isfinite(scores)):
            raise ValueError('%s: scores contain NaN or infinity' % name)
        is_tp, best_iou = match_image(boxes, scores, gt_boxes, self.iou_threshold)
        ignore_boxes = _as_boxes(ignore_boxes if ignore_boxes is not None else np.zeros((0, 4)),
                                 'ignore boxes', name)
        if len(ignore_boxes) and len(boxes):
            inside = box_iou_numpy.pairwise_coverage(boxes, ignore_boxes, 'yxyx').max(axis=1)
            keep = is_tp | (inside < IGNORE_COVERAGE)
            boxes, scores, is_tp, best_iou = boxes[keep], scores[keep], is_tp[keep], best_iou[keep]
        self._scores.append(scores)
        self._is_tp.append(is_tp)
        self._ious.append(best_iou)
        self._num_gt += len(gt_boxes)
        self._num_images += 1

    def compute(self, fixed_threshold=None):
        """Metrics over every image added.

        Args:
            fixed_threshold: optional float: also report the detections scoring >= it.

        Returns:
            dict with
              'AP': float, average precision (0 when there are no detections or no faces);
              'precision', 'recall': floats at the chosen threshold (0 without detections);
              'threshold': float, the chosen score threshold (detections with score >= it are
                  kept), NaN without detections;
              'mean_iou': float, mean IoU of the true positives at the threshold, NaN if none;
              'FP', 'FN': ints, false positives and missed faces at the threshold;
              'num_images', 'num_faces', 'num_detections': ints;
            and with `fixed_threshold`: 'fixed_threshold' (float), 'fixed_recall',
              'fixed_precision' (floats; precision 0 without detections there), 'fixed_FP' (int).
        """
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0)
        is_tp = np.concatenate(self._is_tp) if self._is_tp else np.zeros(0, bool)
        ious = np.concatenate(self._ious) if self._ious else np.zeros(0)
        num_gt = self._num_gt
        result = {'num_images': self._num_images, 'num_faces': num_gt,
                  'num_detections': len(scores)}
        if fixed_threshold is not None:
            kept = scores >= fixed_threshold
            tp = int(np.count_nonzero(is_tp & kept))
            result.update(fixed_threshold=float(fixed_threshold),
                          fixed_recall=tp / num_gt if num_gt else 0.0,
                          fixed_precision=tp / int(kept.sum()) if kept.any() else 0.0,
                          fixed_FP=int(kept.sum()) - tp)
        if len(scores) == 0:
            result.update(AP=0.0, precision=0.0, recall=0.0, threshold=float('nan'),
                          mean_iou=float('nan'), FP=0, FN=num_gt)
            return result
        order = np.argsort(-scores, kind='stable')
        scores, is_tp, ious = scores[order], is_tp[order], ious[order]
        tp_cumulative = np.cumsum(is_tp)  # [D]
        fp_cumulative = np.arange(1, len(scores) + 1) - tp_cumulative
        precision = tp_cumulative / np.arange(1, len(scores) + 1)
        recall = tp_cumulative / num_gt if num_gt else np.zeros(len(scores))
        ap = float(np.sum(precision * np.diff(recall, prepend=0.0)))

        # A threshold keeps whole groups of equal scores: only the last position of each
        # group is an operating point.
        group_ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
        p, r = precision[group_ends], recall[group_ends]
        best = group_ends[np.argmax(p * r * (1.0 - np.abs(p - r)))]
        kept_tp = is_tp[:best + 1]
        result.update(
            AP=ap,
            precision=float(precision[best]),
            recall=float(recall[best]),
            threshold=float(scores[best]),
            mean_iou=float(ious[:best + 1][kept_tp].mean()) if kept_tp.any() else float('nan'),
            FP=int(fp_cumulative[best]),
            FN=int(num_gt - tp_cumulative[best]))
        return result


def _as_boxes(boxes, what, name):
    """Validates boxes as a float64 array [K, 4] (an empty input gives [0, 4])."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError('%s: %s must have shape [K, 4], got %s' % (name, what, boxes.shape))
    if not np.all(np.isfinite(boxes)):
        raise ValueError('%s: %s contain NaN or infinity' % (name, what))
    return boxes
