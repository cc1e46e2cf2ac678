"""Measures the training input pipeline's throughput, with and without augmentation.

Builds temporary tfrecord shards of synthetic photo-like JPEGs (or reads --shards), then
times the training pipeline (src/input_pipeline) at the training size with all upstream
augmentations, and in the same run with decode + resize + batch only.

Example:
    python bench/bench_input_pipeline.py
    python bench/bench_input_pipeline.py --shards data/train_shards --batches 50
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np
import tensorflow as tf
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.input_pipeline.pipeline import build_dataset  # noqa: E402


def synthetic_photo(rng, height, width):
    """A photo-like uint8 image [height, width, 3] (smooth shapes plus sensor noise).

    Pure noise would make unrealistically large and slow JPEGs; real photos are mostly
    smooth, so this mixes a low-frequency random field, a few filled ellipses and mild
    noise.
    """
    coarse = rng.uniform(0, 255, size=(height // 32, width // 32, 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(8):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(10, width // 6)), int(rng.integers(10, height // 6)))
        colour = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    image += rng.normal(0, 6, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _float_feature(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def write_synthetic_shards(folder, num_images, num_shards, height, width, seed=0):
    """Writes ``num_images`` synthetic examples into ``num_shards`` shard files.

    Returns:
        the list of shard paths.
    """
    rng = np.random.default_rng(seed)
    paths = [os.path.join(folder, f'shard-{k:04d}.tfrecords') for k in range(num_shards)]
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    try:
        for index in tqdm(range(num_images), desc='writing synthetic shards', unit='img'):
            image = synthetic_photo(rng, height, width)
            ok, jpeg = cv2.imencode('.jpg', image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise RuntimeError(f'synthetic image {index}: JPEG encoding failed')
            count = int(rng.integers(1, 12))
            size = rng.uniform(0.03, 0.25, size=(count, 1))
            ymin = rng.uniform(0, 1 - size)
            xmin = rng.uniform(0, 1 - size)
            feature = {
                'filename': _bytes_feature(f'synthetic_{index:05d}.jpg'.encode()),
                'image': _bytes_feature(jpeg.tobytes()),
                'ymin': _float_feature(ymin[:, 0]),
                'xmin': _float_feature(xmin[:, 0]),
                'ymax': _float_feature((ymin + size)[:, 0]),
                'xmax': _float_feature((xmin + size)[:, 0]),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writers[index % num_shards].write(example.SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    return paths


def measure(shards, *, augment, batch_size, image_size, warmup, batches):
    """Returns images per second of the training pipeline over ``batches`` batches."""
    dataset = build_dataset(shards, training=True, batch_size=batch_size,
                            image_size=image_size, repeat=True, augment=augment)
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    label = 'with augmentation' if augment else 'decode+resize only'
    start = time.perf_counter()
    for _ in tqdm(range(batches), desc=label, unit='batch'):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--shards', help='directory of shard-*.tfrecords to read instead '
                        'of synthetic shards')
    parser.add_argument('--num-images', type=int, default=64,
                        help='synthetic images to write (default 64)')
    parser.add_argument('--num-shards', type=int, default=4,
                        help='synthetic shard files (default 4)')
    parser.add_argument('--source-size', type=int, nargs=2, default=[480, 640],
                        metavar=('H', 'W'), help='synthetic image size (default 480 640)')
    parser.add_argument('--size', type=int, nargs=2, default=[1024, 1024],
                        metavar=('H', 'W'), help='training size (default 1024 1024)')
    parser.add_argument('--batch-size', type=int, default=16, help='batch size (default 16)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='batches discarded before timing (default 3)')
    parser.add_argument('--batches', type=int, default=20,
                        help='timed batches per measurement (default 20)')
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    with tempfile.TemporaryDirectory() as folder:
        if args.shards:
            shards = args.shards
            source = args.shards
        else:
            shards = write_synthetic_shards(folder, args.num_images, args.num_shards,
                                            *args.source_size)
            source = (f'{args.num_images} synthetic {args.source_size[1]}x'
                      f'{args.source_size[0]} JPEGs')
        rates = {}
        for augment in (True, False):
            rates[augment] = measure(shards, augment=augment, batch_size=args.batch_size,
                                     image_size=tuple(args.size), warmup=args.warmup,
                                     batches=args.batches)
    height, width = args.size
    print(f'source: {source}; output {width}x{height}, batch {args.batch_size}, '
          f'{args.batches} timed batches, {cores} core(s)')
    for augment, label in ((True, 'all augmentations'), (False, 'decode+resize+batch only')):
        print(f'{label:>26}: {rates[augment]:7.1f} images/s, '
              f'{rates[augment] / cores:6.1f} images/s per core')


if __name__ == '__main__':
    main()
