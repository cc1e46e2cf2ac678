"""Mines hard negatives: crops of labelled photos where a detector fires but no face is.

Box convention: the annotation JSON files hold pixels ``xmin, ymin, xmax, ymax`` (faces under
``"object"``, ignore regions under ``"ignore"``, see ``src/annotations.py``); the detector's
boxes are ``[ymin, xmin, ymax, xmax]`` pixels (``FaceDetector``).

A frozen detector (``--model``, e.g. the shipped ``model/facebox.pb``) runs on every labelled
photo of ``--sources`` (``IMAGE_DIR:ANNOTATIONS_DIR``). A detection scoring at least
``--min_score`` becomes a negative crop (the box grown by ``--margin`` on every side, clipped to
the photo) only when nothing in that crop can be a face:

* the crop overlaps no face and no ignore region of the photo's labels;
* the box keeps ``EDGE_PX`` px from the photo's border (faces cut off by the border, common at
  the edges of LFW crops, are rarely labelled);
* the crop overlaps no box the YuNet teacher finds in the photo at its lowest score (0.2), and
  the teacher finds no face in the crop itself enlarged to ``TEACHER_CROP_SIDE`` px, so faces
  the labels missed stay out (``--no_teacher`` skips this check).

On real photos the shipped model's false positives are letters and logos, hands and fists,
ears, clothing; crops of exactly such things, pasted into mosaics by
``make_mosaics.py --negatives``, show them to the detector as background many times over.

Output: ``<output_dir>/images/<stem>_<k>.jpg`` (``<stem>`` is the annotation's file stem; a stem
that comes again from another source gets ``<stem>_<k>_<n>.jpg``) and
``<output_dir>/negatives.json``: a list of ``{"image", "source", "box", "score"}``, ``box``
being the detection in pixels ``xmin, ymin, xmax, ymax`` of the crop. Unreadable photos or
annotations are skipped with a one-line warning and counted; every file is written atomically.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src import box_iou_numpy  # noqa: E402
from src.annotations import read_annotation  # noqa: E402
from src.atomic_io import write_bytes_atomic  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402
from src.datasets import teacher  # noqa: E402
from src.datasets.image_io import decode_image, encode_jpeg  # noqa: E402

logger = logging.getLogger("mine_negatives")

JPEG_QUALITY = 92
# A detection closer than this to the photo's border may be a face cut off by it: not mined.
EDGE_PX = 3
# Crops are enlarged to this long side (px) for the teacher's second look.
TEACHER_CROP_SIDE = 200
COUNT_KEYS = ("images", "detections", "negatives", "near_label", "near_edge", "near_teacher_face",
              "too_small", "unreadable")


def _parse_source(spec: str) -> tuple[str, str]:
    parts = spec.split(":")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"source '{spec}': expected IMAGE_DIR:ANNOTATIONS_DIR")
    for folder in parts:
        if not os.path.isdir(folder):
            raise ValueError(f"source '{spec}': {folder}: folder not found")
    return parts[0], parts[1]


def _overlaps(rect: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether pixel rect x1, y1, x2, y2 shares any area with one of boxes [N, 4] (same convention)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return bool(np.any(box_iou_numpy.iou(np.asarray(rect, np.float64), boxes, "xyxy") > 0))


def negative_crops(detections: np.ndarray, scores: np.ndarray, labels: np.ndarray, width: int,
                   height: int, *, min_score: float, margin: float,
                   counts: collections.Counter | None = None) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Picks the detections of one photo that may be negatives: the label and edge checks of
    the module docstring (the teacher's checks are `mine`'s).

    Args:
        detections: float [N, 4] pixels ymin, xmin, ymax, xmax (FaceDetector's boxes).
        scores: float [N].
        labels: float [M, 4] pixels x1, y1, x2, y2: the photo's faces and ignore regions.
        width, height: the photo's size in pixels.
        min_score: detections scoring below are not looked at.
        margin: the crop is the box grown by this fraction of its width / height on each side.
        counts: a Counter; "detections", "near_label", "near_edge", "too_small" (a crop under
            2 px a side) are added.

    Returns:
        a list of (crop rect int64 [4] x1, y1, x2, y2, the box float64 [4] x1, y1, x2, y2 in the
        crop's pixels, score), in detection order.
    """
    counts = collections.Counter() if counts is None else counts
    picked = []
    for (ymin, xmin, ymax, xmax), score in zip(np.asarray(detections, np.float64).reshape(-1, 4),
                                               np.asarray(scores, np.float64).reshape(-1)):
        if score < min_score:
            continue
        counts["detections"] += 1
        if xmin < EDGE_PX or ymin < EDGE_PX or xmax > width - EDGE_PX or ymax > height - EDGE_PX:
            counts["near_edge"] += 1
            continue
        dx, dy = margin * (xmax - xmin), margin * (ymax - ymin)
        rect = np.array([max(0.0, np.floor(xmin - dx)), max(0.0, np.floor(ymin - dy)),
                         min(float(width), np.ceil(xmax + dx)), min(float(height), np.ceil(ymax + dy))])
        if rect[2] - rect[0] < 2 or rect[3] - rect[1] < 2:
            counts["too_small"] += 1
            continue
        if _overlaps(rect, labels):
            counts["near_label"] += 1
            continue
        box = np.array([xmin, ymin, xmax, ymax]) - [rect[0], rect[1], rect[0], rect[1]]
        picked.append((rect.astype(np.int64), box, float(score)))
    return picked


