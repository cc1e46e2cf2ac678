"""Writes an in-plane-rotated copy of every photo in a folder, for teacher labelling.

Tilted faces (heads leaning 20-45 degrees) are among the faces a detector trained on upright
portraits misses. Rotating the photos and labelling the rotated copies with the teacher
(``label_with_teacher.py``) gives tilted faces with boxes in the teacher's own convention,
which rotating the old boxes cannot give (a rotated box's bounding box is a different box).

Each photo is rotated about its centre by an angle whose size is drawn uniformly from
``[--min_angle, --max_angle]`` degrees, with a random sign, and cut to the largest centred
rectangle of the photo's aspect ratio that holds no pixel from outside the photo (no filled
corners for the detector to learn as a cue). The angle depends only on ``--seed`` and the
photo's relative path, so a run is reproducible and resumable: existing outputs are kept
(a folder made with another seed or other angles is refused rather than mixed).

Output: ``<output_dir>/<relative path>`` with a ``.jpg`` suffix (sub-folders kept, so the
teacher's ``filename`` fields follow the same layout), and ``<output_dir>/rotations.json``:
``{"seed", "min_angle", "max_angle", "angles": {relative output path: degrees}}``
(counter-clockwise positive) for every photo written. Unreadable photos are skipped with a
one-line warning and counted, as are photos whose output name another photo already takes
(``a.png`` and ``a.jpg``); the run goes on.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import math
import multiprocessing
import os
import sys
import zlib

import cv2
import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from prepare_data.label_with_teacher import find_images  # noqa: E402
from src.atomic_io import write_bytes_atomic, write_text_atomic  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402
from src.datasets.image_io import decode_image, encode_jpeg  # noqa: E402

logger = logging.getLogger("rotate_photos")

JPEG_QUALITY = 92
COUNT_KEYS = ("images", "rotated", "already_rotated", "unreadable", "name_clash")
MANIFEST_NAME = "rotations.json"


def photo_angle(seed: int, relpath: str, min_angle: float, max_angle: float) -> float:
    """The rotation (degrees, counter-clockwise positive) of one photo: size uniform in
    [min_angle, max_angle], random sign, a function of (seed, relpath) only."""
    rng = np.random.default_rng([seed, zlib.crc32(relpath.encode("utf-8"))])
    size = rng.uniform(min_angle, max_angle)
    return float(size if rng.random() < 0.5 else -size)


def inner_scale(width: float, height: float, angle: float) -> float:
    """The largest s such that the centred s*width x s*height rectangle lies inside the
    width x height rectangle rotated by `angle` degrees about the same centre."""
    c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    # A corner (s*w/2, s*h/2) projected onto the rotated rectangle's axes must stay within w/2, h/2.
    return min(width / (width * c + height * s), height / (width * s + height * c))


def rotate_and_crop(image: np.ndarray, angle: float) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [h, w, C]: rotated `angle` degrees counter-clockwise about the
    centre, cut to the largest centred rectangle of aspect W:H with no pixel from outside."""
    height, width = image.shape[:2]
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    rotated = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT)
    scale = inner_scale(width, height, angle)
    # Round inwards by a pixel a side so that interpolation never reaches the outside (the 1e-6
    # keeps a quarter turn's cos(90) ~ 6e-17 from costing a pixel).
    crop_w = max(1, int(math.floor(width * scale + 1e-6)) - 2)
    crop_h = max(1, int(math.floor(height * scale + 1e-6)) - 2)
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    return rotated[y0:y0 + crop_h, x0:x0 + crop_w]


def output_relpath(relpath: str) -> str:
    """'a/b.png' -> 'a/b.jpg' (every output is a JPEG)."""
    return os.path.splitext(relpath)[0] + ".jpg"


def _rotate_one(job):
    """Worker: (source, destination, angle) -> None, or a one-line error."""
    source, destination, angle = job
    try:
        with open(source, "rb") as f:
            rgb = np.asarray(decode_image(f.read(), source).convert("RGB"))
    except (OSError, ValueError) as error:
        return f"{source}: {error}" if isinstance(error, OSError) else str(error)
    write_bytes_atomic(destination, encode_jpeg(rotate_and_crop(rgb, angle), JPEG_QUALITY))
    return None


