"""Brings human-labelled face boxes to the teacher's box convention (one convention in training).

Box convention: annotation JSON files (``src/annotations.py``), pixels ``xmin, ymin, xmax, ymax``.

Why: the training set mixes two conventions. The YuNet teacher labels most photos; its boxes
reach from the forehead to the chin. The human boxes of the masked-face sets are drawn tighter
and lower (measured on the same faces of the training photos: their top edge lies ~20% of
the teacher box's height lower). A detector trained on both learns boxes in between, which
cut off the forehead: on FDDB, whose ellipses include it, a face then fails IoU 0.5 and also
counts as a false positive.

What it does, per annotation of ``--annotations_dir`` (the human labels) with the teacher's
annotation of the same stem in ``--teacher_dir`` (``label_with_teacher.py`` on the same photos):

* a human box and a teacher face box that are each other's best match with IoU >=
  ``--min_iou`` (default 0.4): the teacher's box replaces the human one;
* any other human box (a face the teacher missed or scored < 0.7): moved by the median
  relative edge offsets of all matched pairs (measured per run and printed), clipped to
  the image;
* ignore regions: the human annotation's own, unchanged; teacher faces without a human box
  are not added (the human labels decide what is a face).

Outputs ``<output_dir>/<stem>.json`` (atomic writes), the same file names and image names as
the input, so create_tfrecords.py and make_mosaics.py read them in place of the originals. A
bad annotation is skipped with a one-line warning and counted; the run goes on.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.annotations import read_annotation, write_annotation  # noqa: E402
from src.box_iou_numpy import iou  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402

logger = logging.getLogger("align_boxes")

MIN_IOU = 0.4
COUNT_KEYS = ("annotations", "boxes", "replaced", "moved", "no_teacher_file", "skipped")


def matched_pairs(human: np.ndarray, teacher: np.ndarray, min_iou: float = MIN_IOU):
    """(human index, teacher index) pairs that are each other's best match with IoU >= min_iou.

    Args: human float [N, 4], teacher float [M, 4], pixels xmin, ymin, xmax, ymax.
    Returns: list of (int, int).
    """
    if len(human) == 0 or len(teacher) == 0:
        return []
    overlaps = iou(human[:, None], teacher[None], "xyxy")  # [N, M]
    pairs = []
    for i in range(len(human)):
        j = int(overlaps[i].argmax())
        if overlaps[i, j] >= min_iou and int(overlaps[:, j].argmax()) == i:
            pairs.append((i, j))
    return pairs


def relative_offsets(human: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Edge offsets that turn human boxes into teacher boxes, relative to the human box size.

    Args: human, teacher: float [N, 4] pixels xmin, ymin, xmax, ymax (row i is a pair).
    Returns: float [N, 4]: (dxmin, dxmax) / human width, (dymin, dymax) / human height, in the
        order xmin, ymin, xmax, ymax.
    """
    return (teacher - human) / _edge_sizes(human)


def apply_offsets(boxes: np.ndarray, offsets: np.ndarray, width: int, height: int) -> np.ndarray:
    """Moves each edge of `boxes` by `offsets` (see relative_offsets) and clips to the image.

    Args: boxes float [N, 4] pixels xmin, ymin, xmax, ymax; offsets float [4]; width, height ints.
    Returns: float [N, 4].
    """
    moved = boxes + offsets[None] * _edge_sizes(boxes)
    return np.clip(moved, 0.0, [width, height, width, height])


def _edge_sizes(boxes: np.ndarray) -> np.ndarray:
    """[N, 4] (width, height, width, height) of xmin, ymin, xmax, ymax boxes: each edge's scale."""
    return np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)


def _read_pairs(annotations_dir, teacher_dir, names, counts):
    """Reads every (human, teacher) annotation pair; returns [(name, human, teacher or None)]."""
    loaded = []
    for name in names:
        try:
            human = read_annotation(os.path.join(annotations_dir, name))
            teacher_path = os.path.join(teacher_dir, name)
            teacher = read_annotation(teacher_path) if os.path.exists(teacher_path) else None
        except (ValueError, OSError) as error:
            logger.warning("skipped: %s", error)
            counts["skipped"] += 1
            continue
        if teacher is None:
            counts["no_teacher_file"] += 1
        loaded.append((name, human, teacher))
    return loaded


