"""Runs a face detector over every FDDB image and writes the official evaluator's inputs.

Expects the official FDDB layout under --fddb_dir: originalPics/<name>.jpg and
FDDB-folds/FDDB-fold-XX.txt + FDDB-fold-XX-ellipseList.txt. Images are processed in fold
order; grayscale images are converted to RGB. Writes into --output_dir:
  detections.txt   per image: path line, count line, 'left top width height score' lines;
  faceList.txt     the image list (fold order), for the evaluator's -l;
  ellipseList.txt  all folds' annotations concatenated, for the evaluator's -a.
An unreadable image is reported, written with 0 detections and counted in the summary.
Existing output files are replaced only with --overwrite (checked before detecting); files are
written atomically.

User errors (a missing, corrupt or folder --model, a missing FDDB layout, existing outputs
without --overwrite, bad option values) end with one line `error: ...` on stderr and exit code 2;
--debug shows the traceback.

Box conventions: the detector returns pixels [ymin, xmin, ymax, xmax]; the files hold
pixels 'left top width height'.

Example:
    python predict_for_fddb.py --fddb_dir /data/FDDB --model model/model.pb \\
        --output_dir result/ --min_dimension 768
    python evaluate_fddb.py -a result/ellipseList.txt -d result/detections.txt \\
        -i /data/FDDB/originalPics -l result/faceList.txt -r result/
"""
import sys

if __name__ == '__main__':  # Ctrl-C while the modules load: one line, exit 130
    from src.cli import quiet_ctrl_c
    quiet_ctrl_c()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from src.atomic_io import write_text_atomic  # noqa: E402
from src.cli import UserError, add_debug_flag, import_tensorflow, report_errors  # noqa: E402
from src.datasets import fddb_format  # noqa: E402

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
                   score_threshold=DEFAULT_SCORE_THRESHOLD, min_dimension=None, progress=None,
                   max_dimension=None):
    """Runs ``detector`` on every named image.

    Args:
        detector: callable(image uint8 [H, W, 3] RGB, score_threshold=float[, min_dimension=int]
            [, max_dimension=int]) -> (boxes float [N, 4] pixels ymin, xmin, ymax, xmax;
            scores float [N]). min_dimension and max_dimension are passed only when set.
        names: list of str, image names without extension.
        image_dir: str, folder with <name><extension>.
        extension: str.
        score_threshold: float, passed to the detector.
        min_dimension: int or None, passed to the detector (upscale small images).
        progress: optional callable wrapping an iterable (e.g. tqdm).
        max_dimension: int or None, passed to the detector (downscale huge images).

    Returns:
        (items, failed): list of (name, float64 [N, 5] left, top, width, height, score) for
        every name in order, and the list of names whose image could not be read (they have
        0 detections in items).
    """
    extra = {} if min_dimension is None else {'min_dimension': min_dimension}
    if max_dimension is not None:
        extra['max_dimension'] = max_dimension
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


def output_paths(output_dir):
    """The three files this script writes, keyed 'detections', 'faces', 'ellipses'."""
    return {'detections': os.path.join(output_dir, 'detections.txt'),
            'faces': os.path.join(output_dir, 'faceList.txt'),
            'ellipses': os.path.join(output_dir, 'ellipseList.txt')}


