"""Pictures for the README and for checking data by eye: anchors, augmented samples, detections.

Box conventions: anchors and input-pipeline boxes are ``[ymin, xmin, ymax, xmax]``
normalized to [0, 1]; the detector (`src.frozen_graph.FrozenGraphDetector`, FaceDetector's API) returns ``[ymin, xmin, ymax, xmax]`` in pixels. Drawing
happens in pixel ``[x1, y1, x2, y2]`` (edges); `normalized_to_pixel_xyxy` and
`pixel_yxyx_to_xyxy` are this module's only conversions. Images are uint8 RGB [H, W, 3].

Usage (each subcommand writes one PNG atomically, see ``--help``)::

    python -m src.visualize anchors --output media/pictures/anchors.png
    python -m src.visualize augmentations --tfrecords /tmp/vis/shards --output media/pictures/augmentations.png
    python -m src.visualize detections --model model/facebox.pb --images a.jpg b.jpg --output dets.png
    python -m src.visualize detections --model model/facebox.pb --video media/sample.mp4 --frames 40 100 \
        --output dets.png
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import os
import sys

import cv2
import numpy as np
from PIL import Image

from src.atomic_io import write_bytes_atomic
from src.box_formats import yxyx_to_xyxy
from src.datasets.image_io import decode_image

logger = logging.getLogger(__name__)

# One colour (RGB) per anchor scale, in `ANCHOR_SPECS` order: 32, 64, 128 px (map 0), 256 (map 1), 512 (map 2).
SCALE_COLOURS = ((230, 57, 70), (244, 162, 97), (42, 157, 143), (69, 123, 157), (131, 56, 236))
BOX_COLOUR = (0, 255, 0)
# White gap between grid tiles, pixels.
TILE_GAP = 4
# The anchors figure: inches and dots per inch (output 1200 x 600 pixels at the defaults).
ANCHOR_FIGURE_INCHES = (12.0, 6.0)
ANCHOR_FIGURE_DPI = 100
# Half-size (pixels of the input) of the zoomed panel around the chosen cell.
ZOOM_HALF_SIZE = 96
# Photos are stored as palette PNGs with this many colours by default: ~4x smaller, same look.
DEFAULT_PNG_COLOURS = 256


# ----------------------------------------------------------------------------- conversions


def normalized_to_pixel_xyxy(boxes, height, width):
    """Normalized [ymin, xmin, ymax, xmax] -> pixel [x1, y1, x2, y2].

    Args:
        boxes: float array [..., 4], normalized ymin, xmin, ymax, xmax.
        height, width: image size in pixels.

    Returns:
        float64 array [..., 4], pixels x1, y1, x2, y2.
    """
    return yxyx_to_xyxy(boxes) * np.array([width, height, width, height], dtype=np.float64)


def pixel_yxyx_to_xyxy(boxes):
    """Pixel [ymin, xmin, ymax, xmax] (FaceDetector) -> pixel [x1, y1, x2, y2]; float64 [..., 4]."""
    return yxyx_to_xyxy(boxes)


# ----------------------------------------------------------------------------- PNG output


def encode_png(image, colours=DEFAULT_PNG_COLOURS):
    """Encodes an RGB image as PNG bytes.

    Args:
        image: uint8 [H, W, 3] RGB.
        colours: 0 for a full-colour PNG, else 2..256: an adaptive palette of that many
            colours (much smaller files for photos).

    Returns:
        bytes of the PNG file.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png needs uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if colours and not 2 <= colours <= 256:
        raise ValueError(f"colours must be 0 or in 2..256, got {colours}")
    picture = Image.fromarray(image)
    if colours:
        picture = picture.quantize(colors=int(colours), method=Image.Quantize.MEDIANCUT,
                                   dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_png(path, image, colours=DEFAULT_PNG_COLOURS):
    """Writes an RGB image as a PNG atomically (temporary name in the same folder, then rename)."""
    write_bytes_atomic(path, encode_png(image, colours))


def _figure_to_rgb(figure):
    """Renders a matplotlib Figure (Agg) to uint8 [H, W, 3] RGB, H x W = size in inches x dpi."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3])


# ----------------------------------------------------------------------------- drawing helpers


def draw_boxes(image, boxes_xyxy, labels=None, colour=BOX_COLOUR, thickness=2):
    """Draws pixel boxes (and optional text labels above them) on a copy of an image.

    Args:
        image: uint8 [H, W, 3] RGB.
        boxes_xyxy: float [N, 4], pixels x1, y1, x2, y2 (edges).
        labels: optional list of N strings.
        colour: RGB tuple.
        thickness: line width in pixels.

    Returns:
        uint8 [H, W, 3] RGB, the input with the boxes drawn.
    """
    out = np.ascontiguousarray(image).copy()
    boxes_xyxy = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    for k, (x1, y1, x2, y2) in enumerate(boxes_xyxy):
        # cv2 draws between pixel indices; the right/bottom edge x2 is the pixel x2 - 1.
        p1 = (int(round(x1)), int(round(y1)))
        p2 = (int(round(x2)) - 1, int(round(y2)) - 1)
        cv2.rectangle(out, p1, p2, colour, thickness)
        if labels is not None:
            text = labels[k]
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            ty = max(th + 2, p1[1] - 3)
            cv2.rectangle(out, (p1[0], ty - th - 2), (p1[0] + tw + 2, ty + base - 1), colour, -1)
            cv2.putText(out, text, (p1[0] + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                        cv2.LINE_AA)
    return out


def tile_grid(tiles, cols, gap=TILE_GAP, background=255):
    """Arranges equally sized images in a grid, row by row.

    Args:
        tiles: list of uint8 [h, w, 3] images, all the same size.
        cols: images per row.
        gap: pixels between tiles and around the grid.
        background: grey level of the gaps and of empty cells.

    Returns:
        uint8 [rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3], rows = ceil(len / cols).
    """
    if not tiles:
        raise ValueError("tile_grid needs at least one tile")
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    grid = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), background, np.uint8)
    for k, tile in enumerate(tiles):
        if tile.shape[:2] != (h, w):
            raise ValueError(f"tile {k} has size {tile.shape[:2]}, expected {(h, w)}")
        r, c = divmod(k, cols)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        grid[top:top + h, left:left + w] = tile
    return grid


def fit_in_box(image, box_height, box_width, background=255):
    """Scales an image to fit a box_height x box_width box (aspect kept, centred, padded).

    Args:
        image: uint8 [H, W, 3].
        box_height, box_width: the box size in pixels.

    Returns:
        (boxed uint8 [box_height, box_width, 3], scale, (left, top)): a pixel (x, y) of the input
        is at (x * scale + left, y * scale + top) in the box.
    """
    height, width = image.shape[:2]
    scale = min(box_height / height, box_width / width)
    new_w = min(box_width, max(1, int(round(width * scale))))
    new_h = min(box_height, max(1, int(round(height * scale))))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    boxed = np.full((box_height, box_width, 3), background, np.uint8)
    left, top = (box_width - new_w) // 2, (box_height - new_h) // 2
    boxed[top:top + new_h, left:left + new_w] = resized
    return boxed, new_w / width, (left, top)


def tile_height_for(images, tile_width):
    """Tile height that fits the tallest image (by aspect ratio) at `tile_width`, within 1/4..2 of it."""
    ratio = max(image.shape[0] / image.shape[1] for image in images)
    return int(round(tile_width * min(2.0, max(0.25, ratio))))


# ----------------------------------------------------------------------------- (a) anchors


@dataclasses.dataclass(frozen=True)
class AnchorGroup:
    """The anchors of one scale around one cell.

    Attributes:
        scale: anchor side in pixels.
        feature_map: 0, 1 or 2.
        densification: n (n x n sub-centres).
        cell: (row, col) of the cell in its feature map's grid.
        boxes: float64 [n * n, 4], pixels x1, y1, x2, y2 (clipped to the image, as generated).
        centres: float64 [n * n, 2], pixels (x, y) of the anchor centres (before clipping).
    """

    scale: float
    feature_map: int
    densification: int
    cell: tuple
    boxes: np.ndarray
    centres: np.ndarray


def anchor_cell_groups(image_size=1024, cell=None):
    """The anchors FaceBoxes places on one map-0 cell and on the map-1/map-2 cells around it.

    The anchors are read out of `generate_anchors` (so the picture shows what the model uses);
    `cell_template` says how the cell's anchors split into scales.

    Args:
        image_size: side of the square input, a multiple of 128.
        cell: (row, col) on feature map 0 (stride 32); None picks the cell nearest the centre.
            Maps 1 and 2 use the cell that contains this cell's centre.

    Returns:
        list of `AnchorGroup`, one per anchor spec in `ANCHOR_SPECS` order (5 for FaceBoxes).

    Raises:
        ValueError: a size that is not a positive multiple of 128, or a cell outside the grid.
    """
    from src import anchor_generator as ag

    if image_size <= 0 or image_size % ag.PAD_MULTIPLE:
        raise ValueError(f"image_size {image_size}: must be a positive multiple of {ag.PAD_MULTIPLE}")
    grid0 = image_size // ag.STRIDES[0]
    if cell is None:
        cell = ((grid0 - 1) // 2, (grid0 - 1) // 2)
    row, col = (int(v) for v in cell)
    if not (0 <= row < grid0 and 0 <= col < grid0):
        raise ValueError(f"cell {cell}: outside the {grid0}x{grid0} grid of feature map 0")
    anchors, counts = ag.generate_anchors(image_size, image_size)
    anchors = normalized_to_pixel_xyxy(anchors.numpy(), image_size, image_size)  # [A, 4]
    centre_y = (row + 0.5) * ag.STRIDES[0]
    centre_x = (col + 0.5) * ag.STRIDES[0]
    groups, level_start = [], 0
    for level, (specs, stride) in enumerate(zip(ag.ANCHOR_SPECS, ag.STRIDES)):
        grid = image_size // stride
        r, c = int(centre_y // stride), int(centre_x // stride)
        per_cell = ag.anchors_per_cell(specs)
        template = ag.cell_template(specs)  # [K, 4]: dy, dx, height, width
        first = level_start + (r * grid + c) * per_cell
        offset = 0
        for scale, _, n in specs:
            rows = slice(offset, offset + n * n)
            cy = (r + 0.5) * stride + template[rows, 0]
            cx = (c + 0.5) * stride + template[rows, 1]
            groups.append(AnchorGroup(float(scale), level, n, (r, c),
                                      anchors[first + offset:first + offset + n * n],
                                      np.stack([cx, cy], axis=1).astype(np.float64)))
            offset += n * n
        level_start += int(counts[level])
    return groups


def default_anchor_background(image_size):
    """A face photo for the anchors picture: skimage's astronaut, uint8 [size, size, 3] RGB."""
    from skimage import data
    return cv2.resize(data.astronaut(), (image_size, image_size), interpolation=cv2.INTER_LINEAR)


def anchors_figure(image, groups, dpi=ANCHOR_FIGURE_DPI):
    """Draws the anchor groups over an image: whole input on the left, the cell zoomed on the right.

    Args:
        image: uint8 [S, S, 3] RGB, the input the anchors belong to.
        groups: from `anchor_cell_groups` for the same S.
        dpi: dots per inch; the output is `ANCHOR_FIGURE_INCHES` x dpi pixels.

    Returns:
        uint8 [ANCHOR_FIGURE_INCHES[1] * dpi, ANCHOR_FIGURE_INCHES[0] * dpi, 3] RGB.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    size = image.shape[0]
    faded = (0.55 * image.astype(np.float32) + 0.45 * 255).astype(np.uint8)
    figure = Figure(figsize=ANCHOR_FIGURE_INCHES, dpi=dpi)
    whole, zoom = figure.subplots(1, 2)
    cell_group = groups[0]
    stride0 = size / (size // 32)
    cx, cy = (cell_group.cell[1] + 0.5) * stride0, (cell_group.cell[0] + 0.5) * stride0
    handles = []
    for axis, limits in ((whole, (0, size, 0, size)),
                         (zoom, (cx - ZOOM_HALF_SIZE, cx + ZOOM_HALF_SIZE, cy - ZOOM_HALF_SIZE, cy + ZOOM_HALF_SIZE))):
        axis.imshow(faded, extent=(0, size, size, 0), interpolation="bilinear")
        axis.set_xlim(limits[0], limits[1])
        axis.set_ylim(limits[3], limits[2])
        axis.set_xticks([])
        axis.set_yticks([])
        for group, colour in zip(groups, SCALE_COLOURS):
            if axis is zoom and group.feature_map != 0:
                continue  # the zoom shows only the densified map-0 cell
            rgb = tuple(v / 255 for v in colour)
            for x1, y1, x2, y2 in group.boxes:
                axis.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=rgb,
                                         linewidth=1.0 if group.densification > 1 else 2.0))
            axis.scatter(group.centres[:, 0], group.centres[:, 1], s=10 if axis is zoom else 4, color=rgb,
                         zorder=3)
        # The map-0 cell itself.
        axis.add_patch(Rectangle((cx - stride0 / 2, cy - stride0 / 2), stride0, stride0, fill=False,
                                 edgecolor="black", linestyle="--", linewidth=1.2))
    for group, colour in zip(groups, SCALE_COLOURS):
        count = len(group.boxes)
        handles.append(Line2D([], [], color=tuple(v / 255 for v in colour), marker="o", linewidth=2,
                              label=f"{group.scale:.0f} px, map {group.feature_map}: "
                                    f"{count} anchor{'s' if count > 1 else ''}"
                                    + (f" ({group.densification}x{group.densification} centres)"
                                       if group.densification > 1 else "")))
    handles.append(Line2D([], [], color="black", linestyle="--", label="one map-0 cell (32 px)"))
    whole.legend(handles=handles, loc="lower right", fontsize=9, framealpha=0.9)
    total0 = sum(len(g.boxes) for g in groups if g.feature_map == 0)
    whole.set_title(f"{size}x{size} input: anchors of one cell per feature map", fontsize=11)
    zoom.set_title(f"zoom: the {total0} densified anchors of the map-0 cell", fontsize=11)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.94, wspace=0.03)
    return _figure_to_rgb(figure)


# ----------------------------------------------------------------------------- (b) augmentations


def augmentation_tiles(tfrecords, count, image_size, seed=0):
    """Augmented training samples from tfrecords, with their boxes drawn.

    Args:
        tfrecords: a path or a list of paths, each a tfrecord file, a folder of shards or a glob
            pattern (see `pipeline.list_shards`).
        count: number of samples (drawn as one batch; the data repeat if there are fewer).
        image_size: (height, width) of the training images.
        seed: the pipeline seed (same seed, same pictures).

    Returns:
        list of `count` uint8 [height, width, 3] RGB images.
    """
    from src.input_pipeline.pipeline import build_dataset, list_shards

    if isinstance(tfrecords, (str, os.PathLike)):
        tfrecords = [tfrecords]
    files = [name for path in tfrecords for name in list_shards(path)]
    dataset = build_dataset(files, training=True, batch_size=int(count), image_size=tuple(image_size),
                            deterministic=True, seed=int(seed), repeat=True)
    batch = next(iter(dataset.take(1)))
    images = np.clip(np.round(batch["images"].numpy() * 255.0), 0, 255).astype(np.uint8)
    boxes, num_boxes = batch["boxes"].numpy(), batch["num_boxes"].numpy()
    height, width = images.shape[1:3]
    return [draw_boxes(images[k], normalized_to_pixel_xyxy(boxes[k, :num_boxes[k]], height, width))
            for k in range(len(images))]


# ----------------------------------------------------------------------------- (c) detections


def read_rgb(path):
    """Reads an image file as uint8 [H, W, 3] RGB; ValueError naming the file if it is unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror})") from None
    return np.asarray(decode_image(data, path).convert("RGB"))


