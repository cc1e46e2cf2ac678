"""Rectangle -> ellipse regression for FDDB, fitted by leave-one-fold-out cross-validation.

FDDB annotates faces as ellipses that run from the chin to the top of the head; a detector's
boxes usually follow another convention (YuNet's, the teacher of the real-photo models, run
from the eyebrows to the chin; the shipped model's, WIDER FACE's, from the forehead to the
chin, cheek to cheek). Scored as
rectangles, well-placed detections can fall under FDDB's 0.5 overlap, and the continuous score
(mean overlap) is capped. Published FDDB results commonly turn boxes into ellipses with a fitted
regressor; this module fits the simplest one, four numbers shared by all faces:

    major_r = major_scale * height          (the major axis upright: angle = pi/2)
    minor_r = minor_scale * width
    cx      = left + width / 2 + dx * width
    cy      = top + height / 2 + dy * height

Each coefficient is a least-squares fit through the origin over detections matched one-to-one
to annotated ellipses (score >= min_score, FDDB overlap >= min_overlap). FDDB's protocol is
cross-validation over its folds: the regressor applied to the detections of fold k is fitted on
the other folds only, so no image is scored by a regressor that has seen its annotations.

Conventions: rectangles are pixels ``[left, top, width, height(, score)]``; ellipses are pixels
``[major_r, minor_r, angle_rad, cx, cy(, score)]`` (the FDDB files' order).

Example (after predict_for_fddb.py --output_dir result/):
    python -m src.evaluation.box_to_ellipse --predictions result/ \\
        --folds_dir /data/FDDB/FDDB-folds --output_dir result/ellipses/
    python evaluate_fddb.py -f 1 -a result/ellipses/ellipseList.txt \\
        -d result/ellipses/detections.txt -i /data/FDDB/originalPics \\
        -l result/ellipses/faceList.txt -r result/ellipses/
"""
import argparse
import dataclasses
import json
import math
import os
import sys

import numpy as np

from src.atomic_io import write_text_atomic
from src.cli import UserError, add_debug_flag, report_errors
from src.datasets import fddb_format
from src.evaluation import fddb

# Detections used for fitting: confident ones that clearly belong to an annotated face.
DEFAULT_MIN_SCORE = 0.5
DEFAULT_MIN_OVERLAP = 0.3


@dataclasses.dataclass(frozen=True)
class EllipseRegressor:
    """Four coefficients mapping a box to an upright ellipse (see the module doc).

    Attributes:
        major_scale: float, major radius / box height.
        minor_scale: float, minor radius / box width.
        dx: float, (ellipse centre x - box centre x) / box width.
        dy: float, (ellipse centre y - box centre y) / box height.
        num_pairs: int, matched (box, ellipse) pairs it was fitted on.
    """

    major_scale: float
    minor_scale: float
    dx: float
    dy: float
    num_pairs: int

    def apply(self, rectangles):
        """Turns rectangles into ellipses.

        Args:
            rectangles: float array [N, 5] left, top, width, height, score (pixels).

        Returns:
            float64 np.ndarray [N, 6] major_r, minor_r, angle_rad (pi/2), cx, cy, score.
        """
        rectangles = np.asarray(rectangles, dtype=np.float64).reshape(-1, 5)
        left, top, width, height, score = rectangles.T
        return np.stack([self.major_scale * height, self.minor_scale * width,
                         np.full_like(left, math.pi / 2),
                         left + width * (0.5 + self.dx), top + height * (0.5 + self.dy), score], axis=1)


