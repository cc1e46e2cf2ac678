"""The anchors picture: the anchors FaceBoxes places on one cell of each feature map.

Boxes: anchors come from `src.anchor_generator` as normalized ``[ymin, xmin, ymax, xmax]`` and
are drawn in pixel ``[x1, y1, x2, y2]``.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from src.visualize.drawing import figure_to_rgb, normalized_to_pixel_xyxy

# One colour (RGB) per anchor scale, in `ANCHOR_SPECS` order: 32, 64, 128 px (map 0), 256 (map 1), 512 (map 2).
SCALE_COLOURS = ((230, 57, 70), (244, 162, 97), (42, 157, 143), (69, 123, 157), (131, 56, 236))
# The anchors figure: inches and dots per inch (output 1200 x 600 pixels at the defaults).
ANCHOR_FIGURE_INCHES = (12.0, 6.0)
ANCHOR_FIGURE_DPI = 100
# Half-size (pixels of the input) of the zoomed panel around the chosen cell.
ZOOM_HALF_SIZE = 96


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
    return figure_to_rgb(figure)
