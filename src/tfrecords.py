"""The tfrecord schema of the training/evaluation data (the upstream's) and its writer.

Box convention: the records store the four coordinates as separate float lists
``xmin``, ``ymin``, ``xmax``, ``ymax``, each NORMALIZED to [0, 1] by the image width or
height. The encoder here takes boxes the way the rest of the pipeline holds them,
``[ymin, xmin, ymax, xmax]`` normalized, and the input pipeline (``src/input_pipeline``)
parses the records with `feature_spec()` and these key names.

One example per image::

    filename: bytes        the image file name (as in its annotation JSON)
    image:    bytes        the JPEG file bytes (always an RGB JPEG)
    xmin, ymin, xmax, ymax: float lists of equal length N >= 0
    ignore_xmin, ignore_ymin, ignore_xmax, ignore_ymax: float lists of equal length M >= 0,
        the ignore regions (this project's optional addition; written only when M > 0, so
        records without regions are exactly the upstream's, and readers treat a missing
        list as M = 0)

Shards are named ``shard-0000.tfrecords``, ``shard-0001.tfrecords``, ... (`shard_name`).
"""
from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

from src.atomic_io import temporary_sibling

FILENAME_KEY = "filename"
IMAGE_KEY = "image"
XMIN_KEY = "xmin"
YMIN_KEY = "ymin"
XMAX_KEY = "xmax"
YMAX_KEY = "ymax"
BOX_KEYS = (XMIN_KEY, YMIN_KEY, XMAX_KEY, YMAX_KEY)
IGNORE_PREFIX = "ignore_"
IGNORE_BOX_KEYS = tuple(IGNORE_PREFIX + key for key in BOX_KEYS)

SHARD_PATTERN = "shard-*.tfrecords"
_SHARD_RE = re.compile(r"^shard-(\d{4,})\.tfrecords$")


def shard_name(index: int) -> str:
    """Returns the file name of shard `index` (0-based), e.g. ``'shard-0003.tfrecords'``."""
    return f"shard-{index:04d}.tfrecords"


def shard_index(filename: str) -> int | None:
    """Returns the index of a shard file name (base name), or None if it is not one."""
    match = _SHARD_RE.match(os.path.basename(filename))
    return int(match.group(1)) if match else None


def feature_spec() -> dict:
    """Returns the `tf.io.parse_single_example` feature description of one record.

    Returns:
        dict: ``filename`` and ``image`` as scalar `tf.string` (FixedLenFeature []),
        ``xmin``, ``ymin``, ``xmax``, ``ymax`` and the four ``ignore_*`` lists as dense
        `tf.float32` [N] lists (FixedLenSequenceFeature; missing or empty lists give N = 0).
    """
    spec = {
        FILENAME_KEY: tf.io.FixedLenFeature([], tf.string),
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    }
    for key in BOX_KEYS + IGNORE_BOX_KEYS:
        spec[key] = tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True)
    return spec


def _checked_boxes(filename: str, boxes, what: str) -> np.ndarray:
    """``boxes`` as float64 [N, 4] after checking range and order (see `encode_example`)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{filename}: {what} must have shape [N, 4], got {boxes.shape}")
    if np.any(boxes < 0.0) or np.any(boxes > 1.0):
        raise ValueError(f"{filename}: normalized {what} coordinates must lie in [0, 1]")
    if np.any(boxes[:, 2] <= boxes[:, 0]) or np.any(boxes[:, 3] <= boxes[:, 1]):
        raise ValueError(f"{filename}: every one of the {what} needs ymax > ymin and xmax > xmin")
    return boxes


def encode_example(filename: str, jpeg_bytes: bytes, boxes: np.ndarray,
                   ignore_boxes: np.ndarray | None = None) -> bytes:
    """Serializes one image as a `tf.train.Example`.

    Args:
        filename: the image file name stored in the record.
        jpeg_bytes: the JPEG file bytes.
        boxes: float array [N, 4], ``ymin, xmin, ymax, xmax`` normalized to [0, 1]; N may be 0.
        ignore_boxes: optional float array [M, 4], the ignore regions, same convention.

    Returns:
        The serialized example.

    Raises:
        ValueError: if `boxes` is not [N, 4], has a coordinate outside [0, 1] or a
            box with ``ymax <= ymin`` or ``xmax <= xmin``.
    """
    boxes = _checked_boxes(filename, boxes, "boxes")
    ignore_boxes = _checked_boxes(filename, [] if ignore_boxes is None else ignore_boxes,
                                  "ignore boxes")

    def float_list(values: np.ndarray) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=values.astype(np.float32).tolist()))

    def bytes_feature(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    features = {
        FILENAME_KEY: bytes_feature(filename.encode("utf-8")),
        IMAGE_KEY: bytes_feature(jpeg_bytes),
    }
    # Columns of [ymin, xmin, ymax, xmax] in the order of BOX_KEYS (xmin, ymin, xmax, ymax).
    for column, key in zip((1, 0, 3, 2), BOX_KEYS):
        features[key] = float_list(boxes[:, column])
        if len(ignore_boxes):
            features[IGNORE_PREFIX + key] = float_list(ignore_boxes[:, column])
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


class AtomicShardWriter:
    """Writes one tfrecord file under a temporary name and renames it when closed cleanly.

    Use as a context manager; if the block raises, the temporary file is removed and the
    destination is left untouched::

        with AtomicShardWriter(path) as writer:
            writer.write(encode_example(...))
    """

    def __init__(self, path: str):
        """Args: path: the final ``.tfrecords`` path; its folder must exist."""
        self.path = path
        self.num_written = 0
        self._tmp = temporary_sibling(path)
        self._writer = tf.io.TFRecordWriter(self._tmp)

    def write(self, record: bytes) -> None:
        """Appends one serialized example."""
        self._writer.write(record)
        self.num_written += 1

    def __enter__(self) -> "AtomicShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.remove(self._tmp)
