"""Builds a small synthetic face dataset in the official WIDER FACE and FDDB layouts.

Every image is a composite of real face photos shipped in pip packages (see
``prepare_data/faces.py``) on face-free backgrounds, with exact ground truth. Box
conventions: WIDER gt lines are ``x1 y1 w h`` pixels (plus six attributes); FDDB lines
are ellipses ``major_r minor_r angle cx cy 1``; ``sample_truth.json`` holds the true face
boxes as pixels ``[x1, y1, x2, y2]``.

Output under --output_dir::

    WIDER/WIDER_train/images/<event>/<name>.jpg
    WIDER/WIDER_val/images/<event>/<name>.jpg
    WIDER/wider_face_split/wider_face_{train,val}_bbx_gt.txt
    FDDB/originalPics/<year>/<month>/<day>/big/img_<n>.jpg
    FDDB/FDDB-folds/FDDB-fold-XX.txt, FDDB-fold-XX-ellipseList.txt
    sample_truth.json     {"wider": {"train": {relpath: boxes}, "val": {...}},
                           "fddb": {path: boxes}}, boxes [[x1, y1, x2, y2], ...] pixels

What the set contains on purpose (by image index k within each WIDER split / FDDB):
  * WIDER image k with k % 10 == 3 has no face (listed with a count of 0 and a line of zeros);
  * WIDER image k with k % 5 == 1 gets one extra degenerate gt line (w or h = 0, invalid = 1),
    as the real file has; it is not a face and prepare_wider must drop it;
  * FDDB image k with k % 5 == 2 is saved as a 1-channel (grayscale) JPEG; every FDDB image
    has at least one face. FDDB ellipses have a near-vertical major axis (angle
    +-pi/2 + tilt up to 0.25 rad) chosen so that the ellipse's exact axis-aligned box equals
    the face box.
Each image draws from its own generator seeded by (seed, part, k), so the same --seed gives
the same files, and image k does not depend on how many images are requested.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from prepare_data import faces as face_lib  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402
from src.atomic_io import write_bytes_atomic, write_text_atomic  # noqa: E402

logger = logging.getLogger("make_sample_dataset")

WIDER_EVENTS = ("0--Parade", "2--Demonstration", "12--Group", "20--Family_Group",
                "29--Students_Schoolkids", "51--Dresses")
PART_IDS = {"train": 1, "val": 2, "fddb": 3}
NUM_FDDB_FOLDS = 10
FDDB_MAX_TILT = 0.25  # radians away from a vertical major axis
# The official FDDB ellipse file prints six decimals.
FDDB_DECIMALS = 6


def image_shape(rng: np.random.Generator, long_side: int) -> tuple[int, int]:
    """Draws (width, height) with the given long side and an aspect ratio (w/h) in [0.75, 1.78]."""
    aspect = rng.uniform(0.75, 1.78)
    if aspect >= 1:
        return long_side, max(16, int(round(long_side / aspect / 2)) * 2)
    return max(16, int(round(long_side * aspect / 2)) * 2), long_side


def num_faces_for(rng: np.random.Generator) -> int:
    """Draws a face count: mostly 1-4, sometimes up to 8."""
    return int(rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6, 8]))


def encode_jpeg_cv2(image: np.ndarray, quality: int) -> bytes:
    """Encodes uint8 [H, W, 3] RGB or [H, W] gray as JPEG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return encoded.tobytes()