def matched_pairs(images, min_score=DEFAULT_MIN_SCORE, min_overlap=DEFAULT_MIN_OVERLAP):
    """The one-to-one (detection, annotation) pairs a regressor is fitted on.

    Per image, the rectangle detections scoring >= min_score are matched to the annotated
    ellipses maximising the summed FDDB overlap (as the evaluator matches); pairs with an
    overlap below min_overlap are dropped.

    Args:
        images: list of fddb.FddbImage with rectangle detections [D, 5].
        min_score: float.
        min_overlap: float, FDDB overlap (pixel IoU of the rectangle and the ellipse).

    Returns:
        (rectangles float64 [P, 4] left, top, width, height; ellipses float64 [P, 5]).
    """
    rectangles, ellipses = [], []
    for image in images:
        detections = np.asarray(image.detections, dtype=np.float64).reshape(-1, 5)
        detections = detections[detections[:, 4] >= min_score]
        annotations = np.asarray(image.ellipses, dtype=np.float64).reshape(-1, 5)
        if not len(detections) or not len(annotations):
            continue
        overlaps = fddb.overlap_matrix(annotations, detections, image.height, image.width)
        for row, col in zip(*fddb.assign(overlaps)):
            if overlaps[row, col] >= min_overlap:
                rectangles.append(detections[col, :4])
                ellipses.append(annotations[row])
    return np.asarray(rectangles, np.float64).reshape(-1, 4), np.asarray(ellipses, np.float64).reshape(-1, 5)


def fit(rectangles, ellipses):
    """Least-squares fit of the four coefficients (each through the origin).

    Args:
        rectangles: float array [P, 4] left, top, width, height (pixels), P >= 1.
        ellipses: float array [P, 5] major_r, minor_r, angle_rad, cx, cy (pixels).

    Returns:
        EllipseRegressor.

    Raises:
        ValueError: no pairs, or mismatched lengths.
    """
    rectangles = np.asarray(rectangles, dtype=np.float64).reshape(-1, 4)
    ellipses = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)
    if len(rectangles) != len(ellipses):
        raise ValueError('%d rectangles but %d ellipses' % (len(rectangles), len(ellipses)))
    if not len(rectangles):
        raise ValueError('no matched (detection, face) pairs to fit the ellipse regressor on')
    left, top, width, height = rectangles.T
    major, minor, _, cx, cy = ellipses.T

    def through_origin(target, regressor):
        return float(np.dot(target, regressor) / np.dot(regressor, regressor))

    return EllipseRegressor(major_scale=through_origin(major, height),
                            minor_scale=through_origin(minor, width),
                            dx=through_origin(cx - (left + width / 2), width),
                            dy=through_origin(cy - (top + height / 2), height),
                            num_pairs=len(rectangles))


def cross_validate(images, fold_of, min_score=DEFAULT_MIN_SCORE, min_overlap=DEFAULT_MIN_OVERLAP):
    """Leave-one-fold-out: each fold's detections become ellipses fitted on the other folds.

    Args:
        images: list of fddb.FddbImage with rectangle detections [D, 5].
        fold_of: dict image name -> fold id (any hashable); at least two folds.
        min_score, min_overlap: see matched_pairs.

    Returns:
        (list of fddb.FddbImage in the same order with ellipse detections [D, 6],
         dict fold id -> EllipseRegressor applied to that fold).

    Raises:
        ValueError: an image has no fold, fewer than two folds, or a fold's complement has
            no matched pair.
    """
    missing = [image.name for image in images if image.name not in fold_of]
    if missing:
        raise ValueError('image %r belongs to no fold' % missing[0])
    folds = sorted({fold_of[image.name] for image in images})
    if len(folds) < 2:
        raise ValueError('cross-validation needs at least two folds, got %d' % len(folds))
    regressors = {}
    for fold in folds:
        training = [image for image in images if fold_of[image.name] != fold]
        try:
            regressors[fold] = fit(*matched_pairs(training, min_score, min_overlap))
        except ValueError as error:
            raise ValueError('fold %s left out: %s' % (fold, error)) from None
    converted = [dataclasses.replace(image, detections=regressors[fold_of[image.name]].apply(image.detections))
                 for image in images]
    return converted, regressors