def _teacher_sees_face(rgb: np.ndarray, rect: np.ndarray, detect_teacher) -> bool:
    """Whether the teacher finds a face (score >= 0.2) in the crop itself, enlarged to
    TEACHER_CROP_SIDE px on its long side: small or partly hidden faces it misses in the
    whole photo are often found this way."""
    x1, y1, x2, y2 = (int(v) for v in rect)
    crop = np.ascontiguousarray(rgb[y1:y2, x1:x2])
    scale = TEACHER_CROP_SIDE / max(crop.shape[:2])
    if scale > 1.0:
        crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                          interpolation=cv2.INTER_CUBIC)
    faces, ignore = teacher.label_photo(crop, detect_teacher, teacher.IGNORE_THRESHOLD,
                                        teacher.IGNORE_THRESHOLD)
    return bool(len(faces) + len(ignore))


def mine(sources, model_path: str, output_dir: str, *, min_score: float = 0.5, margin: float = 0.25,
         use_teacher: bool = True, max_dimension: int = 1024, precision: str = "float32",
         show_progress: bool = True, detector=None) -> collections.Counter:
    """Mines every labelled photo of `sources` (see the module docstring).

    Args:
        sources: IMAGE_DIR:ANNOTATIONS_DIR strings.
        model_path: a frozen .pb for FaceDetector (unused when `detector` is given).
        output_dir: where images/ and negatives.json go.
        min_score, margin: see `negative_crops`.
        use_teacher: run the YuNet teacher on photos with candidates (needs yuface).
        max_dimension: photos are downscaled for detection so that their long side is at most this.
        precision: FaceDetector's precision.
        detector: a callable ``(rgb, score_threshold) -> (boxes [N, 4] yxyx, scores [N])``, for tests.

    Returns:
        Counter with COUNT_KEYS.

    Raises:
        ValueError: a bad source, margin or score.
        teacher.TeacherUnavailable: `use_teacher` and no yuface.
    """
    parsed = [_parse_source(spec) for spec in sources]
    if not parsed:
        raise ValueError("give at least one --sources IMAGE_DIR:ANNOTATIONS_DIR")
    if not 0.0 <= min_score <= 1.0:
        raise ValueError(f"--min_score must be in [0, 1], got {min_score}")
    if not margin >= 0.0:
        raise ValueError(f"--margin must be >= 0, got {margin}")
    detect_teacher = teacher.load_yunet() if use_teacher else None
    if detector is None:
        from face_detector import FaceDetector  # noqa: PLC0415 (TensorFlow only when needed)
        face_detector = FaceDetector(model_path, max_dimension=max_dimension, precision=precision)

        def detector(rgb, score_threshold):
            return face_detector(rgb, score_threshold=score_threshold)

    counts = collections.Counter({key: 0 for key in COUNT_KEYS})
    manifest = []
    taken = set()
    jobs = []
    for image_dir, annotations_dir in parsed:
        names = sorted(name for name in os.listdir(annotations_dir) if name.endswith(".json"))
        jobs += [(image_dir, os.path.join(annotations_dir, name)) for name in names]
    for image_dir, path in tqdm(jobs, desc="mining", unit="img", disable=not show_progress):
        try:
            annotation = read_annotation(path)
            image_path = os.path.join(image_dir, annotation.filename)
            with open(image_path, "rb") as f:
                rgb = np.asarray(decode_image(f.read(), image_path).convert("RGB"))
        except (OSError, ValueError, UnicodeDecodeError) as error:
            logger.warning("skipped: %s", error)
            counts["unreadable"] += 1
            continue
        counts["images"] += 1
        height, width = rgb.shape[:2]
        boxes, scores = detector(rgb, min_score)
        if not len(boxes):
            continue
        labels = np.concatenate([annotation.boxes.reshape(-1, 4), annotation.ignore_boxes.reshape(-1, 4)])
        crops = negative_crops(boxes, scores, labels, width, height, min_score=min_score,
                               margin=margin, counts=counts)
        if crops and detect_teacher is not None:  # the teacher only where a crop is left to check
            teacher_boxes = np.concatenate(teacher.label_photo(
                rgb, detect_teacher, teacher.IGNORE_THRESHOLD, teacher.IGNORE_THRESHOLD))
            kept = []
            for rect, box, score in crops:
                if _overlaps(rect, teacher_boxes) or _teacher_sees_face(rgb, rect, detect_teacher):
                    counts["near_teacher_face"] += 1
                else:
                    kept.append((rect, box, score))
            crops = kept
        stem = os.path.splitext(os.path.basename(path))[0]
        for k, (rect, box, score) in enumerate(crops):
            name, repeat = f"{stem}_{k}.jpg", 1
            while name in taken:  # the same stem in another source
                name, repeat = f"{stem}_{k}_{repeat}.jpg", repeat + 1
            taken.add(name)
            x1, y1, x2, y2 = (int(v) for v in rect)
            write_bytes_atomic(os.path.join(output_dir, "images", name),
                               encode_jpeg(np.ascontiguousarray(rgb[y1:y2, x1:x2]), JPEG_QUALITY))
            manifest.append({"image": name, "source": annotation.filename,
                             "box": [round(float(v), 2) for v in box], "score": round(score, 4)})
            counts["negatives"] += 1
    write_bytes_atomic(os.path.join(output_dir, "negatives.json"),
                       (json.dumps(manifest, indent=1) + "\n").encode())
    return counts


