"""WIDER FACE style evaluation: average precision at IoU 0.5 on a WIDER val layout.

Box convention: pixels ``[left, top, width, height]`` as in the WIDER files (ground truth
``x1 y1 w h``; detections ``left top width height score``). IoU is computed on the
continuous boxes ``[left, top, left + width, top + height]``.

Semantics follow the official WIDER FACE evaluation protocol:

* Scores are normalised over all detections of the evaluated set to [0, 1]
  ((s - min) / (max - min); all 1 when every score is equal).
* Per image, detections are taken by descending score; each is compared with every
  ground-truth face. If its best IoU is >= 0.5 and that face is *ignored* (not counted in
  the setting), the detection is ignored too (neither true nor false positive); if the face
  is counted and not yet recalled, it becomes recalled. Any other detection (duplicates
  included) is a false positive.
* At each of 1000 thresholds t = 1 - (k + 1) / 1000 (k = 0..999), per image: proposals =
  non-ignored detections scoring >= t, recalled = counted faces recalled by them. Summed
  over images: precision = recalled / proposals (0 when no proposals), recall = recalled /
  counted faces.
* AP = area under the precision envelope (VOC style: precision made non-increasing from
  the right, summed over recall steps).

Settings: without the official .mat files every face of positive size is counted (faces
flagged ``invalid`` are ignored unless ignore_invalid=False) and the result is one AP 'all'.
With ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat`` (read with
scipy.io.loadmat: event_list, file_list, face_bbx_list, gt_list), each setting counts the
faces its gt_list names and ignores the rest.

Command line (detections in the official submission layout, <event>/<name>.txt per image)::

    python -m src.evaluation.wider --gt data/WIDER/wider_face_split/wider_face_val_bbx_gt.txt \
        --detections result/wider_val [--mat_dir eval_tools/ground_truth] [--json result/wider.json]

prints the AP of the whole set (and of easy/medium/hard with --mat_dir). User errors (missing
or malformed files, an existing --json without --overwrite) end with one line ``error: ...``
on stderr and exit code 2; --debug shows the traceback.
"""
import argparse
import dataclasses
import json
import logging
import os
import sys

import numpy as np

from src import box_iou_numpy
from src.atomic_io import write_text_atomic
from src.cli import UserError, add_debug_flag, report_errors

logger = logging.getLogger(__name__)

IOU_THRESHOLD = 0.5  # WIDER FACE protocol
NUM_THRESHOLDS = 1000  # score thresholds of the official evaluation
SETTINGS = ('easy', 'medium', 'hard')
VAL_MAT = 'wider_face_val.mat'
SETTING_MAT = 'wider_%s_val.mat'
# Column of the 'invalid' attribute in WiderEntry.boxes (x1 y1 w h blur expression
# illumination invalid occlusion pose).
INVALID_COLUMN = 7


@dataclasses.dataclass(frozen=True)
class GroundTruthImage:
    """Faces of one image for one setting.

    Attributes:
        relpath: str, '<event>/<name>.jpg' relative to WIDER_val/images.
        boxes: float64 [N, 4] left, top, width, height (pixels).
        counted: bool [N], True for faces the setting counts; False faces are ignored.
    """

    relpath: str
    boxes: np.ndarray
    counted: np.ndarray


@dataclasses.dataclass(frozen=True)
class ApResult:
    """AP and the PR curve of one setting.

    Attributes:
        ap: float, average precision at IoU 0.5.
        precision: float64 [NUM_THRESHOLDS], at thresholds descending.
        recall: float64 [NUM_THRESHOLDS].
        num_faces: int, counted faces.
        num_detections: int.
        images_without_detections: int, images with no entry in the detections.
    """

    ap: float
    precision: np.ndarray
    recall: np.ndarray
    num_faces: int
    num_detections: int
    images_without_detections: int


@dataclasses.dataclass(frozen=True)
class WiderReport:
    """Result of evaluate_wider.

    Attributes:
        overall: ApResult over the whole set (every valid face counted).
        settings: dict 'easy'/'medium'/'hard' -> ApResult, empty when the .mat files are absent.
        settings_available: bool, whether the official .mat files were found and read.
        message: str, why the settings are missing (empty when available).
    """

    overall: ApResult
    settings: dict
    settings_available: bool
    message: str


