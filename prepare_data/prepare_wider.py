"""Converts the official WIDER FACE download into images/ + annotations/*.json.

Box conventions: the gt file has pixels ``x1 y1 w h``; the annotation JSON gets pixels
``xmin = x1, ymin = y1, xmax = x1 + w, ymax = y1 + h``, clipped to the image.

Input (``--wider_dir``)::

    WIDER_train/images/<event>/<name>.jpg       WIDER_val/images/<event>/<name>.jpg
    wider_face_split/wider_face_train_bbx_gt.txt wider_face_split/wider_face_val_bbx_gt.txt

Output (``--output_dir``): ``images/<event>_<name>.jpg`` (the event folder becomes part of
the name, so names stay unique) and ``annotations/<event>_<name>.json``.

Rules: boxes with w or h <= 0 are dropped and counted (the real file has some); so are boxes
left empty after clipping to the image and, with ``--min_face_size``, boxes whose width or
height is below it. An image listed with 0 faces is kept with an empty object list. A
JPEG that decodes is copied byte for byte; other formats and non-RGB JPEGs are re-encoded
(counted); missing or undecodable images are skipped with a one-line warning and counted, and
so are image paths that leave the images folder (absolute, or with a '..' part:
``unsafe_filename``).

User errors end the CLI with one line ``error: <what>: <why>`` and exit code 2 (``--debug``:
the traceback): a missing --wider_dir or gt file, a malformed gt file
(``<file>:<line>: <problem>``; nothing is written then), a gt file that lists no image, or a
run in which no image could be converted.
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import sys

import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.annotations import Annotation, write_annotation  # noqa: E402
from src.atomic_io import write_bytes_atomic  # noqa: E402
from src.cli import UserError, add_debug_flag, report_errors  # noqa: E402
from src.datasets.image_io import is_unsafe_filename, read_checked_jpeg  # noqa: E402
from src.datasets.wider_format import parse_wider_gt  # noqa: E402

logger = logging.getLogger("prepare_wider")

SPLITS = ("train", "val")


def gt_path(wider_dir: str, split: str) -> str:
    """Path of the official gt file of `split` ('train' or 'val')."""
    return os.path.join(wider_dir, "wider_face_split", f"wider_face_{split}_bbx_gt.txt")


def output_name(relpath: str) -> str:
    """Flat output file name of a WIDER image, e.g. '0--Parade/0_Parade_x_1.jpg' -> '0--Parade_0_Parade_x_1.jpg'."""
    return relpath.replace("\\", "/").strip("/").replace("/", "_")


def wider_boxes_to_corners(boxes: np.ndarray, width: int, height: int,
                           min_face_size: float = 0.0) -> tuple[np.ndarray, collections.Counter]:
    """Turns WIDER box lines into clipped corner boxes, dropping the unusable ones.

    Args:
        boxes: float [N, 10] WIDER lines (x1, y1, w, h, six attributes), pixels.
        width, height: image size in pixels.
        min_face_size: boxes whose clipped width or height is below this are dropped (0: off).

    Returns:
        corners: float64 [M, 4] xmin, ymin, xmax, ymax pixels, clipped to the image, M <= N.
        dropped: Counter with keys 'degenerate' (w or h <= 0 in the file), 'outside' (empty
            after clipping) and 'small' (below min_face_size).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 10)
    dropped: collections.Counter = collections.Counter()
    valid = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    dropped["degenerate"] = int(np.sum(~valid))
    boxes = boxes[valid]
    corners = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]], axis=1)
    corners = np.clip(corners, 0.0, [width, height, width, height])
    sizes = np.stack([corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]], axis=1)  # [M, 2]
    inside = np.all(sizes > 0, axis=1)
    dropped["outside"] = int(np.sum(~inside))
    big = np.all(sizes >= min_face_size, axis=1) if min_face_size > 0 else np.ones(len(corners), dtype=bool)
    dropped["small"] = int(np.sum(inside & ~big))
    return corners[inside & big], dropped


# Column of the ``invalid`` attribute in a WIDER face line (x1 y1 w h blur expression
# illumination invalid occlusion pose).
INVALID_COLUMN = 7