def rotate_folder(image_dir: str, output_dir: str, *, min_angle: float = 5.0, max_angle: float = 40.0,
                  seed: int = 0, num_workers: int = 2) -> collections.Counter:
    """Rotates every photo under `image_dir` into `output_dir`; returns the counts (COUNT_KEYS)."""
    if not os.path.isdir(image_dir):
        raise ValueError(f"--image_dir {image_dir}: not a folder")
    if not 0 <= min_angle <= max_angle <= 90:
        raise ValueError(f"--min_angle {min_angle}, --max_angle {max_angle}: need 0 <= min <= max <= 90")
    relpaths = find_images(image_dir)
    if not relpaths:
        raise ValueError(f"--image_dir {image_dir}: no images (.jpg, .jpeg, .png, .bmp)")
    settings = {"seed": seed, "min_angle": float(min_angle), "max_angle": float(max_angle)}
    manifest_path = os.path.join(output_dir, MANIFEST_NAME)
    _check_earlier_settings(manifest_path, settings)
    counts = collections.Counter({key: 0 for key in COUNT_KEYS})
    counts["images"] = len(relpaths)
    angles, jobs = {}, []
    for relpath in relpaths:
        out = output_relpath(relpath)
        if out in angles:
            counts["name_clash"] += 1
            logger.warning("skipped: %s: its output %s is taken by another photo", relpath, out)
            continue
        angles[out] = round(photo_angle(seed, relpath, min_angle, max_angle), 3)
        destination = os.path.join(output_dir, out)
        if os.path.exists(destination):
            counts["already_rotated"] += 1
            continue
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        jobs.append((os.path.join(image_dir, relpath), destination, angles[out]))
    pool = multiprocessing.Pool(num_workers) if num_workers > 1 and len(jobs) > 1 else None
    try:
        results = pool.imap(_rotate_one, jobs, chunksize=16) if pool else map(_rotate_one, jobs)
        for error in tqdm(results, total=len(jobs), desc="rotating", unit="img", disable=None):
            if error is None:
                counts["rotated"] += 1
            else:
                counts["unreadable"] += 1
                logger.warning("skipped: %s", error)
    finally:
        if pool:
            pool.close()
            pool.join()
    written = {out: angle for out, angle in angles.items() if os.path.exists(os.path.join(output_dir, out))}
    write_text_atomic(manifest_path, json.dumps({**settings, "angles": written}, indent=0, sort_keys=True))
    return counts


def _check_earlier_settings(manifest_path: str, settings: dict) -> None:
    """Refuses to resume into a folder whose rotations.json was written with other settings."""
    if not os.path.exists(manifest_path):
        return
    try:
        with open(manifest_path, encoding="utf-8") as f:
            earlier = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"{manifest_path}: line {error.lineno}: not valid JSON ({error.msg})") from None
    earlier = {key: earlier.get(key) for key in settings} if isinstance(earlier, dict) else None
    if earlier != settings:
        raise ValueError(f"{manifest_path}: written with {earlier}, not {settings}: "
                         "use another --output_dir or the same settings")


def main(argv=None) -> int:
    """The CLI: user errors (paths, angles) are one `error:` line, exit 2."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError, OSError))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Write a rotated copy of every photo (random in-plane angle, cut to the largest "
                    "rectangle without filled corners), to be labelled by the teacher.",
        epilog="example: python prepare_data/rotate_photos.py --image_dir photos/ --output_dir data/photos_rotated "
               "&& python prepare_data/label_with_teacher.py --image_dir data/photos_rotated "
               "--output_dir data/photos_rotated_labels",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--image_dir", required=True, help="folder of photos (searched recursively)")
    parser.add_argument("--output_dir", required=True, help="folder for the rotated copies")
    parser.add_argument("--min_angle", type=float, default=5.0, help="smallest rotation, degrees")
    parser.add_argument("--max_angle", type=float, default=40.0, help="largest rotation, degrees")
    parser.add_argument("--seed", type=int, default=0, help="the angles depend only on it and the file names")
    parser.add_argument("--num_workers", type=int, default=2, help="processes")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = rotate_folder(args.image_dir, args.output_dir, min_angle=args.min_angle, max_angle=args.max_angle,
                           seed=args.seed, num_workers=args.num_workers)
    logger.info("done: %s -> %s", ", ".join(f"{key}={counts[key]}" for key in COUNT_KEYS), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
