"""Runs a face detector over every FDDB image and writes the official evaluator's inputs.

Expects the official FDDB layout under --fddb_dir: originalPics/<name>.jpg and
FDDB-folds/FDDB-fold-XX.txt + FDDB-fold-XX-ellipseList.txt. Images are processed in fold
order; grayscale images are converted to RGB. Writes into --output_dir:
  detections.txt   per image: path line, count line, 'left top width height score' lines;
  faceList.txt     the image list (fold order), for the evaluator's -l;
  ellipseList.txt  all folds' annotations concatenated, for the evaluator's -a.
An unreadable image is reported, written with 0 detections and counted in the summary.

Box conventions: the detector returns pixels [ymin, xmin, ymax, xmax]; the files hold
pixels 'left top width height'.

Example:
    python predict_for_fddb.py --fddb_dir /data/FDDB --model model/model.pb \\
        --output_dir result/ --min_dimension 768
    python evaluate_fddb.py -a result/ellipseList.txt -d result/detections.txt \\
        -i /data/FDDB/originalPics -l result/faceList.txt -r result/
"""
import argparse
import logging
import os
import sys
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from src.atomic_io import write_text_atomic
from src.datasets import fddb_format

logger = logging.getLogger('predict_for_fddb')

# The upstream evaluated FDDB with every detection above this score (its config's NMS
# score threshold), so the ROC reaches far into the false positives.
DEFAULT_SCORE_THRESHOLD = 0.05


