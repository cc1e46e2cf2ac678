"""Labels a folder of photos with a pretrained teacher (YuNet) as annotation JSON files.

Box convention: the JSON files hold pixels ``xmin, ymin, xmax, ymax`` (the project's
annotation format, ``src/annotations.py``), faces under ``"object"`` and doubtful faces under
``"ignore"``.

For every image under ``--image_dir`` (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``; recursively)
the teacher runs on the photo padded with a grey border (tight portrait crops need the
context), and its detections become:

* faces: score >= ``--face_threshold`` (default 0.7);
* ignore regions: score >= ``--ignore_threshold`` (default 0.2) but not a face.

``--extra_ignore DIR`` adds every box of a matching annotation in DIR (same file stem) as an
ignore region, e.g. the head boxes of a VOC data set converted by prepare_voc.py.

The output is ``<output_dir>/<stem>.json`` with ``filename`` relative to ``--image_dir``
(sub-folders kept), so create_tfrecords.py reads the images in place:
``--image_dir <image_dir> --annotations_dir <output_dir>``. The stem is the relative path
with '/' replaced by '__'.

Resumable: images whose JSON already exists are skipped (counted as ``already_labelled``).
Unreadable images are skipped with a one-line warning and counted; the run goes on.
"""
from __future__ import annotations

import argparse
import collections
import logging
import multiprocessing
import os
import sys

import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.annotations import Annotation, read_annotation, write_annotation  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402
from src.datasets import teacher  # noqa: E402
from src.datasets.image_io import decode_image  # noqa: E402

logger = logging.getLogger("label_with_teacher")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
COUNT_KEYS = ("images", "faces", "ignore_regions", "no_face", "already_labelled", "unreadable")

_detect = None  # the teacher of a worker process (set by _init_worker)


def find_images(image_dir: str) -> list[str]:
    """Paths of the images under `image_dir`, relative to it, '/'-separated, sorted."""
    found = []
    for root, dirs, files in os.walk(image_dir):
        dirs.sort()
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(root, name), image_dir).replace(os.sep, "/"))
    return sorted(found)


def annotation_stem(relpath: str) -> str:
    """The output JSON stem of an image's relative path: 'a/b.jpg' -> 'a__b'."""
    return os.path.splitext(relpath)[0].replace("/", "__")


def _init_worker() -> None:
    global _detect
    _detect = teacher.load_yunet()


def _label_one(job):
    """Worker: (image path, relpath, thresholds, pad) -> (relpath, Annotation) or (relpath, error)."""
    path, relpath, face_threshold, ignore_threshold, pad = job
    try:
        with open(path, "rb") as f:
            rgb = np.asarray(decode_image(f.read(), path).convert("RGB"))
    except (OSError, ValueError) as error:
        return relpath, f"{path}: {error}" if isinstance(error, OSError) else str(error)
    faces, ignore = teacher.label_photo(rgb, _detect, face_threshold, ignore_threshold, pad)
    height, width = rgb.shape[:2]
    return relpath, Annotation(relpath, width, height, 3, faces, ignore)


def _extra_ignore_boxes(extra_dir: str | None, stem: str) -> np.ndarray:
    """Every box (faces and ignore regions) of extra_dir/<stem>.json, or none."""
    if extra_dir is None:
        return np.zeros((0, 4))
    path = os.path.join(extra_dir, stem + ".json")
    if not os.path.exists(path):
        return np.zeros((0, 4))
    extra = read_annotation(path)
    return np.concatenate([extra.boxes, extra.ignore_boxes])