def align_folder(annotations_dir: str, teacher_dir: str, output_dir: str, min_iou: float = MIN_IOU):
    """Aligns every annotation of `annotations_dir` (see the module docstring).

    Returns:
        (counts dict with COUNT_KEYS, median offsets float [4] (xmin, ymin, xmax, ymax relative
        to the human box size) applied to unmatched boxes).

    Raises:
        ValueError: a folder is missing, holds no annotation, or no box has a teacher match
            (no offsets can be measured).
    """
    for what, folder in (("--annotations_dir", annotations_dir), ("--teacher_dir", teacher_dir)):
        if not os.path.isdir(folder):
            raise ValueError(f"{what} {folder}: not a folder")
    names = sorted(n for n in os.listdir(annotations_dir) if n.endswith(".json"))
    if not names:
        raise ValueError(f"--annotations_dir {annotations_dir}: no .json annotation files")
    counts = dict.fromkeys(COUNT_KEYS, 0)
    loaded = _read_pairs(annotations_dir, teacher_dir, names, counts)
    pairs_of = [matched_pairs(human.boxes, teacher.boxes, min_iou) if teacher is not None else []
                for _, human, teacher in loaded]
    offsets = []
    for (_, human, teacher), pairs in zip(loaded, pairs_of):
        if pairs:
            rows, cols = map(list, zip(*pairs))
            offsets.append(relative_offsets(human.boxes[rows], teacher.boxes[cols]))
    if not offsets:
        raise ValueError(f"no human box of {annotations_dir} has a teacher box with IoU >= {min_iou} "
                         f"in {teacher_dir}: nothing to measure the offsets on")
    median = np.median(np.concatenate(offsets), axis=0)
    for (name, human, teacher), pairs in zip(loaded, pairs_of):
        boxes = human.boxes.copy()
        replaced = np.zeros(len(boxes), bool)
        for i, j in pairs:
            boxes[i], replaced[i] = teacher.boxes[j], True
        if (~replaced).any():
            boxes[~replaced] = apply_offsets(human.boxes[~replaced], median, human.width, human.height)
        write_annotation(os.path.join(output_dir, name), dataclasses.replace(human, boxes=boxes))
        counts["annotations"] += 1
        counts["boxes"] += len(boxes)
        counts["replaced"] += int(replaced.sum())
        counts["moved"] += int((~replaced).sum())
    return counts, median


def main(argv=None) -> int:
    """The CLI: user errors are one `error:` line, exit 2."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError, OSError))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Bring human-labelled face boxes to the YuNet teacher's box convention: matched "
                    "boxes are replaced by the teacher's, the others moved by the median offsets.",
        epilog="example: python prepare_data/label_with_teacher.py --image_dir scenes/images --output_dir "
               "labels/scenes_teacher && python prepare_data/align_boxes.py --annotations_dir labels/scenes "
               "--teacher_dir labels/scenes_teacher --output_dir labels/scenes_aligned",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--annotations_dir", required=True, help="the human annotation JSON files")
    parser.add_argument("--teacher_dir", required=True,
                        help="label_with_teacher.py's annotations of the same photos (same file names)")
    parser.add_argument("--output_dir", required=True, help="folder for the aligned annotation files")
    parser.add_argument("--min_iou", type=float, default=MIN_IOU,
                        help="IoU from which a human box and a teacher box are the same face")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not 0.0 < args.min_iou <= 1.0:
        raise ValueError(f"--min_iou must be in (0, 1], got {args.min_iou}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts, median = align_folder(args.annotations_dir, args.teacher_dir, args.output_dir, args.min_iou)
    logger.info("median offsets of matched pairs (relative to the human box: xmin/w, ymin/h, xmax/w, "
                "ymax/h): %s", ", ".join(f"{value:+.3f}" for value in median))
    logger.info("done: %s -> %s", ", ".join(f"{key}={counts[key]}" for key in COUNT_KEYS), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