def read_video_frames(path, indices):
    """Reads chosen frames of a video.

    Args:
        path: a video file OpenCV can read.
        indices: frame numbers counting from 0.

    Returns:
        list of uint8 [H, W, 3] RGB frames, in the order of `indices`.

    Raises:
        ValueError: the video cannot be opened, or a frame number is past its end.
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot open the video")
    wanted, found, index = set(int(i) for i in indices), {}, 0
    try:
        while len(found) < len(wanted):
            ok, frame = capture.read()
            if not ok:
                missing = sorted(wanted - set(found))
                raise ValueError(f"{path}: frame {missing[0]} is past the end of the video ({index} frames)")
            if index in wanted:
                found[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    return [found[int(i)] for i in indices]


def draw_detections(detector, image, label, score_threshold, tile_height, tile_width):
    """Runs a detector on one image and draws its boxes, scores and a caption into a tile.

    Args:
        detector: callable (uint8 RGB [H, W, 3], score_threshold) -> (boxes float [N, 4] pixel
            ymin, xmin, ymax, xmax; scores float [N]), e.g. `src.frozen_graph.FrozenGraphDetector`.
        image: uint8 [H, W, 3] RGB.
        label: caption written at the top left of the tile (with the detection count).
        score_threshold: detections with a score above it are drawn.
        tile_height, tile_width: the tile size; the image is fitted into it.

    Returns:
        uint8 [tile_height, tile_width, 3] RGB.
    """
    boxes, scores = detector(image, score_threshold)
    tile, scale, (left, top) = fit_in_box(image, tile_height, tile_width)
    xyxy = pixel_yxyx_to_xyxy(np.asarray(boxes).reshape(-1, 4)) * scale + [left, top, left, top]
    tile = draw_boxes(tile, xyxy, [f"{s:.2f}" for s in np.asarray(scores).reshape(-1)])
    caption = f"{label}: {len(xyxy)} face(s)"
    (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    cv2.rectangle(tile, (0, 0), (tw + 8, th + base + 6), (255, 255, 255), -1)
    cv2.putText(tile, caption, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def detection_tiles(detector, named_images, score_threshold, tile_width):
    """Draws a detector's boxes on several images, in tiles of one size (see `draw_detections`).

    Args:
        detector: as for `draw_detections`.
        named_images: list of (label, uint8 [H, W, 3] RGB image); at least one.
        score_threshold: detections with a score above it are drawn.
        tile_width: tile width; the height fits the tallest image (`tile_height_for`).

    Returns:
        list of uint8 [tile_height, tile_width, 3] RGB tiles, in order.
    """
    tile_height = tile_height_for([image for _, image in named_images], tile_width)
    return [draw_detections(detector, image, label, score_threshold, tile_height, tile_width)
            for label, image in named_images]


def read_images(paths):
    """Reads image files, skipping unreadable ones.

    Returns:
        (named_images, failures): list of (file name, uint8 [H, W, 3] RGB) in order; list of the
        one-line error messages of the files that could not be read (each also logged).
    """
    named, failures = [], []
    for path in paths:
        try:
            named.append((os.path.basename(path), read_rgb(path)))
        except ValueError as error:
            logger.warning("%s", error)
            failures.append(str(error))
    return named, failures


# ----------------------------------------------------------------------------- CLI


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
    from src.frozen_graph import FrozenGraphDetector

    if args.video:
        name = os.path.basename(args.video)
        named = [(f"{name} frame {index}", frame)
                 for index, frame in zip(args.frames, read_video_frames(args.video, args.frames))]
        failures = []
    else:
        named, failures = read_images(args.images)
        if not named:
            raise ValueError(f"none of the {len(args.images)} image(s) could be read")
    detector = FrozenGraphDetector(args.model)
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
    detections.add_argument("--tile_width", type=int, default=480, help="tile width; the height fits the tallest image")
    detections.add_argument("--cols", type=int, default=2, help="grid columns")
    detections.set_defaults(run=_run_detections)
    return parser


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


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        _check_args(args)
        picture, what = args.run(args)
    except (ValueError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    logger.info("wrote %s (%dx%d, %.0f KB): %s", args.output, picture.shape[1], picture.shape[0],
                os.path.getsize(args.output) / 1024, what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