def _fold_of_images(folds_dir):
    """dict image name -> fold number (int) from an FDDB-folds folder."""
    fold_of = {}
    for fold_path, _ in fddb_format.find_fold_files(folds_dir):
        number = int(os.path.basename(fold_path)[len('FDDB-fold-'):-len('.txt')])
        for name in fddb_format.read_fold_list(fold_path):
            fold_of[name] = number
    return fold_of


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--predictions', required=True,
                        help="predict_for_fddb.py's --output_dir (detections.txt, faceList.txt, "
                             'ellipseList.txt)')
    parser.add_argument('--folds_dir', required=True, help='FDDB-folds folder (which image is in which fold)')
    parser.add_argument('--image_dir', default=None,
                        help='images (for their sizes); default: originalPics next to --folds_dir')
    parser.add_argument('--output_dir', required=True,
                        help='writes detections.txt (ellipses, evaluate with -f 1), faceList.txt, '
                             'ellipseList.txt and regressors.json')
    parser.add_argument('--min_score', type=float, default=DEFAULT_MIN_SCORE,
                        help='detections fitted on score at least this (default %(default)s)')
    parser.add_argument('--min_overlap', type=float, default=DEFAULT_MIN_OVERLAP,
                        help='and overlap their matched face at least this (default %(default)s)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    add_debug_flag(parser)
    return parser.parse_args(argv)


def _main(argv):
    args = parse_args(argv)
    if not 0.0 <= args.min_overlap <= 1.0:
        raise UserError('--min_overlap: expected a value in [0, 1], got %s' % args.min_overlap)
    inputs = {key: os.path.join(args.predictions, name) for key, name in
              (('detections', 'detections.txt'), ('faces', 'faceList.txt'), ('ellipses', 'ellipseList.txt'))}
    for path in inputs.values():
        if not os.path.isfile(path):
            raise UserError('%s: not found (run predict_for_fddb.py --output_dir %s first)'
                            % (path, args.predictions))
    outputs = {key: os.path.join(args.output_dir, os.path.basename(path)) for key, path in inputs.items()}
    outputs['regressors'] = os.path.join(args.output_dir, 'regressors.json')
    if os.path.realpath(args.output_dir) == os.path.realpath(args.predictions):
        raise UserError('--output_dir: must differ from --predictions (its files would be replaced)')
    existing = [path for path in outputs.values() if os.path.lexists(path)]
    if existing and not args.overwrite:
        raise UserError('%s: already exists; pass --overwrite to replace it' % existing[0])
    image_dir = args.image_dir or os.path.join(os.path.dirname(os.path.normpath(args.folds_dir)), 'originalPics')
    try:
        fold_of = _fold_of_images(args.folds_dir)
        images = fddb.load_problem(inputs['ellipses'], inputs['detections'], image_dir, inputs['faces'])
        converted, regressors = cross_validate(images, fold_of, args.min_score, args.min_overlap)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    os.makedirs(args.output_dir, exist_ok=True)
    fddb_format.write_ellipse_detections(outputs['detections'], [(image.name, image.detections) for image in converted])
    for key in ('faces', 'ellipses'):
        with open(inputs[key], encoding='utf-8') as f:
            write_text_atomic(outputs[key], f.read())
    write_text_atomic(outputs['regressors'], json.dumps(
        {'fold %02d left out' % fold: dataclasses.asdict(regressor) for fold, regressor in regressors.items()},
        indent=2) + '\n')
    for fold, regressor in regressors.items():
        print('fold %02d: fitted on %d pairs of the other folds: major %.3f x height, minor %.3f x width, '
              'centre shift (%+.3f, %+.3f) x (width, height)'
              % (fold, regressor.num_pairs, regressor.major_scale, regressor.minor_scale, regressor.dx, regressor.dy))
    print('wrote %s (ellipse detections: evaluate_fddb.py -f 1)' % outputs['detections'])
    return 0


def main(argv=None):
    return report_errors(_main, argv)


if __name__ == '__main__':
    sys.exit(main())