def check_outputs(output_dir, overwrite):
    """Raises UserError when output_dir is a file, or holds an output file and not `overwrite`."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError('%s: is a file; --output_dir must be a folder' % output_dir)
    for path in output_paths(output_dir).values():
        if os.path.isdir(path):
            raise UserError('%s: is a folder, where the output file goes' % path)
        if os.path.lexists(path) and not overwrite:
            raise UserError('%s: already exists; pass --overwrite to replace it' % path)


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
    paths = output_paths(output_dir)
    fddb_format.write_detections(paths['detections'], items)
    fddb_format.write_fold_list(paths['faces'], names)
    write_text_atomic(paths['ellipses'], ellipse_text)
    return paths


def run(detector, fddb_dir, output_dir, score_threshold=DEFAULT_SCORE_THRESHOLD,
        min_dimension=None, images_dir=None, folds_dir=None, extension='.jpg', max_dimension=None):
    """The whole prediction pass with any detector callable; returns a summary dict."""
    images_dir = images_dir or os.path.join(fddb_dir, 'originalPics')
    folds_dir = folds_dir or os.path.join(fddb_dir, 'FDDB-folds')
    names, ellipse_text = load_folds(folds_dir)
    start = time.time()
    items, failed = predict_images(
        detector, names, images_dir, extension, score_threshold, min_dimension,
        progress=lambda seq: tqdm(seq, desc='detecting', unit='img'), max_dimension=max_dimension)
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
    parser.add_argument('--max_dimension', type=int, default=None,
                        help="downscale images whose longer side exceeds this; default: FaceDetector's "
                             "(1024), 0 turns it off; FDDB images are small, this matters for larger photos")
    parser.add_argument('--images_dir', default=None, help='default: <fddb_dir>/originalPics')
    parser.add_argument('--folds_dir', default=None, help='default: <fddb_dir>/FDDB-folds')
    parser.add_argument('--gpu_memory_fraction', type=float, default=0.25,
                        help='fraction of GPU memory TensorFlow may take')
    parser.add_argument('--visible_device_list', default='0', help="GPUs to use, e.g. '0'")
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the output files if they exist')
    parser.add_argument('--precision', choices=('float32', 'bfloat16', 'auto'), default='float32',
                        help="the detector's precision (FaceDetector): float32 as frozen, bfloat16 "
                             "(faster on CPUs with AMX / AVX512_BF16), auto (bfloat16 where native)")
    parser.add_argument('--backend', choices=('auto', 'tensorflow', 'litert'), default='auto',
                        help="what runs the network (FaceDetector): litert runs the .tflite beside the .pb "
                             "(create_pb.py --tflite); auto uses it only with --precision auto")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_threshold <= 1.0:
        raise UserError('--score_threshold: must be in [0, 1], got %s' % args.score_threshold)
    if args.min_dimension is not None and args.min_dimension < 0:
        raise UserError('--min_dimension: must be >= 0, got %d' % args.min_dimension)
    if args.max_dimension is not None and args.max_dimension < 0:
        raise UserError('--max_dimension: must be >= 0, got %d' % args.max_dimension)
    if not 0.0 < args.gpu_memory_fraction <= 1.0:
        raise UserError('--gpu_memory_fraction: must be in (0, 1], got %s' % args.gpu_memory_fraction)
    return args


def load_detector(model_path, gpu_memory_fraction=0.25, visible_device_list='0', precision='float32',
                  backend='auto'):
    """FaceDetector(model_path, ...), with a missing, folder or corrupt model as a UserError."""
    if os.path.isdir(model_path):
        raise UserError('%s: is a folder; --model wants a frozen .pb file' % model_path)
    if not os.path.isfile(model_path):
        raise UserError('%s: no such model file' % model_path)
    import_tensorflow()  # without TensorFlow's start-up log lines
    from face_detector import FaceDetector  # TensorFlow loads only when predicting
    try:
        return FaceDetector(model_path, gpu_memory_fraction=gpu_memory_fraction,
                            visible_device_list=visible_device_list, precision=precision, backend=backend)
    except (ValueError, OSError, ImportError) as error:
        raise UserError(str(error)) from error


def _main(argv=None):
    """The script without the error policy: user errors are raised (UserError, OSError)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    check_outputs(args.output_dir, args.overwrite)
    for what, folder in (('--folds_dir', args.folds_dir or os.path.join(args.fddb_dir, 'FDDB-folds')),
                         ('--images_dir', args.images_dir or os.path.join(args.fddb_dir, 'originalPics'))):
        if not os.path.isdir(folder):
            raise UserError('%s: no such folder (%s; the FDDB layout is <fddb_dir>/FDDB-folds and '
                            '<fddb_dir>/originalPics)' % (folder, what))
    detector = load_detector(args.model, args.gpu_memory_fraction, args.visible_device_list, args.precision,
                             args.backend)
    try:
        summary = run(detector, args.fddb_dir, args.output_dir, args.score_threshold,
                      args.min_dimension, args.images_dir, args.folds_dir,
                      max_dimension=args.max_dimension)
    except ValueError as error:  # a malformed fold or ellipse list
        raise UserError(str(error)) from error
    print('%d images (%d unreadable), %d detections in %.1f s; wrote %s'
          % (summary['images'], summary['failed'], summary['detections'], summary['seconds'],
             ', '.join(summary['paths'].values())))
    if summary['failed']:
        logger.warning('%d unreadable images were written with 0 detections', summary['failed'])
    return 0


def main(argv=None):
    """Runs the script; returns 0, or 2 after printing one `error: ...` line (--debug re-raises)."""
    return report_errors(_main, argv)


if __name__ == '__main__':
    sys.exit(main())