def prepare_wider(wider_dir: str, output_dir: str, splits=SPLITS, min_face_size: float = 0.0,
                  show_progress: bool = True, invalid_as_ignore: bool = False) -> collections.Counter:
    """Converts the given WIDER splits (see the module docstring).

    Args:
        wider_dir: root of the official download.
        output_dir: destination; ``images/`` and ``annotations/`` are created in it.
        splits: iterable of 'train' / 'val'.
        min_face_size: drop faces smaller than this many pixels in width or height (0: keep all).
        show_progress: show a tqdm bar.
        invalid_as_ignore: faces WIDER marks ``invalid`` become ignore regions (training treats
            their anchors as neither face nor background) instead of faces, as the upstream kept them.

    Returns:
        Counter with 'images', 'faces', 'empty_images' (written with no face),
        'dropped_degenerate', 'dropped_outside', 'dropped_small', 'missing', 'corrupt',
        'reencoded', 'duplicate', 'unsafe_filename', 'ignore_regions'.

    Raises:
        FileNotFoundError: if `wider_dir` or a split's gt file is missing.
        src.cli.UserError: ``<file>:<line>: <problem>`` for a malformed gt file, or a gt file
            that lists no image (nothing is written then); no image converted at all.
    """
    if not os.path.isdir(wider_dir):
        raise FileNotFoundError(f"{wider_dir}: no such folder (--wider_dir, the WIDER FACE root)")
    jobs = []
    for split in splits:
        path = gt_path(wider_dir, split)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: WIDER gt file not found (is --wider_dir the dataset root?)")
        try:
            entries = parse_wider_gt(path)
        except UnicodeDecodeError as error:
            raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except ValueError as error:  # '<file>:<line>: <problem>'
            raise UserError(str(error)) from error
        if not entries:
            raise UserError(f"{path}: the WIDER gt file lists no image (empty file?)")
        jobs += [(split, entry) for entry in entries]

    counts: collections.Counter = collections.Counter()
    for key in ("images", "faces", "empty_images", "dropped_degenerate", "dropped_outside", "dropped_small",
                "missing", "corrupt", "reencoded", "duplicate", "unsafe_filename", "ignore_regions"):
        counts[key] = 0
    seen: set[str] = set()
    images_dir = os.path.join(output_dir, "images")
    annotations_dir = os.path.join(output_dir, "annotations")
    for split, entry in tqdm(jobs, desc="WIDER", unit="img", disable=not show_progress):
        if is_unsafe_filename(entry.relpath):
            logger.warning("%s: skipped, image path '%s' leaves WIDER_%s/images (absolute or '..')",
                           gt_path(wider_dir, split), entry.relpath, split)
            counts["unsafe_filename"] += 1
            continue
        image_path = os.path.join(wider_dir, f"WIDER_{split}", "images", entry.relpath)
        name = output_name(entry.relpath)
        if name in seen:
            logger.warning("%s: skipped, output name %s already used by another image", image_path, name)
            counts["duplicate"] += 1
            continue
        checked = read_checked_jpeg(image_path, counts, logger)
        if checked is None:
            continue
        boxes, ignore = entry.boxes, np.zeros((0, 4))
        if invalid_as_ignore:
            invalid = boxes[:, INVALID_COLUMN] == 1
            ignore, _ = wider_boxes_to_corners(boxes[invalid], checked.width, checked.height)
            boxes = boxes[~invalid]
        corners, dropped = wider_boxes_to_corners(boxes, checked.width, checked.height, min_face_size)
        for reason, number in dropped.items():
            counts[f"dropped_{reason}"] += number
        stem = os.path.splitext(name)[0]
        jpeg_name = stem + ".jpg"
        write_bytes_atomic(os.path.join(images_dir, jpeg_name), checked.data)
        write_annotation(os.path.join(annotations_dir, stem + ".json"),
                         Annotation(jpeg_name, checked.width, checked.height, 3, corners, ignore))
        seen.add(name)
        counts["images"] += 1
        counts["faces"] += len(corners)
        counts["ignore_regions"] += len(ignore)
        counts["empty_images"] += int(len(corners) == 0)
        counts["reencoded"] += int(checked.reencoded)
    if counts["images"] == 0:
        raise UserError(f"{wider_dir}: none of the {len(jobs)} listed images could be converted "
                        f"({format_summary(+counts)})")
    return counts


def format_summary(counts: collections.Counter) -> str:
    """One line: every count as name=value."""
    return ", ".join(f"{key}={value}" for key, value in counts.items())


def main(argv=None) -> int:
    """The CLI; returns the exit code (user errors: one ``error:`` line on stderr and 2)."""
    return report_errors(_main, argv)


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Convert WIDER FACE (official layout) to images/ + annotations/*.json.",
        epilog="example: python prepare_data/prepare_wider.py --wider_dir data/WIDER --split both "
               "--output_dir data/wider_prepared",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--wider_dir", required=True,
                        help="folder holding WIDER_train/, WIDER_val/ and wider_face_split/")
    parser.add_argument("--split", choices=("train", "val", "both"), default="both",
                        help="which split(s) to convert (the upstream trains on both)")
    parser.add_argument("--output_dir", required=True, help="destination folder")
    parser.add_argument("--min_face_size", type=float, default=0.0,
                        help="drop faces narrower or shorter than this many pixels (0: off)")
    parser.add_argument("--invalid_as_ignore", action="store_true",
                        help="faces WIDER marks 'invalid' become ignore regions (neither face nor "
                             "background in training) instead of faces")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    splits = SPLITS if args.split == "both" else (args.split,)
    counts = prepare_wider(args.wider_dir, args.output_dir, splits, args.min_face_size,
                           invalid_as_ignore=args.invalid_as_ignore)
    logger.info("done: %s -> %s", format_summary(counts), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
