"""The command line ``python -m src.visualize {anchors,augmentations,detections} ...``.

Each subcommand writes one PNG atomically to the path given with the required ``--output``
(there is no default, so nothing tracked, e.g. media/pictures, is overwritten unless named). An
existing ``--output`` is refused unless ``--overwrite``; an output that is one of the inputs is
always refused. Exit code 0; 2 after one ``error: <what>: <why>`` line on stderr (bad arguments,
unreadable inputs, an existing output; ``--debug`` shows the traceback); 130 on Ctrl-C. The
arguments and files are checked before TensorFlow loads.
"""
from __future__ import annotations

import argparse
import logging
import os

import cv2

from src.cli import UserError, add_debug_flag, one_line_usage_errors, report_errors

from src.visualize.anchors import (ANCHOR_FIGURE_DPI, ANCHOR_FIGURE_INCHES, anchor_cell_groups,
                                   anchors_figure, default_anchor_background)
from src.visualize.augmentations import augmentation_tiles
from src.visualize.detections import detection_tiles, read_images, read_video_frames
from src.visualize.drawing import DEFAULT_PNG_COLOURS, read_rgb, tile_grid, write_png

logger = logging.getLogger(__name__)


def _run_anchors(args):
    groups = anchor_cell_groups(args.image_size, args.cell)
    if args.image:
        image = cv2.resize(read_rgb(args.image), (args.image_size, args.image_size), interpolation=cv2.INTER_AREA)
    else:
        image = default_anchor_background(args.image_size)
    picture = anchors_figure(image, groups, dpi=args.dpi)
    write_png(args.output, picture, args.colours)
    return picture, f"{sum(len(g.boxes) for g in groups)} anchors of cell {groups[0].cell}"


def _run_augmentations(args):
    tiles = augmentation_tiles(args.tfrecords, args.rows * args.cols, (args.image_size, args.image_size), args.seed)
    picture = tile_grid(tiles, args.cols)
    write_png(args.output, picture, args.colours)
    return picture, f"{len(tiles)} augmented samples"


