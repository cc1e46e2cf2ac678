"""Times the FDDB evaluation on a synthetic problem of FDDB's size.

Builds 2,845 images (sizes like FDDB's, ~450x400), ~5,171 ellipse faces and ~20
detections per image: for every face a few good, jittered boxes with high scores, the rest
low-scoring boxes scattered over the image (what a detector run at threshold 0.05 emits).
Times the in-memory evaluation (rasterization, matching and ROC; no file reading) and,
with --files DIR, also writes the problem as official files plus blank PNG images of the
right sizes and times the whole evaluate_fddb.py run (parsing, image headers, ROC files, plot).

Example:
    python bench/bench_fddb_eval.py --images 2845 --detections_per_image 20 --files /tmp/fddb_bench
"""
import argparse
import os
import sys
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import evaluate_fddb  # noqa: E402  (path set up above)
from src.datasets import fddb_format  # noqa: E402
from src.evaluation import fddb  # noqa: E402


def make_problem(num_images, faces_total, detections_per_image, seed):
    """Returns a list of fddb.FddbImage with random faces and detections."""
    rng = np.random.default_rng(seed)
    faces_per_image = rng.multinomial(faces_total - num_images, np.ones(num_images) / num_images) + 1
    images = []
    for index, num_faces in enumerate(faces_per_image):
        height, width = int(rng.integers(300, 500)), int(rng.integers(300, 500))
        minor = rng.uniform(10, 60, num_faces)
        major = minor * rng.uniform(1.2, 1.5, num_faces)
        ellipses = np.stack([major, minor, rng.normal(np.pi / 2, 0.2, num_faces),
                             rng.uniform(0, width, num_faces), rng.uniform(0, height, num_faces)], axis=1)
        boxes = []
        for a, b, _, cx, cy in ellipses:
            for _ in range(int(rng.integers(1, 4))):
                jitter = rng.normal(0, 0.1, 4) * [b, a, b, a]
                boxes.append([cx - b + jitter[0], cy - a + jitter[1], 2 * b + jitter[2], 2 * a + jitter[3],
                              rng.uniform(0.5, 1.0)])
        while len(boxes) < detections_per_image:
            size = rng.uniform(10, 80)
            boxes.append([rng.uniform(-10, width), rng.uniform(-10, height), size, size * 1.2,
                          rng.uniform(0.05, 0.5)])
        images.append(fddb.FddbImage(name='img_%d' % index, height=height, width=width,
                                     ellipses=ellipses, detections=np.array(boxes)))
    return images


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=2845, help='number of images (FDDB: 2845)')
    parser.add_argument('--faces', type=int, default=5171, help='number of faces (FDDB: 5171)')
    parser.add_argument('--detections_per_image', type=int, default=20, help='detections per image')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--files', default=None,
                        help='also write the problem here and time evaluate_fddb.py end to end')
    args = parser.parse_args()
    images = make_problem(args.images, args.faces, args.detections_per_image, args.seed)
    num_dets = sum(len(image.detections) for image in images)
    start = time.perf_counter()
    curve = fddb.evaluate(images)
    elapsed = time.perf_counter() - start
    print('%d images, %d faces, %d detections, %d ROC rows: evaluated in %.2f s; TPR@1000FP %.4f'
          % (len(images), curve.num_faces, num_dets, len(curve.thresholds), elapsed,
             fddb.tpr_at_false_positives(curve)))
    if args.files:
        time_files(images, args.files)


def time_files(images, folder):
    """Writes images (blank PNGs), annotations, detections and list; times evaluate_fddb.main."""
    for image in tqdm(images, desc='writing blank images', unit='img'):
        path = os.path.join(folder, 'pics', image.name + '.png')
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.new('L', (image.width, image.height)).save(path)
    annotations = os.path.join(folder, 'ellipseList.txt')
    detections = os.path.join(folder, 'detections.txt')
    image_list = os.path.join(folder, 'faceList.txt')
    fddb_format.write_ellipse_list(annotations, [(i.name, i.ellipses) for i in images])
    fddb_format.write_detections(detections, [(i.name, i.detections) for i in images])
    fddb_format.write_fold_list(image_list, [i.name for i in images])
    start = time.perf_counter()
    evaluate_fddb.main(['-a', annotations, '-d', detections, '-i', os.path.join(folder, 'pics'),
                        '-l', image_list, '-z', '.png', '-r', os.path.join(folder, 'out', '')])
    print('evaluate_fddb.py end to end: %.2f s' % (time.perf_counter() - start))


if __name__ == '__main__':
    main()