def detector_boxes_to_fddb(boxes, scores):
    """Converts detector output to FDDB detection rows.

    Args:
        boxes: float array [N, 4], pixels [ymin, xmin, ymax, xmax].
        scores: float array [N].

    Returns:
        float64 np.ndarray [N, 5]: left, top, width, height, score (pixels).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError('detector returned %d boxes but %d scores' % (len(boxes), len(scores)))
    ymin, xmin, ymax, xmax = boxes.T
    return np.stack([xmin, ymin, xmax - xmin, ymax - ymin, scores], axis=1)


def read_rgb(path):
    """Reads an image file as uint8 RGB [H, W, 3] (grayscale and palette images converted)."""
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB'), dtype=np.uint8)


def load_folds(folds_dir):
    """Reads every fold of an FDDB-folds folder.

    Args:
        folds_dir: str.

    Returns:
        (names, ellipse_text): list of image names in fold order, and the concatenated text
        of the folds' ellipse lists (validated by parsing).

    Raises:
        ValueError: a fold's image list and its ellipse list disagree.
    """
    names, texts = [], []
    for fold_path, ellipse_path in fddb_format.find_fold_files(folds_dir):
        fold_names = fddb_format.read_fold_list(fold_path)
        annotated = [name for name, _ in fddb_format.read_ellipse_list(ellipse_path)]
        if annotated != fold_names:
            raise ValueError('%s: its images differ from those of %s' % (ellipse_path, fold_path))
        names.extend(fold_names)
        with open(ellipse_path, 'r', encoding='utf-8') as f:
            text = f.read()
        texts.append(text if text.endswith('\n') else text + '\n')
    return names, ''.join(texts)


def predict_images(detector, names, image_dir, extension='.jpg',
                   score_threshold=DEFAULT_SCORE_THRESHOLD, min_dimension=None, progress=None):
    """Runs ``detector`` on every named image.

    Args:
        detector: callable(image uint8 [H, W, 3] RGB, score_threshold=float[, min_dimension=int])
            -> (boxes float [N, 4] pixels ymin, xmin, ymax, xmax; scores float [N]).
            min_dimension is passed only when set.
        names: list of str, image names without extension.
        image_dir: str, folder with <name><extension>.
        extension: str.
        score_threshold: float, passed to the detector.
        min_dimension: int or None, passed to the detector (upscale small images).
        progress: optional callable wrapping an iterable (e.g. tqdm).

    Returns:
        (items, failed): list of (name, float64 [N, 5] left, top, width, height, score) for
        every name in order, and the list of names whose image could not be read (they have
        0 detections in items).
    """
    extra = {} if min_dimension is None else {'min_dimension': min_dimension}
    items, failed = [], []
    for name in (progress(names) if progress is not None else names):
        path = os.path.join(image_dir, name + extension)
        try:
            image = read_rgb(path)
        except (OSError, ValueError) as error:
            logger.warning('%s: unreadable image, written with 0 detections (%s)', path, error)
            failed.append(name)
            items.append((name, np.zeros((0, 5))))
            continue
        boxes, scores = detector(image, score_threshold=score_threshold, **extra)
        items.append((name, detector_boxes_to_fddb(boxes, scores)))
    return items, failed


def write_outputs(output_dir, items, names, ellipse_text):
    """Writes detections.txt, faceList.txt and ellipseList.txt atomically.

    Args:
        output_dir: str.
        items: list of (name, float [N, 5] left, top, width, height, score).
        names: list of str, image list in fold order.
        ellipse_text: str, concatenated ellipse lists.

    Returns:
        dict with the three written paths, keyed 'detections', 'faces', 'ellipses'.
    """
    paths = {'detections': os.path.join(output_dir, 'detections.txt'),
             'faces': os.path.join(output_dir, 'faceList.txt'),
             'ellipses': os.path.join(output_dir, 'ellipseList.txt')}
    fddb_format.write_detections(paths['detections'], items)
    fddb_format.write_fold_list(paths['faces'], names)
    write_text_atomic(paths['ellipses'], ellipse_text)
    return paths


def run(detector, fddb_dir, output_dir, score_threshold=DEFAULT_SCORE_THRESHOLD,
        min_dimension=None, images_dir=None, folds_dir=None, extension='.jpg'):
    """The whole prediction pass with any detector callable; returns a summary dict."""
    images_dir = images_dir or os.path.join(fddb_dir, 'originalPics')
    folds_dir = folds_dir or os.path.join(fddb_dir, 'FDDB-folds')
    names, ellipse_text = load_folds(folds_dir)
    start = time.time()
    items, failed = predict_images(
        detector, names, images_dir, extension, score_threshold, min_dimension,
        progress=lambda seq: tqdm(seq, desc='detecting', unit='img'))
    paths = write_outputs(output_dir, items, names, ellipse_text)
    return {'images': len(names), 'failed': len(failed),
            'detections': sum(len(dets) for _, dets in items),
            'seconds': time.time() - start, 'paths': paths}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--fddb_dir', required=True,
                        help='FDDB root holding originalPics/ and FDDB-folds/')
    parser.add_argument('--model', required=True, help='frozen inference graph (.pb)')
    parser.add_argument('--output_dir', required=True, help='where the three text files go')
    parser.add_argument('--score_threshold', type=float, default=DEFAULT_SCORE_THRESHOLD,
                        help='keep detections scoring above this (default %(default)s)')
    parser.add_argument('--min_dimension', type=int, default=None,
                        help='upscale images whose smaller side is below this (e.g. 768)')
    parser.add_argument('--images_dir', default=None, help='default: <fddb_dir>/originalPics')
    parser.add_argument('--folds_dir', default=None, help='default: <fddb_dir>/FDDB-folds')
    parser.add_argument('--gpu_memory_fraction', type=float, default=0.25,
                        help='fraction of GPU memory TensorFlow may take')
    parser.add_argument('--visible_device_list', default='0', help="GPUs to use, e.g. '0'")
    return parser.parse_args(argv)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    args = parse_args(argv)
    from face_detector import FaceDetector  # TensorFlow loads only when predicting
    detector = FaceDetector(args.model, gpu_memory_fraction=args.gpu_memory_fraction,
                            visible_device_list=args.visible_device_list)
    try:
        summary = run(detector, args.fddb_dir, args.output_dir, args.score_threshold,
                      args.min_dimension, args.images_dir, args.folds_dir)
    except (ValueError, FileNotFoundError) as error:
        logger.error('%s', error)
        return 1
    print('%d images (%d unreadable), %d detections in %.1f s; wrote %s'
          % (summary['images'], summary['failed'], summary['detections'], summary['seconds'],
             ', '.join(summary['paths'].values())))
    if summary['failed']:
        logger.warning('%d unreadable images were written with 0 detections', summary['failed'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