def label_folder(image_dir: str, output_dir: str, *, face_threshold: float = teacher.FACE_THRESHOLD,
                 ignore_threshold: float = teacher.IGNORE_THRESHOLD,
                 pad_fraction: float = teacher.PAD_FRACTION, extra_ignore_dir: str | None = None,
                 num_workers: int = 2, show_progress: bool = True) -> collections.Counter:
    """Labels every image under `image_dir` (see the module docstring).

    Returns:
        Counter with COUNT_KEYS: images labelled now, faces and ignore regions written,
        labelled images without a face, images skipped as already labelled, unreadable
        images.

    Raises:
        ValueError: a missing input folder, bad thresholds, or no image at all.
        teacher.TeacherUnavailable: when yuface cannot be imported.
    """
    if not os.path.isdir(image_dir):
        raise ValueError(f"{image_dir}: image folder not found")
    if extra_ignore_dir is not None and not os.path.isdir(extra_ignore_dir):
        raise ValueError(f"{extra_ignore_dir}: --extra_ignore folder not found")
    if not 0.0 <= ignore_threshold <= face_threshold <= 1.0:
        raise ValueError(f"need 0 <= --ignore_threshold ({ignore_threshold}) <= --face_threshold "
                         f"({face_threshold}) <= 1")
    teacher.load_yunet()  # fail early, in this process, if the teacher is missing
    relpaths = find_images(image_dir)
    if not relpaths:
        raise ValueError(f"{image_dir}: no {'/'.join(IMAGE_EXTENSIONS)} images found")
    os.makedirs(output_dir, exist_ok=True)
    counts = collections.Counter({key: 0 for key in COUNT_KEYS})
    jobs = []
    for relpath in relpaths:
        if os.path.exists(os.path.join(output_dir, annotation_stem(relpath) + ".json")):
            counts["already_labelled"] += 1
        else:
            jobs.append((os.path.join(image_dir, relpath), relpath, face_threshold, ignore_threshold,
                         pad_fraction))
    with multiprocessing.get_context("spawn").Pool(max(1, num_workers), initializer=_init_worker) as pool:
        for relpath, result in tqdm(pool.imap(_label_one, jobs, chunksize=8), total=len(jobs),
                                    desc="teacher", unit="img", disable=not show_progress):
            if isinstance(result, str):
                logger.warning("skipped: %s", result)
                counts["unreadable"] += 1
                continue
            stem = annotation_stem(relpath)
            extra = _extra_ignore_boxes(extra_ignore_dir, stem)
            if len(extra):
                result = Annotation(result.filename, result.width, result.height, result.depth,
                                    result.boxes, np.concatenate([result.ignore_boxes, extra]))
            write_annotation(os.path.join(output_dir, stem + ".json"), result)
            counts["images"] += 1
            counts["faces"] += len(result.boxes)
            counts["ignore_regions"] += len(result.ignore_boxes)
            counts["no_face"] += int(len(result.boxes) == 0)
    return counts


def main(argv=None) -> int:
    """The CLI: user errors (paths, thresholds, a missing teacher) are one `error:` line, exit 2."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError, OSError, teacher.TeacherUnavailable))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Label photos with the YuNet teacher (yuface): confident boxes -> faces, "
                    "doubtful boxes -> ignore regions, as annotation JSON files.",
        epilog="example: python prepare_data/label_with_teacher.py --image_dir photos/ "
               "--output_dir data/photos_labels && python create_tfrecords.py --image_dir photos/ "
               "--annotations_dir data/photos_labels --output data/photo_shards --num_shards 4",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--image_dir", required=True, help="folder of photos (searched recursively)")
    parser.add_argument("--output_dir", required=True, help="folder for the annotation JSON files")
    parser.add_argument("--face_threshold", type=float, default=teacher.FACE_THRESHOLD,
                        help="teacher score from which a box is a face")
    parser.add_argument("--ignore_threshold", type=float, default=teacher.IGNORE_THRESHOLD,
                        help="teacher score from which a non-face box is an ignore region")
    parser.add_argument("--pad", type=float, default=teacher.PAD_FRACTION,
                        help="grey border added around each photo for the teacher, as a fraction of its size")
    parser.add_argument("--extra_ignore", default=None,
                        help="folder of annotation JSONs (same stems) whose boxes become ignore regions")
    parser.add_argument("--num_workers", type=int, default=2, help="teacher processes (one thread each)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = label_folder(args.image_dir, args.output_dir, face_threshold=args.face_threshold,
                          ignore_threshold=args.ignore_threshold, pad_fraction=args.pad,
                          extra_ignore_dir=args.extra_ignore, num_workers=args.num_workers)
    logger.info("done: %s -> %s", ", ".join(f"{key}={counts[key]}" for key in COUNT_KEYS), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
