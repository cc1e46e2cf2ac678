"""Builds multi-face, multi-scale training images (mosaics) from labelled photos.

Box convention: the annotation JSON files hold pixels ``xmin, ymin, xmax, ymax``; faces
under ``"object"``, ignore regions under ``"ignore"`` (see ``src/annotations.py``).

Each mosaic is a k x k grid (k drawn from ``--grid_weights``) of tiles cut from labelled
photos (``--tiles``; each photo rescaled so that its largest face gets a size drawn
log-uniformly from ``--face_sizes``) on a canvas that is a random crop of a labelled real
scene (``--scenes``) or, with probability ``--plain_fraction``, a plain noisy colour.
``--grayscale`` of the mosaics are turned gray (FDDB has many grayscale photos);
``--text_fraction`` of them get random strings drawn away from every face (hard negatives:
letters and logos are among the detector's false positives on real photos);
``--negative_fraction`` of them get 1-4 crops of ``--negatives`` (a folder written by
``mine_negatives.py``: hands, ears, logos where a detector fired) pasted away from every
face. Labels
follow ``src/datasets/mosaic.py``: exact boxes, faces less than 60% visible become ignore
regions. Source specs are ``IMAGE_DIR:ANNOTATIONS_DIR[:WEIGHT]``; a weight sets how often
a source is drawn relative to the others of its kind (this is how the mix of sources is
chosen).

Output: ``<output_dir>/images/mosaic_NNNNNN.jpg`` + ``<output_dir>/annotations/mosaic_NNNNNN.json``.
Mosaic i depends only on ``--seed`` and i, so a run is reproducible and resumable: existing
outputs are kept and skipped.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import logging
import multiprocessing
import os
import sys

import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.annotations import Annotation, read_annotation, write_annotation  # noqa: E402
from src.atomic_io import write_bytes_atomic  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402
from src.datasets import mosaic  # noqa: E402
from src.datasets.image_io import decode_image, encode_jpeg  # noqa: E402

logger = logging.getLogger("make_mosaics")

JPEG_QUALITY = 92
# At most this many random strings go on a mosaic picked by --text_fraction.
MAX_TEXT_STRINGS = 4
# At most this many hard-negative crops go on a mosaic picked by --negative_fraction.
MAX_NEGATIVE_CROPS = 4


def load_negatives(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The crops of a ``mine_negatives.py`` folder: (uint8 [h, w, 3] RGB, float64 [4] box x1, y1,
    x2, y2 in the crop's pixels), in the order of its negatives.json; unreadable crops are
    skipped with a warning."""
    manifest_path = os.path.join(folder, "negatives.json")
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{manifest_path}: not found (make it with prepare_data/mine_negatives.py)") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{manifest_path}: line {error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(manifest, list) or not all(isinstance(entry, dict) for entry in manifest):
        raise ValueError(f"{manifest_path}: expected a list of objects (mine_negatives.py's format)")
    crops = []
    for entry in manifest:
        path = os.path.join(folder, "images", str(entry.get("image")))
        try:
            with open(path, "rb") as f:
                crop = np.asarray(decode_image(f.read(), path).convert("RGB"))
            box = np.asarray(entry["box"], np.float64).reshape(4)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("negative crop skipped: %s: %s", path, error)
            continue
        crops.append((crop, box))
    if not crops:
        raise ValueError(f"{folder}: no usable negative crop")
    return crops


class Source:
    """Labelled photos of one folder: (image path, faces, ignore) lists, drawn at random."""

    def __init__(self, spec: str, need_faces: bool):
        parts = spec.rsplit(":", 2) if spec.count(":") >= 2 else spec.split(":")
        if len(parts) == 3:
            image_dir, annotations_dir, weight = parts
            try:
                self.weight = float(weight)
            except ValueError:
                raise ValueError(f"source '{spec}': weight {weight!r} is not a number") from None
        elif len(parts) == 2:
            (image_dir, annotations_dir), self.weight = parts, 1.0
        else:
            raise ValueError(f"source '{spec}': expected IMAGE_DIR:ANNOTATIONS_DIR[:WEIGHT]")
        if self.weight <= 0:
            raise ValueError(f"source '{spec}': the weight must be positive")
        for folder in (image_dir, annotations_dir):
            if not os.path.isdir(folder):
                raise ValueError(f"source '{spec}': {folder}: folder not found")
        self.items = []
        for path in sorted(glob.glob(os.path.join(annotations_dir, "*.json"))):
            try:
                annotation = read_annotation(path)
            except (ValueError, OSError, UnicodeDecodeError) as error:
                logger.warning("skipped: %s", error)
                continue
            if need_faces and not len(annotation.boxes):
                continue
            self.items.append((os.path.join(image_dir, annotation.filename), annotation.boxes,
                               annotation.ignore_boxes))
        if not self.items:
            raise ValueError(f"source '{spec}': no usable annotation"
                             + (" with a face" if need_faces else ""))

    def draw(self, rng: np.random.Generator) -> mosaic.LabelledImage:
        """A random photo (retrying past unreadable files)."""
        for _ in range(20):
            path, faces, ignore = self.items[int(rng.integers(len(self.items)))]
            try:
                with open(path, "rb") as f:
                    image = np.asarray(decode_image(f.read(), path).convert("RGB"))
            except (OSError, ValueError) as error:
                logger.warning("unreadable photo skipped: %s", error)
                continue
            return mosaic.LabelledImage(image, faces, ignore)
        raise RuntimeError("20 unreadable photos in a row; check the source folders")