def iou_matrix(boxes1, boxes2):
    """IoU float64 [N, M] between [N, 4] and [M, 4] boxes, both left, top, width, height.

    Continuous coordinates (`src.box_iou_numpy`, convention 'xywh'): the official MATLAB
    tool's +1 pixel widths are not used. Empty inputs may be given as [] (reshaped to [0, 4]).
    """
    return box_iou_numpy.pairwise_iou(np.reshape(np.asarray(boxes1, dtype=np.float64), (-1, 4)),
                                      np.reshape(np.asarray(boxes2, dtype=np.float64), (-1, 4)), 'xywh')


def _image_pr(gt, detections, thresholds, iou_threshold):
    """Per-threshold (proposals, recalled) int64 [T, 2] of one image.

    Args:
        gt: GroundTruthImage.
        detections: float64 [D, 5] left, top, width, height, normalised score.
        thresholds: float64 [T], descending.
        iou_threshold: float.
    """
    order = np.argsort(-detections[:, 4], kind='stable')
    detections = detections[order]
    num = len(detections)
    proposal = np.ones(num, dtype=bool)  # False: ignored detection
    recalled_after = np.zeros(num, dtype=np.int64)
    recalled = np.zeros(len(gt.boxes), dtype=bool)
    if len(gt.boxes):
        overlaps = iou_matrix(detections[:, :4], gt.boxes)  # [D, N]
        best = np.argmax(overlaps, axis=1)
        hit = overlaps[np.arange(num), best] >= iou_threshold
        counted = gt.counted.tolist()
        total = 0
        # Sequential by score: a face is recalled by its first matching detection.
        for h, (face, is_hit) in enumerate(zip(best.tolist(), hit.tolist())):
            if is_hit:
                if not counted[face]:
                    proposal[h] = False
                elif not recalled[face]:
                    recalled[face] = True
                    total += 1
            recalled_after[h] = total
    # last[t]: how many detections score >= thresholds[t] (scores sorted descending).
    last = np.searchsorted(-detections[:, 4], -thresholds, side='right')
    proposals_cum = np.concatenate([[0], np.cumsum(proposal)])
    recalled_cum = np.concatenate([[0], recalled_after])
    return np.stack([proposals_cum[last], recalled_cum[last]], axis=1)


