"""Splits a folder of annotation JSON files into a training part and a fixed held-out part.

Box convention: the files are copied unchanged (``src/annotations.py``: pixels ``xmin, ymin,
xmax, ymax``).

Why: recipes, training lengths and thresholds are chosen on photos that no recipe trains on,
never on the set the figures are reported on (FDDB). The split must stay the same across
rebuilds, runs and machines, and must not move when photos are added or removed, so it is
decided per photo, not by shuffling a list: a photo is held out when the first 8 hex digits
of sha1(``salt`` + its image file name, as written in the annotation) read as an integer
below ``fraction`` * 16**8. Everything derived from a held-out photo (mosaic tiles, scene
canvases) must then be built from the held-out annotations only; build_realfaces.sh does so.

Outputs ``<train_dir>/<name>.json`` and ``<holdout_dir>/<name>.json`` (the same file names as
the input; atomic writes). A file that cannot be read is skipped with a one-line warning and
counted; the run goes on. Prints the counts as one JSON line.

Example:
    python3 prepare_data/split_holdout.py --annotations_dir data/realfaces/labels/lfw \\
        --train_dir data/realfaces/split/train/lfw --holdout_dir data/realfaces/split/holdout/lfw
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import logging
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.annotations import read_annotation  # noqa: E402
from src.atomic_io import write_text_atomic  # noqa: E402
from src.cli import USER_ERRORS, UserError, add_debug_flag, report_errors  # noqa: E402

logger = logging.getLogger("split_holdout")

DEFAULT_FRACTION = 0.1
DEFAULT_SALT = "faceboxes-holdout-v1"


def is_held_out(image_name: str, fraction: float = DEFAULT_FRACTION, salt: str = DEFAULT_SALT) -> bool:
    """Whether the photo `image_name` (the annotation's "filename") belongs to the held-out part.

    Deterministic and independent of every other photo: see the module docstring.
    """
    digest = hashlib.sha1((salt + image_name).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) < fraction * 16 ** 8


def split_folder(annotations_dir: str, train_dir: str, holdout_dir: str,
                 fraction: float = DEFAULT_FRACTION, salt: str = DEFAULT_SALT) -> dict:
    """Copies every annotation of `annotations_dir` to `train_dir` or `holdout_dir`.

    Returns:
        counts: 'train', 'holdout' (files written), 'holdout_faces', 'train_faces' (boxes),
        'skipped' (unreadable files).
    """
    if not 0.0 <= fraction <= 1.0:
        raise UserError(f"--fraction {fraction}: must lie in [0, 1]")
    if not os.path.isdir(annotations_dir):
        raise UserError(f"{annotations_dir}: annotation folder not found")
    names = sorted(glob.glob(os.path.join(annotations_dir, "*.json")))
    if not names:
        raise UserError(f"{annotations_dir}: no annotation (*.json) files")
    counts = {"train": 0, "holdout": 0, "train_faces": 0, "holdout_faces": 0, "skipped": 0}
    for path in names:
        try:
            annotation = read_annotation(path)
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (ValueError, OSError, UnicodeDecodeError) as error:
            logger.warning("skipped: %s", error)
            counts["skipped"] += 1
            continue
        part = "holdout" if is_held_out(annotation.filename, fraction, salt) else "train"
        destination = holdout_dir if part == "holdout" else train_dir
        os.makedirs(destination, exist_ok=True)
        write_text_atomic(os.path.join(destination, os.path.basename(path)), text)
        other = train_dir if part == "holdout" else holdout_dir
        stale = os.path.join(other, os.path.basename(path))
        if os.path.exists(stale):  # left by a split with another fraction or salt
            os.remove(stale)
        counts[part] += 1
        counts[part + "_faces"] += len(annotation.boxes)
    return counts


def main(argv=None) -> int:
    return report_errors(_main, argv, USER_ERRORS)


def _main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations_dir", required=True, help="folder of annotation *.json files")
    parser.add_argument("--train_dir", required=True, help="destination of the training part")
    parser.add_argument("--holdout_dir", required=True, help="destination of the held-out part")
    parser.add_argument("--fraction", type=float, default=DEFAULT_FRACTION,
                        help=f"share of photos held out (default {DEFAULT_FRACTION})")
    parser.add_argument("--salt", default=DEFAULT_SALT,
                        help="hash salt; a different one gives a different, equally fixed split")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = split_folder(args.annotations_dir, args.train_dir, args.holdout_dir, args.fraction, args.salt)
    print(json.dumps({"annotations_dir": args.annotations_dir, **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