def _pick(rng, sources):
    weights = np.array([source.weight for source in sources])
    return sources[int(rng.choice(len(sources), p=weights / weights.sum()))]


_state = {}


def _init(settings):
    _state.update(settings)
    _state["tiles"] = [Source(spec, need_faces=True) for spec in settings["tile_specs"]]
    _state["scenes"] = [Source(spec, need_faces=False) for spec in settings["scene_specs"]]
    _state["negatives"] = load_negatives(settings["negatives_dir"]) if settings["negatives_dir"] else []


def make_one(index: int):
    """Builds and writes mosaic `index`; returns (faces, ignore regions) counts."""
    s = _state
    rng = np.random.default_rng([s["seed"], index])
    size = s["size"]
    grid = int(rng.choice(len(s["grid_weights"]), p=s["grid_weights"])) + 1
    canvas = None
    if s["scenes"] and rng.uniform() >= s["plain_fraction"]:
        canvas = mosaic.scene_canvas(rng, _pick(rng, s["scenes"]).draw(rng), size)
    result = mosaic.compose_mosaic(rng, lambda r: _pick(r, s["tiles"]).draw(r), size, grid,
                                   s["face_sizes"], canvas)
    image = result.image
    # Drawn only when asked, so the random stream (and every mosaic) of older recipes is unchanged.
    if s["text_fraction"] > 0 and rng.uniform() < s["text_fraction"]:
        mosaic.draw_text_negatives(rng, image, np.concatenate([result.faces, result.ignore]),
                                   int(rng.integers(1, MAX_TEXT_STRINGS + 1)))
    if s["negative_fraction"] > 0 and rng.uniform() < s["negative_fraction"]:
        mosaic.paste_negatives(rng, image, np.concatenate([result.faces, result.ignore]),
                               s["negatives"], int(rng.integers(1, MAX_NEGATIVE_CROPS + 1)))
    if rng.uniform() < s["grayscale"]:
        gray = (image @ np.array([0.299, 0.587, 0.114])).round().clip(0, 255).astype(np.uint8)
        image = np.repeat(gray[:, :, None], 3, axis=2)
    name = f"mosaic_{index:06d}"
    write_bytes_atomic(os.path.join(s["output_dir"], "images", name + ".jpg"),
                       encode_jpeg(image, JPEG_QUALITY))
    write_annotation(os.path.join(s["output_dir"], "annotations", name + ".json"),
                     Annotation(name + ".jpg", size, size, 3, result.faces, result.ignore))
    return len(result.faces), len(result.ignore)


def make_mosaics(output_dir, tile_specs, scene_specs=(), *, num_images, size=640, seed=0,
                 face_sizes=(12.0, 400.0), grid_weights=(1, 2, 3, 3, 2), plain_fraction=0.3,
                 grayscale=0.15, num_workers=2, show_progress=True, text_fraction=0.0,
                 negatives_dir=None, negative_fraction=0.0) -> collections.Counter:
    """Writes mosaics 0 .. num_images - 1 that do not exist yet (see the module docstring).

    Returns:
        Counter: 'written', 'already_there', 'faces', 'ignore_regions'.

    Raises:
        ValueError: on a bad source spec or setting.
    """
    if not tile_specs:
        raise ValueError("give at least one --tiles source")
    if num_images < 1 or size < 32:
        raise ValueError("--num_images must be >= 1 and --size >= 32")
    if not 0.0 <= text_fraction <= 1.0:
        raise ValueError(f"--text_fraction must be in [0, 1], got {text_fraction}")
    if not 0.0 <= negative_fraction <= 1.0:
        raise ValueError(f"--negative_fraction must be in [0, 1], got {negative_fraction}")
    if negative_fraction > 0 and not negatives_dir:
        raise ValueError("--negative_fraction needs --negatives (a mine_negatives.py folder)")
    if negatives_dir:
        load_negatives(negatives_dir)  # fail early, in this process
    if not 0 < face_sizes[0] <= face_sizes[1]:
        raise ValueError(f"--face_sizes must be 0 < min <= max, got {face_sizes}")
    weights = np.asarray(grid_weights, float)
    if weights.ndim != 1 or not len(weights) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"--grid_weights must be non-negative with a positive sum, got {grid_weights}")
    settings = dict(output_dir=output_dir, tile_specs=list(tile_specs), scene_specs=list(scene_specs),
                    seed=seed, size=size, face_sizes=tuple(face_sizes),
                    grid_weights=weights / weights.sum(), plain_fraction=plain_fraction,
                    grayscale=grayscale, text_fraction=text_fraction,
                    negatives_dir=negatives_dir, negative_fraction=negative_fraction)
    _init(settings)  # validates the sources here, with a clear error
    counts = collections.Counter(written=0, already_there=0, faces=0, ignore_regions=0)
    todo = []
    for index in range(num_images):
        if os.path.exists(os.path.join(output_dir, "annotations", f"mosaic_{index:06d}.json")):
            counts["already_there"] += 1
        else:
            todo.append(index)
    os.makedirs(os.path.join(output_dir, "images"), exist_ok=True)
    # Forked workers inherit the sources loaded above (no second read of every annotation).
    with multiprocessing.get_context("fork").Pool(max(1, num_workers)) as pool:
        for faces, ignore in tqdm(pool.imap(make_one, todo, chunksize=16), total=len(todo),
                                  desc="mosaics", unit="img", disable=not show_progress):
            counts["written"] += 1
            counts["faces"] += faces
            counts["ignore_regions"] += ignore
    return counts