def _voc_ap(recall, precision):
    """Area under the precision envelope; recall and precision float [T] at descending thresholds."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def normalize_scores(detections):
    """Maps every score of a detection dict to [0, 1] by the global min and max.

    Args:
        detections: dict relpath -> float array [D, 5] left, top, width, height, score.

    Returns:
        dict relpath -> float64 [D, 5] with normalised scores (all 1.0 if the scores are equal).
    """
    arrays = {k: np.asarray(v, dtype=np.float64).reshape(-1, 5) for k, v in detections.items()}
    scores = [a[:, 4] for a in arrays.values() if len(a)]
    if not scores:
        return arrays
    scores = np.concatenate(scores)
    low, high = scores.min(), scores.max()
    out = {}
    for key, array in arrays.items():
        array = array.copy()
        array[:, 4] = (array[:, 4] - low) / (high - low) if high > low else 1.0
        out[key] = array
    return out


def evaluate_ap(ground_truth, detections, iou_threshold=IOU_THRESHOLD, num_thresholds=NUM_THRESHOLDS):
    """WIDER-style AP of detections against one setting's ground truth.

    Args:
        ground_truth: list of GroundTruthImage.
        detections: dict relpath -> float array [D, 5] left, top, width, height, score
            (raw scores; they are normalised here over this dict's images that are in
            ground_truth). Images absent from the dict have no detections.
        iou_threshold: float.
        num_thresholds: int.

    Returns:
        ApResult.
    """
    wanted = {gt.relpath for gt in ground_truth}
    normalized = normalize_scores({k: v for k, v in detections.items() if k in wanted})
    thresholds = 1.0 - np.arange(1, num_thresholds + 1, dtype=np.float64) / num_thresholds
    totals = np.zeros((num_thresholds, 2), dtype=np.int64)
    num_faces, num_detections, missing = 0, 0, 0
    for gt in ground_truth:
        num_faces += int(np.count_nonzero(gt.counted))
        dets = normalized.get(gt.relpath)
        if dets is None:
            missing += 1
            continue
        num_detections += len(dets)
        if len(dets):
            totals += _image_pr(gt, dets, thresholds, iou_threshold)
    proposals, recalled = totals[:, 0].astype(np.float64), totals[:, 1].astype(np.float64)
    precision = np.where(proposals > 0, recalled / np.maximum(proposals, 1.0), 0.0)
    recall = recalled / num_faces if num_faces else np.zeros(num_thresholds)
    if not num_faces:
        logger.warning('no counted faces in the ground truth: AP is 0')
    return ApResult(ap=_voc_ap(recall, precision) if num_faces else 0.0, precision=precision,
                    recall=recall, num_faces=num_faces, num_detections=num_detections,
                    images_without_detections=missing)


def ground_truth_from_entries(entries, ignore_invalid=True):
    """Ground truth for the whole set from parsed WIDER text annotations.

    Args:
        entries: list of src.datasets.wider_format.WiderEntry (boxes [N, 10]).
        ignore_invalid: bool, ignore (rather than count) faces flagged invalid.

    Returns:
        list of GroundTruthImage; faces with width or height <= 0 are dropped.
    """
    images = []
    for entry in entries:
        boxes = np.asarray(entry.boxes, dtype=np.float64).reshape(-1, 10)
        boxes = boxes[(boxes[:, 2] > 0) & (boxes[:, 3] > 0)]
        counted = np.ones(len(boxes), dtype=bool)
        if ignore_invalid:
            counted &= boxes[:, INVALID_COLUMN] == 0
        images.append(GroundTruthImage(relpath=entry.relpath, boxes=boxes[:, :4].copy(), counted=counted))
    return images


def _mat_string(value):
    """The string inside a loadmat cell element (nested 1-element arrays unwrapped)."""
    value = np.asarray(value)
    while value.dtype == object and value.size:
        value = np.asarray(value.ravel()[0])
    if value.dtype.kind not in 'US':
        raise ValueError('expected a string, got an array of %s' % value.dtype)
    return str(value.ravel()[0]) if value.size else ''


def _mat_cells(value):
    """The elements of a loadmat cell array as a flat list."""
    return list(np.asarray(value, dtype=object).ravel())


def load_mat_ground_truth(mat_dir):
    """Reads the official WIDER val .mat files into per-setting ground truth.

    Args:
        mat_dir: str, folder holding wider_face_val.mat and wider_{easy,medium,hard}_val.mat
            (the official eval_tools/ground_truth folder).

    Returns:
        (settings, message): dict 'easy'/'medium'/'hard' -> list of GroundTruthImage, or
        (None, reason) when a file is absent.

    Raises:
        ValueError: a present file does not have the expected structure.
    """
    from scipy.io import loadmat  # only needed when the .mat files are used

    paths = [os.path.join(mat_dir, VAL_MAT)] + [os.path.join(mat_dir, SETTING_MAT % s) for s in SETTINGS]
    absent = [p for p in paths if not os.path.isfile(p)]
    if absent:
        return None, 'official WIDER .mat files absent: %s' % ', '.join(absent)
    try:
        val = loadmat(paths[0])
        events = [_mat_string(e) for e in _mat_cells(val['event_list'])]
        files = [[_mat_string(f) for f in _mat_cells(cell)] for cell in _mat_cells(val['file_list'])]
        boxes = [[np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in _mat_cells(cell)]
                 for cell in _mat_cells(val['face_bbx_list'])]
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError('%s: unexpected structure (%s)' % (paths[0], error)) from None
    if not len(events) == len(files) == len(boxes) or any(len(f) != len(b) for f, b in zip(files, boxes)):
        raise ValueError('%s: event_list, file_list and face_bbx_list disagree in size' % paths[0])
    settings = {}
    for setting, path in zip(SETTINGS, paths[1:]):
        try:
            keep = [[np.asarray(k, dtype=np.float64).ravel().astype(np.int64) for k in _mat_cells(cell)]
                    for cell in _mat_cells(loadmat(path)['gt_list'])]
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError('%s: unexpected structure (%s)' % (path, error)) from None
        if len(keep) != len(events) or any(len(k) != len(f) for k, f in zip(keep, files)):
            raise ValueError('%s: gt_list does not match %s' % (path, VAL_MAT))
        images = []
        for event, names, event_boxes, event_keep in zip(events, files, boxes, keep):
            for name, face_boxes, indices in zip(names, event_boxes, event_keep):
                if np.any(indices < 1) or np.any(indices > len(face_boxes)):
                    raise ValueError('%s: gt_list of %s/%s has a face index outside 1..%d'
                                     % (path, event, name, len(face_boxes)))
                counted = np.zeros(len(face_boxes), dtype=bool)
                counted[indices - 1] = True  # MATLAB indices are 1-based
                images.append(GroundTruthImage(relpath='%s/%s.jpg' % (event, name),
                                               boxes=face_boxes, counted=counted))
        settings[setting] = images
    return settings, ''


def read_submission_file(path):
    """Reads one WIDER submission file: name line, count line, 'left top width height score' lines.

    Args:
        path: str.

    Returns:
        (name, float64 [N, 5]).

    Raises:
        ValueError: ``"<file>:<line>: <problem>"``.
    """
    with open(path, 'r', encoding='utf-8') as f:
        lines = [line.strip() for line in f]
    if not lines or not lines[0]:
        raise ValueError('%s:1: expected the image name' % path)
    if len(lines) < 2:
        raise ValueError('%s:2: file ends before the detection count' % path)
    try:
        count = int(float(lines[1]))
    except ValueError:
        raise ValueError('%s:2: expected a detection count, got %r' % (path, lines[1])) from None
    if count < 0:
        raise ValueError('%s:2: negative detection count %d' % (path, count))
    rows = np.zeros((count, 5), dtype=np.float64)
    for k in range(count):
        number = k + 3
        if number > len(lines) or not lines[number - 1]:
            raise ValueError('%s:%d: expected %d detection lines, found %d' % (path, number, count, k))
        fields = lines[number - 1].split()
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise ValueError('%s:%d: non-numeric value in %r' % (path, number, lines[number - 1])) from None
        if len(values) != 5 or not np.all(np.isfinite(values)):
            raise ValueError('%s:%d: expected 5 finite numbers (left top width height score), got %r'
                             % (path, number, lines[number - 1]))
        rows[k] = values
    return lines[0], rows


def read_submission_dir(det_dir, relpaths):
    """Reads the detections of the given images from a WIDER submission folder.

    Args:
        det_dir: str, folder with <event>/<name>.txt.
        relpaths: iterable of '<event>/<name>.jpg'.

    Returns:
        (detections, missing, bad): dict relpath -> float64 [N, 5] for the files found and
        readable, the number of images without a file, and the number of unreadable files
        (each reported with a warning and treated as no detections).
    """
    detections, missing, bad = {}, 0, 0
    for relpath in relpaths:
        path = os.path.join(det_dir, os.path.splitext(relpath)[0] + '.txt')
        if not os.path.isfile(path):
            missing += 1
            continue
        try:
            _, rows = read_submission_file(path)
        except (ValueError, OSError) as error:
            logger.warning('skipping %s', error)
            bad += 1
            continue
        detections[relpath] = rows
    return detections, missing, bad


def evaluate_wider(entries, detections, mat_dir=None, ignore_invalid=True):
    """AP@0.5 over the whole set, plus easy/medium/hard when the official .mat files exist.

    Args:
        entries: list of WiderEntry (src.datasets.wider_format.parse_wider_gt of
            wider_face_val_bbx_gt.txt) for the whole-set AP.
        detections: dict relpath -> float array [N, 5] left, top, width, height, score, or
            str, a submission folder (<event>/<name>.txt).
        mat_dir: str or None, folder with the official .mat files.
        ignore_invalid: bool, see ground_truth_from_entries.

    Returns:
        WiderReport. When the .mat files are absent, settings is empty,
        settings_available False, and the reason is logged and put in message.
    """
    overall_gt = ground_truth_from_entries(entries, ignore_invalid)
    settings_gt, message = (None, 'no .mat folder given: easy/medium/hard not evaluated') \
        if mat_dir is None else load_mat_ground_truth(mat_dir)
    if isinstance(detections, str):
        relpaths = {gt.relpath for gt in overall_gt}
        for images in (settings_gt or {}).values():
            relpaths.update(gt.relpath for gt in images)
        det_dir = detections
        detections, missing, bad = read_submission_dir(det_dir, sorted(relpaths))
        logger.info('%s: read %d detection files, %d images without a file, %d unreadable',
                    det_dir, len(detections), missing, bad)
    overall = evaluate_ap(overall_gt, detections)
    settings = {}
    if settings_gt is None:
        logger.warning('%s', message)
    else:
        settings = {name: evaluate_ap(images, detections) for name, images in settings_gt.items()}
    return WiderReport(overall=overall, settings=settings, settings_available=settings_gt is not None,
                       message=message)


def _result_dict(result):
    """The JSON-friendly summary of an ApResult (no curves)."""
    return {'ap': result.ap, 'num_faces': result.num_faces, 'num_detections': result.num_detections,
            'images_without_detections': result.images_without_detections}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m src.evaluation.wider',
        description='WIDER FACE style AP@0.5 of detections in the official submission layout '
                    '(<event>/<name>.txt: name line, count line, "left top width height score" lines).',
        epilog='Example: python -m src.evaluation.wider --gt data/WIDER/wider_face_split/'
               'wider_face_val_bbx_gt.txt --detections result/wider_val --mat_dir eval_tools/ground_truth')
    parser.add_argument('--gt', required=True,
                        help='the ground-truth text file, e.g. wider_face_split/wider_face_val_bbx_gt.txt')
    parser.add_argument('--detections', required=True,
                        help='submission folder with <event>/<name>.txt per image (images without a '
                             'file count as no detections)')
    parser.add_argument('--mat_dir', default=None,
                        help='folder with the official wider_face_val.mat and wider_{easy,medium,hard}_val.mat '
                             '(eval_tools/ground_truth) for the easy/medium/hard APs')
    parser.add_argument('--keep_invalid', action='store_true',
                        help="count faces flagged 'invalid' in the whole-set AP (default: ignore them)")
    parser.add_argument('--json', default=None, help='also write the APs to this JSON file (atomically)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --json file')
    add_debug_flag(parser)
    return parser.parse_args(argv)


def _main(argv=None):
    """The command line without the error policy: user errors are raised (UserError, OSError)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    if args.json:
        if os.path.isdir(args.json):
            raise UserError('%s: is a folder; --json wants a file path' % args.json)
        if os.path.lexists(args.json) and not args.overwrite:
            raise UserError('%s: already exists; pass --overwrite to replace it' % args.json)
    if os.path.isdir(args.gt):
        raise UserError('%s: is a folder; --gt wants the ground-truth text file' % args.gt)
    if not os.path.isfile(args.gt):
        raise UserError('%s: no such ground-truth file' % args.gt)
    if not os.path.isdir(args.detections):
        raise UserError('%s: no such submission folder' % args.detections)
    if args.mat_dir is not None and not os.path.isdir(args.mat_dir):
        raise UserError('%s: no such folder (--mat_dir)' % args.mat_dir)
    from src.datasets.wider_format import parse_wider_gt
    try:
        entries = parse_wider_gt(args.gt)
        report = evaluate_wider(entries, args.detections, args.mat_dir, not args.keep_invalid)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(str(error)) from error
    results = {'all': report.overall, **report.settings}
    for name, result in results.items():
        print('%-6s AP@0.5 %.4f (%d faces, %d detections, %d images without detections)'
              % (name, result.ap, result.num_faces, result.num_detections, result.images_without_detections))
    if args.json:
        write_text_atomic(args.json, json.dumps({name: _result_dict(r) for name, r in results.items()},
                                                indent=2) + '\n')
    return 0


def main(argv=None):
    """Runs the command line; returns 0, or 2 after one ``error: ...`` line (--debug re-raises)."""
    return report_errors(_main, argv)


if __name__ == '__main__':
    sys.exit(main())