def _run_detections(args):
    if args.video:
        name = os.path.basename(args.video)
        named = [(f"{name} frame {index}", frame)
                 for index, frame in zip(args.frames, read_video_frames(args.video, args.frames))]
        failures = []
    else:
        named, failures = read_images(args.images)
        if not named:
            raise ValueError(failures[0] if len(failures) == 1 else
                             f"none of the {len(args.images)} images could be read (the warnings above say why)")
    if os.path.isdir(args.model):
        raise UserError(f"{args.model}: is a folder, not a frozen graph (.pb) file (--model)")
    if not os.path.isfile(args.model):
        raise UserError(f"{args.model}: model file not found (--model)")
    from src.frozen_graph import FrozenGraphDetector  # TensorFlow loads only now, after every check

    detector = FrozenGraphDetector(args.model, precision=args.precision)
    tiles = detection_tiles(detector, named, args.score_threshold, args.tile_width)
    picture = tile_grid(tiles, min(args.cols, len(tiles)))
    write_png(args.output, picture, args.colours)
    return picture, f"{len(tiles)} image(s) drawn, {len(failures)} skipped (unreadable)"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m src.visualize",
        description="Draw FaceBoxes pictures into PNG files: anchors of one cell, augmented "
                    "training samples, or a detector's boxes on images.",
        epilog="examples:\n"
               "  python -m src.visualize anchors --output media/pictures/anchors.png\n"
               "  python -m src.visualize augmentations --tfrecords /tmp/vis/shards "
               "--output media/pictures/augmentations.png\n"
               "  python -m src.visualize detections --model model/facebox.pb --images a.jpg b.jpg "
               "--output detections.png",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name, help_text, example):
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=f"example: {example}",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        sub.add_argument("--output", required=True, help="PNG file to write (atomically)")
        sub.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
        add_debug_flag(sub)
        sub.add_argument("--colours", type=int, default=DEFAULT_PNG_COLOURS,
                         help="palette size of the PNG (2..256), 0 for full colour")
        return sub

    anchors = add("anchors", "Anchors of one feature-map cell at every scale, over an image.",
                  "python -m src.visualize anchors --output media/pictures/anchors.png --image_size 1024")
    anchors.add_argument("--image_size", type=int, default=1024, help="square input side, a multiple of 128")
    anchors.add_argument("--cell", type=int, nargs=2, metavar=("ROW", "COL"), default=None,
                         help="cell of feature map 0 (stride 32); default: the one nearest the centre")
    anchors.add_argument("--image", default=None,
                         help="background image file (resized to the input size); default: skimage's astronaut")
    anchors.add_argument("--dpi", type=int, default=ANCHOR_FIGURE_DPI,
                         help=f"figure resolution; the PNG is {ANCHOR_FIGURE_INCHES[0]:g} x "
                              f"{ANCHOR_FIGURE_INCHES[1]:g} inches")
    anchors.set_defaults(run=_run_anchors)

    augmentations = add("augmentations", "A grid of augmented training samples with their boxes.",
                        "python -m src.visualize augmentations --tfrecords /tmp/vis/shards --rows 3 --cols 4 "
                        "--image_size 256 --output media/pictures/augmentations.png")
    augmentations.add_argument("--tfrecords", nargs="+", required=True,
                               help="tfrecord files, folders of shard-*.tfrecords or glob patterns")
    augmentations.add_argument("--rows", type=int, default=3, help="grid rows")
    augmentations.add_argument("--cols", type=int, default=4, help="grid columns")
    augmentations.add_argument("--image_size", type=int, default=256, help="training image side (square)")
    augmentations.add_argument("--seed", type=int, default=0, help="pipeline seed (same seed, same picture)")
    augmentations.set_defaults(run=_run_augmentations)

    detections = add("detections", "A detector's boxes and scores on image files.",
                     "python -m src.visualize detections --model model/facebox.pb --video media/sample.mp4 "
                     "--frames 20 50 100 160 --tile_width 400 --output media/pictures/detections.png")
    detections.add_argument("--model", required=True, help="frozen .pb graph (FaceDetector)")
    sources = detections.add_mutually_exclusive_group(required=True)
    sources.add_argument("--images", nargs="+", help="image files (unreadable ones are skipped)")
    sources.add_argument("--video", help="a video file; draw the frames chosen with --frames")
    detections.add_argument("--frames", type=int, nargs="+", default=[0],
                            help="with --video: frame numbers (from 0) to draw")
    detections.add_argument("--score_threshold", type=float, default=0.5, help="draw detections scoring above this")
    detections.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default="float32",
                            help="float32 runs the graph as frozen; bfloat16 rewrites it for CPUs with bfloat16 "
                                 "units (AMX / AVX512_BF16); auto picks bfloat16 only on such CPUs")
    detections.add_argument("--tile_width", type=int, default=480, help="tile width; the height fits the tallest image")
    detections.add_argument("--cols", type=int, default=2, help="grid columns")
    detections.set_defaults(run=_run_detections)
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)  # also accepted first
    return one_line_usage_errors(parser)


def _check_args(args):
    if getattr(args, "frames", None) is not None and min(args.frames) < 0:
        raise ValueError(f"--frames must be >= 0, got {min(args.frames)}")
    for name in ("rows", "cols", "image_size", "tile_width", "dpi"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise ValueError(f"--{name} must be positive, got {value}")
    if args.colours and not 2 <= args.colours <= 256:
        raise ValueError(f"--colours must be 0 or in 2..256, got {args.colours}")
    if not args.output.lower().endswith(".png"):
        raise ValueError(f"--output {args.output}: must end in .png")
    _check_output(args)


def _check_output(args):
    """Refuses an output that is an input (always) or that exists (without --overwrite)."""
    inputs = list(getattr(args, "images", None) or []) + [getattr(args, name, None) for name in ("image", "video")]
    output = os.path.realpath(args.output)
    for path in inputs:
        if path and os.path.exists(path) and os.path.realpath(path) == output:
            raise UserError(f"{args.output}: is also an input; write the picture to another file (--output)")
    if os.path.isdir(args.output):
        raise UserError(f"{args.output}: is a folder, not a PNG file (--output)")
    if os.path.exists(args.output) and not args.overwrite:
        raise UserError(f"{args.output}: already exists; pass --overwrite to replace it")


def main(argv=None):
    """Runs the command line; returns 0, 2 after one ``error:`` line on stderr, or 130 on Ctrl-C."""
    return report_errors(_main, argv, (UserError, ValueError, OSError))


def _main(argv):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _check_args(args)
    picture, what = args.run(args)
    logger.info("wrote %s (%dx%d, %.0f KB): %s", args.output, picture.shape[1], picture.shape[0],
                os.path.getsize(args.output) / 1024, what)
    return 0