def main(argv=None) -> int:
    """The CLI: user errors (paths, numbers, a missing teacher) are one `error:` line, exit 2."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError, OSError, teacher.TeacherUnavailable))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Crop hard negatives (where a detector fires but no face is) from labelled photos.",
        epilog="example: python prepare_data/mine_negatives.py --model model/facebox.pb "
               "--sources photos/:data/photos_labels --output_dir data/negatives && "
               "python prepare_data/make_mosaics.py ... --negatives data/negatives",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="frozen .pb of the detector to mine with")
    parser.add_argument("--sources", action="append", required=True,
                        help="IMAGE_DIR:ANNOTATIONS_DIR of labelled photos (repeatable)")
    parser.add_argument("--output_dir", required=True, help="folder for images/ and negatives.json")
    parser.add_argument("--min_score", type=float, default=0.5, help="detections scoring below are ignored")
    parser.add_argument("--margin", type=float, default=0.25,
                        help="context kept around a box, as a fraction of its size on each side")
    parser.add_argument("--no_teacher", action="store_true",
                        help="skip the YuNet check for unlabelled faces (not recommended)")
    parser.add_argument("--max_dimension", type=int, default=1024,
                        help="photos are downscaled for detection to this long side")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = mine(args.sources, args.model, args.output_dir, min_score=args.min_score,
                  margin=args.margin, use_teacher=not args.no_teacher, max_dimension=args.max_dimension)
    logger.info("done: %s -> %s", ", ".join(f"{key}={counts[key]}" for key in COUNT_KEYS), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