def ellipse_for_box(rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    """An FDDB-style ellipse whose exact axis-aligned bounding box is `box`.

    With the major radius a along angle t and the minor radius b, the box half-width is
    sqrt(a^2 cos^2 t + b^2 sin^2 t) and the half-height sqrt(a^2 sin^2 t + b^2 cos^2 t); for a
    chosen t this is linear in (a^2, b^2) and is solved exactly.

    Args:
        rng: the random generator.
        box: float [4], pixels x1, y1, x2, y2.

    Returns:
        float64 [5]: major_r, minor_r, angle (radians in (-pi/2, pi/2]), cx, cy.
    """
    half_w, half_h = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    # Keep b^2 > 0: the tilt must satisfy tan^2(tilt) < (short / long)^2 (with room to spare).
    max_tilt = min(FDDB_MAX_TILT, 0.5 * np.arctan(min(half_w, half_h) / max(half_w, half_h)))
    tilt = rng.uniform(-max_tilt, max_tilt)
    angle = (np.pi / 2 + tilt) if half_h >= half_w else tilt
    angle = (angle + np.pi / 2) % np.pi - np.pi / 2  # same ellipse, angle in [-pi/2, pi/2)
    c, s = np.cos(angle) ** 2, np.sin(angle) ** 2
    a2, b2 = np.linalg.solve(np.array([[c, s], [s, c]]), np.array([half_w ** 2, half_h ** 2]))
    if b2 > a2:  # only round-off on a square box: the same ellipse with its axes named the other way
        a2, b2, angle = b2, a2, (angle + np.pi) % np.pi - np.pi / 2
    centre = (box[:2] + box[2:]) / 2
    return np.array([np.sqrt(a2), np.sqrt(b2), angle, centre[0], centre[1]], dtype=np.float64)


def wider_name(event: str, index: int) -> str:
    """Relative WIDER path of a sample image, e.g. ``'12--Group/12_Group_sample_7.jpg'``."""
    number, label = event.split("--", 1)
    return f"{event}/{number}_{label}_sample_{index}.jpg"


def make_wider_split(output_dir: str, split: str, count: int, seed: int, long_side: int,
                     sources, photos, first_index: int) -> dict:
    """Writes WIDER_<split>/images and the split's gt file.

    Returns:
        dict relpath -> list of [x1, y1, x2, y2] true face boxes (pixels).
    """
    wider = os.path.join(output_dir, "WIDER")
    gt_lines: list[str] = []
    truth: dict = {}
    for k in tqdm(range(count), desc=f"WIDER {split}", unit="img", leave=False):
        rng = np.random.default_rng([seed, PART_IDS[split], k])
        width, height = image_shape(rng, long_side)
        wants_faces = k % 10 != 3
        image, pasted = face_lib.make_composite(
            rng, width, height, num_faces_for(rng) if wants_faces else 0, sources, photos)
        relpath = wider_name(WIDER_EVENTS[int(rng.integers(len(WIDER_EVENTS)))], first_index + k)
        write_bytes_atomic(os.path.join(wider, f"WIDER_{split}", "images", relpath),
                           encode_jpeg_cv2(image, int(rng.integers(80, 96))))
        lines = []
        for face in pasted:
            x1, y1, x2, y2 = (int(v) for v in face.box)
            blur = 0 if face.blur_sigma == 0 else (1 if face.blur_sigma < 1 else 2)
            pose = 1 if face.source_index == 1 else 0  # the camera man is in profile
            lines.append(f"{x1} {y1} {x2 - x1} {y2 - y1} {blur} 0 0 0 0 {pose} ")
        if pasted and k % 5 == 1:
            x, y = int(rng.integers(width)), int(rng.integers(height))
            extent = int(rng.integers(1, 20))
            w, h = (0, extent) if rng.random() < 0.5 else (extent, 0)
            lines.append(f"{x} {y} {w} {h} 2 0 0 1 0 0 ")
        gt_lines += [relpath, str(len(lines))] + (lines or ["0 0 0 0 0 0 0 0 0 0 "])
        truth[relpath] = [face.box.tolist() for face in pasted]
    write_text_atomic(os.path.join(wider, "wider_face_split", f"wider_face_{split}_bbx_gt.txt"),
                      "\n".join(gt_lines) + "\n")
    return truth


def make_fddb(output_dir: str, count: int, seed: int, long_side: int, sources, photos) -> dict:
    """Writes FDDB/originalPics and FDDB/FDDB-folds.

    Returns:
        dict image path (no extension) -> list of [x1, y1, x2, y2] true face boxes (pixels).
    """
    fddb = os.path.join(output_dir, "FDDB")
    num_folds = min(NUM_FDDB_FOLDS, count)
    fold_paths: list[list[str]] = [[] for _ in range(num_folds)]
    fold_ellipses: list[list[str]] = [[] for _ in range(num_folds)]
    truth: dict = {}
    fmt = f"{{:.{FDDB_DECIMALS}f}}"
    for k in tqdm(range(count), desc="FDDB", unit="img", leave=False):
        rng = np.random.default_rng([seed, PART_IDS["fddb"], k])
        width, height = image_shape(rng, long_side)
        # The first (largest) face always finds a place on the empty canvas, so every FDDB
        # image has a face, as in the real lists.
        image, pasted = face_lib.make_composite(rng, width, height, num_faces_for(rng), sources, photos)
        year = 2002 + int(rng.integers(2))
        path = f"{year}/{int(rng.integers(1, 13)):02d}/{int(rng.integers(1, 29)):02d}/big/img_{100 + 7 * k}"
        if k % 5 == 2:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        write_bytes_atomic(os.path.join(fddb, "originalPics", path + ".jpg"),
                           encode_jpeg_cv2(image, int(rng.integers(80, 96))))
        fold = k % num_folds
        fold_paths[fold].append(path)
        fold_ellipses[fold] += [path, str(len(pasted))]
        for face in pasted:
            ellipse = ellipse_for_box(rng, face.box)
            fold_ellipses[fold].append(" ".join(fmt.format(v) for v in ellipse) + "  1")
        truth[path] = [face.box.tolist() for face in pasted]
    for fold in range(num_folds):
        folder = os.path.join(fddb, "FDDB-folds")
        write_text_atomic(os.path.join(folder, f"FDDB-fold-{fold + 1:02d}.txt"), "\n".join(fold_paths[fold]) + "\n")
        write_text_atomic(os.path.join(folder, f"FDDB-fold-{fold + 1:02d}-ellipseList.txt"),
                          "\n".join(fold_ellipses[fold]) + "\n")
    return truth


def make_sample_dataset(output_dir: str, *, seed: int = 0, num_train: int = 200, num_val: int = 50,
                        num_fddb: int = 50, image_size: int = 640) -> dict:
    """Writes the whole sample set (see the module docstring) and returns its truth.

    Args:
        output_dir: destination root (WIDER/, FDDB/ and sample_truth.json go in it).
        seed: random seed; the same seed gives identical files.
        num_train, num_val, num_fddb: image counts (>= 0).
        image_size: long side of every image in pixels (>= 64).

    Returns:
        The dict written to ``sample_truth.json``.

    Raises:
        ValueError: on a negative count or a too small image size.
    """
    if min(num_train, num_val, num_fddb) < 0:
        raise ValueError("image counts must be >= 0")
    if image_size < 64:
        raise ValueError(f"--image_size must be >= 64, got {image_size}")
    sources = face_lib.load_face_sources()
    photos = face_lib.load_background_photos()
    truth = {
        "wider": {
            "train": make_wider_split(output_dir, "train", num_train, seed, image_size, sources, photos, 0),
            "val": make_wider_split(output_dir, "val", num_val, seed, image_size, sources, photos, num_train),
        },
        "fddb": make_fddb(output_dir, num_fddb, seed, image_size, sources, photos) if num_fddb else {},
    }
    write_text_atomic(os.path.join(output_dir, "sample_truth.json"), json.dumps(truth, indent=1) + "\n")
    return truth


def main(argv=None) -> int:
    """The CLI; returns the exit code (user errors: one ``error:`` line on stderr and 2)."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError,))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Build a small synthetic WIDER FACE + FDDB dataset (real package face photos "
                    "pasted on face-free backgrounds, exact ground truth).",
        epilog="example: python prepare_data/make_sample_dataset.py --output_dir data/sample "
               "--num_train 300 --num_val 60 --num_fddb 60 --seed 0",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="destination folder (WIDER/ and FDDB/ go in it)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files")
    parser.add_argument("--num_train", type=int, default=200, help="WIDER_train images")
    parser.add_argument("--num_val", type=int, default=50, help="WIDER_val images")
    parser.add_argument("--num_fddb", type=int, default=50, help="FDDB images (spread over up to 10 folds)")
    parser.add_argument("--image_size", type=int, default=640, help="long side of every image, pixels")
    args = add_debug_flag(parser).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    truth = make_sample_dataset(args.output_dir, seed=args.seed, num_train=args.num_train,
                                num_val=args.num_val, num_fddb=args.num_fddb, image_size=args.image_size)
    summary = []
    for name, part in (("train", truth["wider"]["train"]), ("val", truth["wider"]["val"]), ("fddb", truth["fddb"])):
        summary.append(f"{name}: {len(part)} images, {sum(len(b) for b in part.values())} faces")
    logger.info("wrote %s (%s)", args.output_dir, "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
