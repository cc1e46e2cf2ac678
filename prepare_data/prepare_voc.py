"""Converts Pascal VOC XML annotations into the project's annotation JSON files.

Box conventions: VOC XML and the JSON files both hold pixels ``xmin, ymin, xmax, ymax``.
Boxes are clipped to the image; boxes left with no area are dropped and counted.

Input: ``--annotations_dir`` of ``*.xml`` and ``--image_dir`` with the images they name
(``<filename>``). Output: ``<output_dir>/<xml stem>.json`` with ``filename`` relative to
``--image_dir``, so create_tfrecords.py reads the images in place. ``--classes`` picks the
face classes (default: every class), ``--ignore_classes`` the classes that become ignore
regions (e.g. heads seen from behind), ``--difficult_as_ignore`` turns <difficult> faces into
ignore regions.

A malformed XML file is reported as ``<file>:<line>: <problem>``, skipped and counted; so is
an XML whose image is missing or unreadable. The run goes on.
"""
from __future__ import annotations

import argparse
import collections
import glob
import logging
import os
import sys

import numpy as np
from PIL import Image
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.annotations import Annotation, write_annotation  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402
from src.datasets.voc_format import read_voc, select_boxes  # noqa: E402

logger = logging.getLogger("prepare_voc")

COUNT_KEYS = ("images", "faces", "ignore_regions", "bad_xml", "missing_image", "unsafe_filename",
              "dropped_boxes", "clipped_boxes", "size_from_image")


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """Clips pixel boxes [N, 4] to the image; returns (kept [M, 4], dropped, clipped) counts."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    clipped = np.clip(boxes, 0.0, [width, height, width, height])
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    changed = int(np.sum(np.any(clipped != boxes, axis=1) & keep))
    return clipped[keep], int(np.sum(~keep)), changed


def _is_unsafe(filename: str) -> bool:
    return os.path.isabs(filename) or any(part == ".." for part in filename.replace("\\", "/").split("/"))


def convert_voc(annotations_dir: str, image_dir: str, output_dir: str, *, classes=(), ignore_classes=(),
                difficult_as_ignore: bool = False, show_progress: bool = True) -> collections.Counter:
    """Converts every ``*.xml`` of `annotations_dir` (see the module docstring).

    Returns:
        Counter with COUNT_KEYS.

    Raises:
        ValueError: a missing folder, or no XML file at all.
    """
    for folder in (annotations_dir, image_dir):
        if not os.path.isdir(folder):
            raise ValueError(f"{folder}: folder not found")
    paths = sorted(glob.glob(os.path.join(annotations_dir, "*.xml")))
    if not paths:
        raise ValueError(f"{annotations_dir}: no *.xml files")
    counts = collections.Counter({key: 0 for key in COUNT_KEYS})
    for path in tqdm(paths, desc="VOC", unit="xml", disable=not show_progress):
        try:
            voc = read_voc(path)
        except (ValueError, OSError) as error:
            logger.warning("skipped: %s", error)
            counts["bad_xml"] += 1
            continue
        if _is_unsafe(voc.filename):
            logger.warning("skipped: %s: <filename> %r leaves the image folder", path, voc.filename)
            counts["unsafe_filename"] += 1
            continue
        image_path = os.path.join(image_dir, voc.filename)
        width, height = voc.width, voc.height
        try:
            with Image.open(image_path) as image:  # reads the header only
                if (width, height) != image.size:
                    if width or height:
                        logger.warning("%s: size %dx%d differs from %s (%dx%d); using the image's",
                                       path, width, height, image_path, *image.size)
                    width, height = image.size
                    counts["size_from_image"] += 1
        except (OSError, ValueError) as error:
            logger.warning("skipped: %s: image %s cannot be read (%s)", path, image_path, error)
            counts["missing_image"] += 1
            continue
        faces, ignore = select_boxes(voc.objects, set(classes), set(ignore_classes), difficult_as_ignore)
        faces, dropped, clipped = clip_boxes(faces, width, height)
        ignore, dropped_ignore, _ = clip_boxes(ignore, width, height)
        stem = os.path.splitext(os.path.basename(path))[0]
        write_annotation(os.path.join(output_dir, stem + ".json"),
                         Annotation(voc.filename, width, height, 3, faces, ignore))
        counts["images"] += 1
        counts["faces"] += len(faces)
        counts["ignore_regions"] += len(ignore)
        counts["dropped_boxes"] += dropped + dropped_ignore
        counts["clipped_boxes"] += clipped
    return counts


def _names(text: str) -> tuple:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def main(argv=None) -> int:
    """The CLI: user errors (missing folders, no XML) are one `error:` line, exit 2."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError, OSError))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Convert Pascal VOC XML annotations to annotation JSON files (faces + ignore regions).",
        epilog="example: python prepare_data/prepare_voc.py --annotations_dir masks/annotations "
               "--image_dir masks/images --output_dir data/masks_labels "
               "--classes with_mask,without_mask,mask_weared_incorrect",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--annotations_dir", required=True, help="folder of VOC *.xml files")
    parser.add_argument("--image_dir", required=True, help="folder the XML <filename>s are relative to")
    parser.add_argument("--output_dir", required=True, help="folder for the annotation JSON files")
    parser.add_argument("--classes", default="", help="comma-separated face class names (empty: all)")
    parser.add_argument("--ignore_classes", default="", help="comma-separated class names that become ignore regions")
    parser.add_argument("--difficult_as_ignore", action="store_true", help="<difficult> faces become ignore regions")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = convert_voc(args.annotations_dir, args.image_dir, args.output_dir,
                         classes=_names(args.classes), ignore_classes=_names(args.ignore_classes),
                         difficult_as_ignore=args.difficult_as_ignore)
    logger.info("done: %s -> %s", ", ".join(f"{key}={counts[key]}" for key in COUNT_KEYS), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
