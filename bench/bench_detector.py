"""Times FaceDetector (a frozen .pb) against OpenCV's Haar cascade on the same photos.

Test images are made from real, public-domain photos that ship with scikit-image and
matplotlib: the left half of each image is skimage.data.astronaut() and the right half
matplotlib's grace_hopper.jpg, each scaled to cover its half and centre-cropped, so every
image holds two frontal faces of known position. Sizes default to 1024x768 and 640x480
(width x height), batch 1.

FaceDetector: each call (numpy uint8 RGB in, pixel boxes out) is timed after warm-up.
Haar: cv2.CascadeClassifier(haarcascade_frontalface_default.xml).detectMultiScale on the
grayscale image (scaleFactor 1.1, minNeighbors 5, minSize (20, 20)); the grayscale
conversion is done once, outside the timing. Both run with their libraries' default
thread counts. A face counts as found when a detection overlaps its box with IoU >= 0.5.

If --model does not exist, the Haar cascade is still timed. With --train_config, the CPU
training steps/s of that recipe are printed too (bench_training.py, float32 / mixed precision,
XLA off / on).

Example:
    python bench/bench_detector.py --model model/facebox.pb --runs 30
    python bench/bench_detector.py --model model/facebox.pb --sizes 1024x768 --output bench.json
    python bench/bench_detector.py --model model/facebox.pb --train_config configs/sample.json
"""
import argparse
import json
import logging
import os
import statistics
import sys
import time

import cv2
import numpy as np
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from src.atomic_io import write_text_atomic  # noqa: E402
from src.box_formats import yxyx_to_xyxy  # noqa: E402
from src.box_iou_numpy import pairwise_iou  # noqa: E402

_LOG = logging.getLogger('bench_detector')

# Haar settings of the comparison (the tracking fork's OpenCV baseline).
HAAR_FILE = 'haarcascade_frontalface_default.xml'
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBORS = 5
HAAR_MIN_SIZE = (20, 20)
SCORE_THRESHOLD = 0.5  # FaceDetector's default
FOUND_IOU = 0.5  # a known face counts as found at this IoU

# Face boxes in the source photos, pixel (x1, y1, x2, y2), forehead to chin, checked by eye on
# zoomed crops (the same boxes as prepare_data/faces.py).
ASTRONAUT_FACE = (172, 58, 272, 178)
GRACE_HOPPER_FACE = (165, 140, 358, 338)


