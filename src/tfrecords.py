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

A folder of shards is a complete set only when it holds ``shards.json`` (`MANIFEST_NAME`),
written LAST, after every shard is in place (`write_manifest`)::

    {"format": "faceboxes-tf shards", "version": 1, "num_shards": 2, "num_records": 6,
     "shards": [{"file": "shard-0000.tfrecords", "records": 3, "bytes": 5120}, ...],
     ...extra keys (create_tfrecords.py adds "counts", its summary)}

`verified_shard_files` checks a folder against it: the manifest exists, lists exactly the
folder's ``shard-*.tfrecords`` files, each with the recorded size, and at least one record.
A folder without it was interrupted while being written (or predates the manifest).
"""
from __future__ import annotations

import json
import os
import re

import numpy as np
import tensorflow as tf

from src.atomic_io import temporary_sibling, write_text_atomic
from src.cli import UserError

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
# What `temporary_sibling` names a shard being written (hidden; left behind by a killed run).
TEMPORARY_SHARD_PATTERN = ".shard-*.tmp.tfrecords"

MANIFEST_NAME = "shards.json"
MANIFEST_FORMAT = "faceboxes-tf shards"
MANIFEST_VERSION = 1
_MANIFEST_KEYS = ("format", "version", "num_shards", "num_records", "shards")
RERUN_HINT = "re-run create_tfrecords.py --overwrite"


class ShardSetError(UserError, ValueError):
    """A folder of shards is incomplete, inconsistent with its shards.json, or empty."""


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


def write_manifest(output_dir: str, shard_paths_and_counts, extra: dict | None = None) -> str:
    """Writes ``<output_dir>/shards.json`` atomically; call it after every shard is in place.

    Args:
        output_dir: the folder of the shards.
        shard_paths_and_counts: iterable of (path of a shard file in `output_dir`, number of
            records in it); their sizes in bytes are read now.
        extra: optional JSON-ready dict of further top-level keys (not the reserved
            "format", "version", "num_shards", "num_records", "shards").

    Returns:
        The path of the manifest.

    Raises:
        ValueError: a path outside `output_dir`, not a shard name, listed twice, a negative
            count, or a reserved key in `extra`.
        OSError: a shard file that cannot be read.
    """
    shards, seen = [], set()
    for path, count in shard_paths_and_counts:
        path = os.fspath(path)
        name = os.path.basename(path)
        if os.path.abspath(os.path.dirname(path)) != os.path.abspath(output_dir):
            raise ValueError(f"{path}: a shard listed in {MANIFEST_NAME} must be in {output_dir}")
        if shard_index(name) is None or name in seen:
            raise ValueError(f"{path}: not a {SHARD_PATTERN} name, or listed twice")
        if int(count) < 0:
            raise ValueError(f"{path}: negative record count {count}")
        seen.add(name)
        shards.append({"file": name, "records": int(count), "bytes": os.path.getsize(path)})
    shards.sort(key=lambda shard: shard["file"])
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "num_shards": len(shards),
                "num_records": sum(shard["records"] for shard in shards), "shards": shards}
    for key, value in (extra or {}).items():
        if key in manifest:
            raise ValueError(f"extra key '{key}' is reserved in {MANIFEST_NAME}")
        manifest[key] = value
    path = os.path.join(output_dir, MANIFEST_NAME)
    write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")
    return path


def read_manifest(folder: str) -> dict:
    """Reads and checks the structure of ``<folder>/shards.json`` (local or tf.io.gfile paths).

    Returns:
        The manifest dict (see the module docstring).

    Raises:
        FileNotFoundError: the folder has no shards.json.
        ShardSetError: it is not valid JSON, of another format or version, or inconsistent.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, MANIFEST_NAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{folder}: no {MANIFEST_NAME}: the shard set is incomplete or was "
                                f"written by an older create_tfrecords.py; {RERUN_HINT}")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShardSetError(f"{path}: not a valid {MANIFEST_NAME} ({error}); {RERUN_HINT}") from None

    def require(condition, problem):
        if not condition:
            raise ShardSetError(f"{path}: {problem}; {RERUN_HINT}")

    require(isinstance(manifest, dict) and all(key in manifest for key in _MANIFEST_KEYS),
            f"not a {MANIFEST_NAME} (needs the keys {', '.join(_MANIFEST_KEYS)})")
    require(manifest["format"] == MANIFEST_FORMAT, f"format is {manifest['format']!r}, not {MANIFEST_FORMAT!r}")
    require(manifest["version"] == MANIFEST_VERSION,
            f"version {manifest['version']!r} is not {MANIFEST_VERSION} (written by another version)")
    shards = manifest["shards"]
    require(isinstance(shards, list) and all(
        isinstance(shard, dict) and isinstance(shard.get("file"), str) and shard_index(shard["file"]) is not None
        and os.path.basename(shard["file"]) == shard["file"]
        and all(isinstance(shard.get(key), int) and shard[key] >= 0 for key in ("records", "bytes"))
        for shard in shards), "'shards' must list {file: shard-NNNN.tfrecords, records, bytes} entries")
    require(len({shard["file"] for shard in shards}) == len(shards), "a shard is listed twice")
    require(manifest["num_shards"] == len(shards),
            f"num_shards is {manifest['num_shards']!r} but {len(shards)} shards are listed")
    require(manifest["num_records"] == sum(shard["records"] for shard in shards),
            "num_records is not the sum of the shards' records")
    return manifest


def verified_shard_files(folder: str) -> tuple[list[str], int]:
    """The shard files of a complete, non-empty shard set, checked against its shards.json.

    Args:
        folder: a folder written by create_tfrecords.py (local or a tf.io.gfile path).

    Returns:
        paths: the sorted paths of the listed shards.
        num_records: the total number of records.

    Raises:
        FileNotFoundError: no shards.json (an incomplete or old set).
        ShardSetError: the folder's shard-*.tfrecords files are not exactly the listed ones,
            one has another size than recorded, or the set holds no record.
    """
    folder = os.fspath(folder)
    present = {os.path.basename(path) for path in tf.io.gfile.glob(os.path.join(folder, SHARD_PATTERN))}
    if not present and not tf.io.gfile.exists(os.path.join(folder, MANIFEST_NAME)):
        raise FileNotFoundError(f"{folder}: no shard set here (no {SHARD_PATTERN} files, no {MANIFEST_NAME})")
    manifest = read_manifest(folder)
    listed = {shard["file"]: shard for shard in manifest["shards"]}
    if set(listed) != present:
        missing, unlisted = sorted(set(listed) - present), sorted(present - set(listed))
        def some(names):
            return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        detail = "; ".join(part for part in (
            f"missing: {some(missing)}" if missing else "",
            f"not listed: {some(unlisted)}" if unlisted else "") if part)
        raise ShardSetError(f"{folder}: {len(present)} {SHARD_PATTERN} files but {MANIFEST_NAME} lists "
                            f"{len(listed)} ({detail}); {RERUN_HINT}")
    paths = []
    for name in sorted(listed):
        path = os.path.join(folder, name)
        size = tf.io.gfile.stat(path).length
        if size != listed[name]["bytes"]:
            raise ShardSetError(f"{path}: {size} bytes but {MANIFEST_NAME} says {listed[name]['bytes']}: "
                                f"the shard was replaced or truncated; {RERUN_HINT}")
        paths.append(path)
    if manifest["num_records"] == 0:
        raise ShardSetError(f"{folder}: the shard set holds no records ({MANIFEST_NAME}: num_records 0)")
    return paths, manifest["num_records"]
