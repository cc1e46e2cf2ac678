"""Writes images/ + annotations/*.json as sharded tfrecords (the upstream's CLI and schema).

Box conventions: annotations hold pixels ``xmin, ymin, xmax, ymax``; the records hold
``xmin``, ``ymin``, ``xmax``, ``ymax`` normalized to [0, 1] by the image width/height
(schema in ``src/tfrecords.py``).

Every annotation is checked before it is written; a bad item is skipped with a one-line
warning and counted, never fatal:

=====================  =====================================================================
count                  what happened
=====================  =====================================================================
bad_annotation         the JSON does not parse or is not in the annotation format: skipped
unsafe_filename        'filename' is absolute or climbs out of --image_dir ('..'): skipped
missing_image          the image file does not exist or cannot be read: skipped
corrupt_image          the image does not decode (truncated, not an image): skipped
size_mismatch          the decoded size differs from the annotation's width/height: skipped
inverted_box           a box (or ignore region) with xmin > xmax or ymin > ymax (swapped
                       corners): the whole item is skipped, since writing the image without that
                       box would train the face as background
reencoded              not an RGB JPEG (PNG, grayscale, CMYK...): converted to an RGB JPEG, written
dropped_boxes          a box empty after clipping to the image: the box is dropped, image written
clipped_boxes          a box partly outside the image: clipped, written
empty_images           written with no box (none in the JSON, or all dropped)
=====================  =====================================================================

The annotation files are sorted by name and shuffled with --seed, then cut into
--num_shards nearly equal consecutive runs, one per shard (--num_shards is capped at the
number of annotation files, with a warning); so the same inputs and seed give
byte-identical shards. Each shard is written to a temporary name in the output folder and
renamed to ``shard-NNNN.tfrecords`` when complete. When every shard is in place,
``shards.json`` is written (atomically, last): the number of shards, each shard's record
count and size, and the counts above. The input pipeline only reads a folder that has it, so
an interrupted run never looks like a complete dataset. A run that may write (an empty
folder, or --overwrite) first removes the old ``shards.json`` and the hidden temporary shards
(``.shard-*.tmp.tfrecords``) a killed run left behind.

User errors (a missing folder, no annotation files, existing shards without --overwrite, no
valid item at all) end the CLI with one line ``error: <what>: <why>`` and exit code 2;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys

from src.cli import UserError, add_debug_flag, import_tensorflow, quiet_ctrl_c, report_errors


class CreateTfrecordsError(UserError, ValueError):
    """A user error that stops the whole run (bad folder, no input, existing shards...)."""


def build_parser():
    """The command line (it needs no TensorFlow, so its errors come before TensorFlow's start-up)."""
    parser = argparse.ArgumentParser(
        description="Write images/ + annotations/*.json as sharded tfrecords "
                    "(features: filename, image, xmin, ymin, xmax, ymax normalized) and shards.json.",
        epilog="example: python create_tfrecords.py --image_dir data/wider_prepared/images "
               "--annotations_dir data/wider_prepared/annotations --output data/train_shards "
               "--num_shards 150 --seed 0",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--image_dir", required=True, help="folder of the images")
    parser.add_argument("--annotations_dir", required=True, help="folder of the annotation JSON files")
    parser.add_argument("--output", required=True, help="output folder for shard-NNNN.tfrecords and shards.json")
    parser.add_argument("--num_shards", type=int, default=1,
                        help="number of shards (at most one per annotation file)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the deterministic shuffle")
    parser.add_argument("--overwrite", action="store_true", help="replace shards already in --output")
    parser.add_argument("--num_workers", type=int, default=2, help="threads that read and check images")
    return add_debug_flag(parser)


def parse_args(argv):
    """The parsed command line, with the checks that need no file read.

    Raises:
        UserError: a usage error, --num_shards or --num_workers < 1, a missing input folder.
    """
    args = build_parser().parse_args(argv)
    if args.num_shards < 1:
        raise CreateTfrecordsError(f"--num_shards must be >= 1, got {args.num_shards}")
    if args.num_workers < 1:
        raise CreateTfrecordsError(f"--num_workers must be >= 1, got {args.num_workers}")
    for flag, folder in (("--image_dir", args.image_dir), ("--annotations_dir", args.annotations_dir)):
        if not os.path.isdir(folder):
            raise CreateTfrecordsError(f"{folder}: folder not found ({flag})")
    return args


if __name__ == "__main__":
    # Ctrl-C while the modules load is one line; the arguments are checked before TensorFlow loads
    # (src.tfrecords imports it), so an error there is one line with no TensorFlow start-up line.
    quiet_ctrl_c()
    if report_errors(lambda argv: parse_args(argv) and 0) != 0:
        sys.exit(2)

import collections  # noqa: E402
import concurrent.futures  # noqa: E402
import glob  # noqa: E402
import logging  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import_tensorflow()  # before src.tfrecords: keeps TF's start-up lines to TF_CPP_MIN_LOG_LEVEL

from src.annotations import read_annotation  # noqa: E402
from src.box_formats import xyxy_to_yxyx  # noqa: E402
from src.datasets.image_io import as_rgb_jpeg, is_unsafe_filename  # noqa: E402
from src.tfrecords import (MANIFEST_NAME, TEMPORARY_SHARD_PATTERN, AtomicShardWriter,  # noqa: E402
                           encode_example, read_manifest, shard_index, shard_name, write_manifest)

logger = logging.getLogger("create_tfrecords")

COUNT_KEYS = ("written", "bad_annotation", "unsafe_filename", "missing_image", "corrupt_image",
              "size_mismatch", "inverted_box", "reencoded", "dropped_boxes", "clipped_boxes", "empty_images")


class SkipItem(Exception):
    """An annotation that cannot be written; `reason` is one of COUNT_KEYS."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


__all__ = ["COUNT_KEYS", "CreateTfrecordsError", "SkipItem", "build_record", "clip_and_normalize",
           "create_tfrecords", "is_unsafe_filename", "main"]


def clip_and_normalize(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """Clips pixel boxes to the image, drops empty ones and normalizes the rest.

    Args:
        boxes: float [N, 4] xmin, ymin, xmax, ymax pixels.
        width, height: image size in pixels.

    Returns:
        normalized: float64 [M, 4] ymin, xmin, ymax, xmax in [0, 1].
        num_dropped: boxes with no area left after clipping (N - M).
        num_clipped: kept boxes that were changed by clipping.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    limits = np.array([width, height, width, height], dtype=np.float64)
    clipped = np.clip(boxes, 0.0, limits)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    num_clipped = int(np.sum(np.any(clipped != boxes, axis=1) & keep))
    normalized = clipped[keep] / limits  # [M, 4] xmin, ymin, xmax, ymax
    return xyxy_to_yxyx(normalized), int(np.sum(~keep)), num_clipped


def build_record(annotation_path: str, image_dir: str) -> tuple[bytes, collections.Counter]:
    """Validates one annotation + image and serializes its tfrecord example.

    Args:
        annotation_path: path of an annotation JSON file.
        image_dir: folder the annotation's 'filename' is relative to.

    Returns:
        record: the serialized `tf.train.Example`.
        counts: Counter of 'reencoded', 'dropped_boxes', 'clipped_boxes', 'empty_images'.

    Raises:
        SkipItem: with the reason (a COUNT_KEYS name) and a one-line message naming the file.
    """
    try:
        annotation = read_annotation(annotation_path)
    except UnicodeDecodeError as error:  # a ValueError whose text does not name the file
        raise SkipItem("bad_annotation", f"{annotation_path}: not UTF-8 text ({error.reason} at byte "
                                         f"{error.start})") from None
    except ValueError as error:
        raise SkipItem("bad_annotation", str(error)) from None
    except OSError as error:
        raise SkipItem("bad_annotation", f"{annotation_path}: cannot read ({error.strerror or error})") from None
    if is_unsafe_filename(annotation.filename):
        raise SkipItem("unsafe_filename", f"{annotation_path}: filename '{annotation.filename}' "
                                          "leaves the image folder (absolute or '..')")
    for what, boxes in (("box", annotation.boxes), ("ignore region", annotation.ignore_boxes)):
        inverted = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
        if len(inverted):
            xmin, ymin, xmax, ymax = boxes[inverted[0]]
            raise SkipItem("inverted_box", f"{annotation_path}: {what} {inverted[0] + 1} has xmin {xmin:g}, ymin "
                                           f"{ymin:g}, xmax {xmax:g}, ymax {ymax:g}: swapped corners? (item skipped)")
    image_path = os.path.join(image_dir, annotation.filename)
    try:
        with open(image_path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise SkipItem("missing_image", f"{annotation_path}: image {image_path} cannot be read "
                                        f"({error.strerror or error})") from None
    try:
        checked = as_rgb_jpeg(data, image_path)
    except ValueError as error:
        raise SkipItem("corrupt_image", f"{annotation_path}: {error}") from None
    if (checked.width, checked.height) != (annotation.width, annotation.height):
        raise SkipItem("size_mismatch", f"{annotation_path}: annotation says {annotation.width}x"
                                        f"{annotation.height} but {image_path} is {checked.width}x{checked.height}")
    boxes, dropped, clipped = clip_and_normalize(annotation.boxes, checked.width, checked.height)
    # Ignore regions follow the same clipping; they are not counted as boxes.
    ignore_boxes, _, _ = clip_and_normalize(annotation.ignore_boxes, checked.width, checked.height)
    counts = collections.Counter(reencoded=int(checked.reencoded), dropped_boxes=dropped,
                                 clipped_boxes=clipped, empty_images=int(len(boxes) == 0))
    return encode_example(annotation.filename, checked.data, boxes, ignore_boxes), counts


def create_tfrecords(image_dir: str, annotations_dir: str, output_dir: str, num_shards: int, *,
                     seed: int = 0, overwrite: bool = False, num_workers: int = 2,
                     show_progress: bool = True) -> collections.Counter:
    """Writes every valid annotated image of `annotations_dir` into shards and a shards.json.

    Args:
        image_dir: folder of the images.
        annotations_dir: folder of the ``*.json`` annotations (at least one).
        output_dir: destination folder of ``shard-NNNN.tfrecords`` and ``shards.json``.
        num_shards: number of shards (>= 1); capped at the number of annotation files.
        seed: seed of the deterministic shuffle.
        overwrite: allow replacing existing shards; stale shards with an index >= the number
            written are then removed after the new ones are written.
        num_workers: threads that read and check images (order of the output is unaffected).
        show_progress: show a tqdm bar.

    Returns:
        Counter with the COUNT_KEYS (see the module docstring).

    Raises:
        CreateTfrecordsError (a ValueError): num_shards < 1, a missing input folder, no
            annotation file, existing shards without `overwrite`, or no item written at all
            (the new empty shards are then removed and no shards.json is written).
    """
    if num_shards < 1:
        raise CreateTfrecordsError(f"--num_shards must be >= 1, got {num_shards}")
    for flag, folder in (("--image_dir", image_dir), ("--annotations_dir", annotations_dir)):
        if not os.path.isdir(folder):
            raise CreateTfrecordsError(f"{folder}: folder not found ({flag})")
    annotation_paths = sorted(glob.glob(os.path.join(glob.escape(annotations_dir), "*.json")))
    if not annotation_paths:
        raise CreateTfrecordsError(f"{annotations_dir}: no *.json annotation files (--annotations_dir)")
    if num_shards > len(annotation_paths):
        logger.warning("--num_shards %d is more than the %d annotation files: writing %d shards",
                       num_shards, len(annotation_paths), len(annotation_paths))
        num_shards = len(annotation_paths)

    created = not os.path.isdir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    existing = sorted(path for path in glob.glob(os.path.join(glob.escape(output_dir), "shard-*.tfrecords"))
                      if shard_index(path) is not None)
    if existing and not overwrite:
        raise CreateTfrecordsError(f"{output_dir}: already holds {len(existing)} shard files; "
                                   "pass --overwrite to replace them")
    # From here on the folder is ours to write: first mark it incomplete (no manifest), and drop
    # the temporary shards of a killed run.
    manifest_path = os.path.join(output_dir, MANIFEST_NAME)
    if os.path.lexists(manifest_path):
        os.remove(manifest_path)
    for stale in glob.glob(os.path.join(glob.escape(output_dir), TEMPORARY_SHARD_PATTERN)):
        logger.info("removing %s (left by an interrupted run)", stale)
        os.remove(stale)

    order = np.random.default_rng(seed).permutation(len(annotation_paths))
    counts: collections.Counter = collections.Counter({key: 0 for key in COUNT_KEYS})

    def build(path: str):
        try:
            return build_record(path, image_dir)
        except SkipItem as skip:
            return skip

    written = []  # (path, number of records) of each new shard
    progress = tqdm(total=len(annotation_paths), desc="tfrecords", unit="img", disable=not show_progress)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        for shard, indices in enumerate(np.array_split(order, num_shards)):
            with AtomicShardWriter(os.path.join(output_dir, shard_name(shard))) as writer:
                for result in pool.map(build, [annotation_paths[i] for i in indices]):
                    progress.update(1)
                    if isinstance(result, SkipItem):
                        logger.warning("skipped: %s", result)
                        counts[result.reason] += 1
                        continue
                    record, item_counts = result
                    writer.write(record)
                    counts.update(item_counts)
                    counts["written"] += 1
            written.append((writer.path, writer.num_written))
    progress.close()
    for path in existing:
        if shard_index(path) >= num_shards:
            os.remove(path)
    if counts["written"] == 0:
        for path, _ in written:
            os.remove(path)
        if created:
            os.rmdir(output_dir)
        skipped = ", ".join(f"{key}={counts[key]}" for key in COUNT_KEYS if counts[key])
        raise CreateTfrecordsError(f"{annotations_dir}: none of the {len(annotation_paths)} annotation files "
                                   f"gave a valid item ({skipped}); no shards written")
    write_manifest(output_dir, written, extra={"counts": {key: int(counts[key]) for key in COUNT_KEYS},
                                               "seed": seed})
    return counts


def main(argv=None) -> int:
    """The CLI; returns the exit code (user errors: one ``error:`` line on stderr and 2)."""
    return report_errors(_main, argv)


def _main(argv) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = create_tfrecords(args.image_dir, args.annotations_dir, args.output, args.num_shards,
                              seed=args.seed, overwrite=args.overwrite, num_workers=args.num_workers)
    logger.info("done: %d shards and %s in %s; %s", read_manifest(args.output)["num_shards"],
                MANIFEST_NAME, args.output,
                ", ".join(f"{key}={counts[key]}" for key in COUNT_KEYS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
