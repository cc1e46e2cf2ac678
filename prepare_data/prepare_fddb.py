"""Converts the official FDDB download into images/ + annotations/*.json.

Box conventions: FDDB gives ellipses ``major_r minor_r angle cx cy`` (pixels, radians); the
annotation JSON gets pixels ``xmin, ymin, xmax, ymax``: the EXACT axis-aligned box of each
rotated ellipse (`src.datasets.fddb_format.ellipses_to_boxes`), clipped to the image.

Input (``--fddb_dir``)::

    originalPics/<year>/<month>/<day>/big/img_<n>.jpg
    FDDB-folds/FDDB-fold-XX.txt, FDDB-folds/FDDB-fold-XX-ellipseList.txt   (XX = 01..10)

Output (``--output_dir``): ``images/<path with '/' -> '_'>.jpg`` (e.g.
``2002_08_11_big_img_591.jpg``) and ``annotations/<same stem>.json``.

Rules: the ellipse list decides which images and faces there are (a fold list that names
other images is reported). Grayscale (and any non-RGB) images are saved as 3-channel JPEGs;
RGB JPEGs are copied byte for byte. Boxes empty after clipping are dropped and counted;
missing or undecodable images are skipped with a one-line warning and counted, and so are
image paths that leave originalPics/ (absolute or with a '..' part: ``unsafe_filename``); a
missing fold file is reported and counted.

User errors end the CLI with one line ``error: <what>: <why>`` and exit code 2 (``--debug``:
the traceback): a missing --fddb_dir or FDDB-folds/ folder, none of the requested fold files,
a malformed ellipse or fold list (``<file>:<line>: <problem>``), fold files that list no
image, or a run in which no image could be converted.
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
from src.datasets.fddb_format import ellipses_to_boxes, read_ellipse_list, read_fold_list  # noqa: E402
from src.atomic_io import write_bytes_atomic  # noqa: E402
from src.cli import UserError, add_debug_flag, report_errors  # noqa: E402
from src.datasets.image_io import is_unsafe_filename, read_checked_jpeg  # noqa: E402

logger = logging.getLogger("prepare_fddb")

NUM_FOLDS = 10


def parse_folds(text: str) -> list[int]:
    """Parses a fold selection such as '1-10', '9', '1,3,5-7' into sorted fold numbers.

    Raises:
        ValueError: on a malformed selection or a fold outside 1..10.
    """
    folds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                first, last = (int(v) for v in part.split("-", 1))
            else:
                first = last = int(part)
        except ValueError:
            raise ValueError(f"--folds: cannot parse '{part}' (expected e.g. 1-10 or 1,3,5-7)") from None
        if not 1 <= first <= last <= NUM_FOLDS:
            raise ValueError(f"--folds: '{part}' is not a range within 1..{NUM_FOLDS}")
        folds.update(range(first, last + 1))
    return sorted(folds)


def output_stem(image_path: str) -> str:
    """Flat file stem of an FDDB image path, e.g. '2002/08/11/big/img_591' -> '2002_08_11_big_img_591'."""
    return image_path.replace("\\", "/").strip("/").replace("/", "_")


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, int]:
    """Clips x1, y1, x2, y2 pixel boxes [N, 4] to the image; returns (kept [M, 4], number dropped as empty)."""
    clipped = np.clip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), 0.0, [width, height, width, height])
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped[keep], int(np.sum(~keep))


def prepare_fddb(fddb_dir: str, output_dir: str, folds=tuple(range(1, NUM_FOLDS + 1)),
                 show_progress: bool = True) -> collections.Counter:
    """Converts the given FDDB folds (see the module docstring).

    Args:
        fddb_dir: root of the download (holds originalPics/ and FDDB-folds/).
        output_dir: destination; ``images/`` and ``annotations/`` are created in it.
        folds: fold numbers 1..10.
        show_progress: show a tqdm bar.

    Returns:
        Counter with 'images', 'faces', 'grayscale_or_reencoded', 'dropped_outside',
        'missing', 'corrupt', 'duplicate', 'missing_folds', 'fold_list_mismatch',
        'unsafe_filename'.

    Raises:
        FileNotFoundError: if `fddb_dir` or its FDDB-folds/ is missing, or none of the
            requested fold files exists.
        src.cli.UserError: ``<file>:<line>: <problem>`` for a malformed ellipse or fold list;
            fold files that list no image; no image converted at all.
    """
    counts: collections.Counter = collections.Counter()
    for key in ("images", "faces", "grayscale_or_reencoded", "dropped_outside", "missing", "corrupt",
                "duplicate", "missing_folds", "fold_list_mismatch", "unsafe_filename"):
        counts[key] = 0
    folds_dir = os.path.join(fddb_dir, "FDDB-folds")
    if not os.path.isdir(fddb_dir):
        raise FileNotFoundError(f"{fddb_dir}: no such folder (--fddb_dir, the FDDB root)")
    if not os.path.isdir(folds_dir):
        raise FileNotFoundError(f"{folds_dir}: no such folder (is --fddb_dir the FDDB root, holding "
                                "originalPics/ and FDDB-folds/?)")

    def read(reader, path):
        try:
            return reader(path)
        except UnicodeDecodeError as error:
            raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except ValueError as error:  # '<file>:<line>: <problem>'
            raise UserError(str(error)) from error

    jobs = []
    for fold in folds:
        ellipse_path = os.path.join(folds_dir, f"FDDB-fold-{fold:02d}-ellipseList.txt")
        if not os.path.isfile(ellipse_path):
            logger.warning("%s: fold file not found, fold %d skipped", ellipse_path, fold)
            counts["missing_folds"] += 1
            continue
        items = read(read_ellipse_list, ellipse_path)
        list_path = os.path.join(folds_dir, f"FDDB-fold-{fold:02d}.txt")
        if os.path.isfile(list_path) and read(read_fold_list, list_path) != [path for path, _ in items]:
            logger.warning("%s: image list differs from %s; using the ellipse list", list_path, ellipse_path)
            counts["fold_list_mismatch"] += 1
        jobs += items
    if counts["missing_folds"] == len(folds):
        raise FileNotFoundError(f"{folds_dir}: none of the requested FDDB fold files exists")
    if not jobs:
        raise UserError(f"{folds_dir}: the requested fold files list no image (empty files?)")

    seen: set[str] = set()
    for image_path, ellipses in tqdm(jobs, desc="FDDB", unit="img", disable=not show_progress):
        if is_unsafe_filename(image_path):
            logger.warning("%s: skipped, image path leaves originalPics/ (absolute or '..')", image_path)
            counts["unsafe_filename"] += 1
            continue
        stem = output_stem(image_path)
        source = os.path.join(fddb_dir, "originalPics", image_path + ".jpg")
        if stem in seen:
            logger.warning("%s: skipped, listed twice", source)
            counts["duplicate"] += 1
            continue
        checked = read_checked_jpeg(source, counts, logger)
        if checked is None:
            continue
        boxes, dropped = clip_boxes(ellipses_to_boxes(ellipses), checked.width, checked.height)
        write_bytes_atomic(os.path.join(output_dir, "images", stem + ".jpg"), checked.data)
        write_annotation(os.path.join(output_dir, "annotations", stem + ".json"),
                         Annotation(stem + ".jpg", checked.width, checked.height, 3, boxes))
        seen.add(stem)
        counts["images"] += 1
        counts["faces"] += len(boxes)
        counts["dropped_outside"] += dropped
        counts["grayscale_or_reencoded"] += int(checked.reencoded)
    if counts["images"] == 0:
        raise UserError(f"{fddb_dir}: none of the {len(jobs)} listed images could be converted ("
                        + ", ".join(f"{k}={v}" for k, v in counts.items() if v) + ")")
    return counts


def main(argv=None) -> int:
    """The CLI; returns the exit code (user errors: one ``error:`` line on stderr and 2)."""
    return report_errors(_main, argv)


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Convert FDDB (official layout) to images/ + annotations/*.json "
                    "(boxes = exact axis-aligned boxes of the ellipses).",
        epilog="example: python prepare_data/prepare_fddb.py --fddb_dir data/FDDB "
               "--output_dir data/fddb_prepared --folds 1-10",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--fddb_dir", required=True, help="folder holding originalPics/ and FDDB-folds/")
    parser.add_argument("--output_dir", required=True, help="destination folder")
    parser.add_argument("--folds", default="1-10", help="folds to convert, e.g. 1-10, 9, 1,3,5-7")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        folds = parse_folds(args.folds)
    except ValueError as error:
        raise UserError(str(error)) from error
    counts = prepare_fddb(args.fddb_dir, args.output_dir, folds)
    logger.info("done: %s -> %s", ", ".join(f"{k}={v}" for k, v in counts.items()), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