def _cover_crop(image, height, width):
    """Scales `image` to cover height x width and centre-crops it.

    Args:
        image: uint8 [h, w, 3].
        height, width: ints, the output size.

    Returns:
        (uint8 [height, width, 3], (scale, offset_x, offset_y)) where a source pixel
        coordinate (x, y) lands at (x * scale - offset_x, y * scale - offset_y).
    """
    scale = max(height / image.shape[0], width / image.shape[1])
    new_h = max(height, int(round(image.shape[0] * scale)))
    new_w = max(width, int(round(image.shape[1] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    offset_y, offset_x = (new_h - height) // 2, (new_w - width) // 2
    return resized[offset_y:offset_y + height, offset_x:offset_x + width], (scale, offset_x,
                                                                           offset_y)


def make_test_image(height, width):
    """Two photos side by side.

    Returns:
        image: uint8 RGB [height, width, 3].
        faces: float array [2, 4], the known faces in pixel (x1, y1, x2, y2) of `image`.
    """
    import matplotlib.cbook
    import skimage.data

    astronaut = skimage.data.astronaut()
    path = matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)
    grace = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    left_width = width // 2
    left, (s1, ox1, oy1) = _cover_crop(astronaut, height, left_width)
    right, (s2, ox2, oy2) = _cover_crop(grace, height, width - left_width)
    image = np.ascontiguousarray(np.concatenate([left, right], axis=1))
    faces = np.array([
        np.array(ASTRONAUT_FACE) * s1 - [ox1, oy1, ox1, oy1],
        np.array(GRACE_HOPPER_FACE) * s2 - [ox2 - left_width, oy2, ox2 - left_width, oy2],
    ], dtype=np.float64)
    return image, faces


def _count_found(detections, faces):
    """How many `faces` [F, 4] have a detection [D, 4] (both x1, y1, x2, y2) at IoU >= 0.5."""
    if len(detections) == 0:
        return 0
    iou = pairwise_iou(detections, faces, 'xyxy')  # [D, F]
    return int(np.sum(iou.max(axis=0) >= FOUND_IOU))


def _time(function, warmup, runs, label):
    """Calls function() warmup times, then times `runs` calls.

    Returns:
        (list of float seconds per call, the last call's result).
    """
    for _ in range(warmup):
        result = function()
    seconds = []
    for _ in tqdm(range(runs), desc=label, leave=False):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def _summary(seconds):
    milliseconds = [1000.0 * s for s in seconds]
    return {'median_ms': statistics.median(milliseconds), 'min_ms': min(milliseconds),
            'mean_ms': statistics.fmean(milliseconds), 'runs': len(milliseconds)}


def _parse_size(text):
    """'1024x768' (width x height) -> (height, width)."""
    try:
        width, height = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError('size must look like 1024x768, got %r' % text) from None
    if width < 32 or height < 32:
        raise argparse.ArgumentTypeError('size must be at least 32x32, got %r' % text)
    return height, width


def _write_json(path, payload):
    write_text_atomic(path, json.dumps(payload, indent=2))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default=os.path.join(ROOT, 'model', 'facebox.pb'),
                        help='frozen .pb for FaceDetector (default: model/facebox.pb)')
    parser.add_argument('--sizes', type=_parse_size, nargs='+',
                        default=[(768, 1024), (480, 640)],
                        help='image sizes as WIDTHxHEIGHT (default: 1024x768 640x480)')
    parser.add_argument('--runs', type=int, default=30, help='timed calls per size (>= 20)')
    parser.add_argument('--precision', choices=('float32', 'bfloat16', 'auto'), default='float32',
                        help="FaceDetector's precision (default float32)")
    parser.add_argument('--warmup', type=int, default=10, help='untimed calls before timing')
    parser.add_argument('--haar_runs', type=int, default=None,
                        help='timed Haar calls per size (default: --runs)')
    parser.add_argument('--output', default=None, help='optional JSON file for the results')
    parser.add_argument('--train_config', default=None,
                        help='also time CPU training steps/s of this recipe (e.g. configs/sample.json)')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.runs < 20:
        parser.error('--runs must be at least 20')
    haar_runs = args.haar_runs or args.runs

    detector = None
    if os.path.isfile(args.model):
        # Imported here so that --help and a Haar-only run do not pay for loading TensorFlow.
        os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
        from face_detector import FaceDetector
        detector = FaceDetector(args.model, precision=args.precision)
    else:
        _LOG.warning('model not found: %s -- timing the Haar cascade only', args.model)
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, HAAR_FILE))
    if cascade.empty():
        parser.error('OpenCV could not load %s' % HAAR_FILE)

    results = {'model': args.model if detector else None,
               'precision': detector.precision if detector else None, 'cpu_count': os.cpu_count(),
               'opencv_threads': cv2.getNumThreads(), 'sizes': []}
    lines = []
    for height, width in args.sizes:
        image, faces = make_test_image(height, width)
        entry = {'width': width, 'height': height, 'faces': len(faces)}
        if detector is not None:
            seconds, (boxes, scores) = _time(
                lambda: detector(image, score_threshold=SCORE_THRESHOLD), args.warmup,
                args.runs, 'FaceDetector %dx%d' % (width, height))
            xyxy = yxyx_to_xyxy(boxes)
            entry['facedetector'] = dict(_summary(seconds), detections=len(scores),
                                         faces_found=_count_found(xyxy, faces))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        seconds, rects = _time(
            lambda: cascade.detectMultiScale(gray, scaleFactor=HAAR_SCALE_FACTOR,
                                             minNeighbors=HAAR_MIN_NEIGHBORS,
                                             minSize=HAAR_MIN_SIZE),
            min(args.warmup, 2), haar_runs, 'Haar %dx%d' % (width, height))
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        entry['haar'] = dict(_summary(seconds), detections=len(rects),
                             faces_found=_count_found(xyxy, faces))
        results['sizes'].append(entry)
        for name in ('facedetector', 'haar'):
            if name in entry:
                r = entry[name]
                lines.append('%-12s %4dx%-4d median %7.2f ms  min %7.2f ms  mean %7.2f ms  '
                             '(%d runs)  detections %d, known faces found %d/%d'
                             % (name, width, height, r['median_ms'], r['min_ms'], r['mean_ms'],
                                r['runs'], r['detections'], r['faces_found'], len(faces)))
    for line in lines:
        _LOG.info(line)
    if args.output:
        _write_json(args.output, results)
        _LOG.info('results written to %s', args.output)
    first = results['sizes'][0]
    summary = 'summary: %dx%d' % (first['width'], first['height'])
    if 'facedetector' in first:
        summary += ' FaceDetector %.2f ms' % first['facedetector']['median_ms']
    summary += ' Haar %.2f ms (medians, %d CPU cores)' % (first['haar']['median_ms'],
                                                           os.cpu_count())
    _LOG.info(summary)
    if args.train_config:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import bench_training
        bench_training.main(['--config', args.train_config, '--steps', '20'])


if __name__ == '__main__':
    main()