def main(argv=None) -> int:
    """The CLI: bad sources or settings are one `error:` line, exit 2."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError,))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Build multi-face, multi-scale mosaics from labelled photos (faces + ignore regions).",
        epilog="example: python prepare_data/make_mosaics.py --output_dir data/mosaics --num_images 5000 "
               "--tiles photos/:data/photo_labels:1.0 --scenes scenes/:data/scene_labels",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="destination (images/ and annotations/)")
    parser.add_argument("--tiles", action="append", default=[], required=True,
                        help="IMAGE_DIR:ANNOTATIONS_DIR[:WEIGHT] of photos cut into tiles (repeatable)")
    parser.add_argument("--scenes", action="append", default=[],
                        help="IMAGE_DIR:ANNOTATIONS_DIR[:WEIGHT] of labelled scenes used as canvases (repeatable)")
    parser.add_argument("--num_images", type=int, required=True, help="number of mosaics")
    parser.add_argument("--size", type=int, default=640, help="mosaic side in pixels")
    parser.add_argument("--face_sizes", default="12,400", help="min,max face size in pixels (log-uniform)")
    parser.add_argument("--grid_weights", default="1,2,3,3,2", help="relative weights of k = 1, 2, ... tiles per side")
    parser.add_argument("--plain_fraction", type=float, default=0.3,
                        help="fraction of mosaics on a plain canvas (always, without --scenes)")
    parser.add_argument("--grayscale", type=float, default=0.15, help="fraction of mosaics turned gray")
    parser.add_argument("--text_fraction", type=float, default=0.0,
                        help="fraction of mosaics with 1-%d random strings drawn away from every face "
                             "(hard negatives: letters and logos)" % MAX_TEXT_STRINGS)
    parser.add_argument("--negatives", default=None,
                        help="folder written by prepare_data/mine_negatives.py (images/ + negatives.json)")
    parser.add_argument("--negative_fraction", type=float, default=0.0,
                        help="fraction of mosaics with 1-%d crops of --negatives pasted away from every "
                             "face (hard negatives: hands, ears, logos)" % MAX_NEGATIVE_CROPS)
    parser.add_argument("--seed", type=int, default=0, help="mosaic i depends only on the seed and i")
    parser.add_argument("--num_workers", type=int, default=2, help="worker processes")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        face_sizes = tuple(float(v) for v in args.face_sizes.split(","))
        grid_weights = tuple(float(v) for v in args.grid_weights.split(","))
    except ValueError:
        raise ValueError(f"--face_sizes / --grid_weights: comma-separated numbers expected, got "
                         f"{args.face_sizes!r} / {args.grid_weights!r}") from None
    if len(face_sizes) != 2:
        raise ValueError("--face_sizes needs two numbers: min,max")
    counts = make_mosaics(args.output_dir, args.tiles, args.scenes, num_images=args.num_images,
                          size=args.size, seed=args.seed, face_sizes=face_sizes,
                          grid_weights=grid_weights, plain_fraction=args.plain_fraction,
                          grayscale=args.grayscale, num_workers=args.num_workers,
                          text_fraction=args.text_fraction, negatives_dir=args.negatives,
                          negative_fraction=args.negative_fraction)
    logger.info("done: %s -> %s", ", ".join(f"{k}={v}" for k, v in counts.items()), args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
