"""Pictures for the README and for checking data by eye: anchors, augmented samples, detections.

One module per picture, plus what they share:

- `src.visualize.drawing`: box conversions, image reading, PNG output, drawing and tiling;
- `src.visualize.anchors`: the anchors of one cell of each feature map over an image;
- `src.visualize.augmentations`: augmented training samples from tfrecords with their boxes;
- `src.visualize.detections`: a detector's boxes on image files or video frames;
- `src.visualize.cli`: the command line below (``python -m src.visualize``).

Box conventions: anchors and input-pipeline boxes are ``[ymin, xmin, ymax, xmax]``
normalized to [0, 1]; detectors return ``[ymin, xmin, ymax, xmax]`` in pixels. Drawing
happens in pixel ``[x1, y1, x2, y2]`` (edges). Images are uint8 RGB [H, W, 3].

Usage (each subcommand writes one PNG atomically to the required ``--output``, see ``--help``)::

    python -m src.visualize anchors --output media/pictures/anchors.png
    python -m src.visualize augmentations --tfrecords /tmp/vis/shards --output media/pictures/augmentations.png
    python -m src.visualize detections --model model/facebox.pb --images a.jpg b.jpg --output dets.png
    python -m src.visualize detections --model model/facebox.pb --video media/sample.mp4 --frames 40 100 \
        --output dets.png

The names below are re-exported so that ``from src import visualize; visualize.draw_boxes(...)``
keeps working.
"""
from src.visualize.anchors import (ANCHOR_FIGURE_DPI, ANCHOR_FIGURE_INCHES, SCALE_COLOURS, ZOOM_HALF_SIZE,
                                   AnchorGroup, anchor_cell_groups, anchors_figure,
                                   default_anchor_background)
from src.visualize.augmentations import augmentation_tiles
from src.visualize.cli import build_parser, main
from src.visualize.detections import detection_tiles, draw_detections, read_images, read_video_frames
from src.visualize.drawing import (BOX_COLOUR, DEFAULT_PNG_COLOURS, TILE_GAP, draw_boxes, encode_png,
                                   figure_to_rgb, fit_in_box, normalized_to_pixel_xyxy, pixel_yxyx_to_xyxy,
                                   read_rgb, tile_grid, tile_height_for, write_png)

__all__ = [
    "ANCHOR_FIGURE_DPI", "ANCHOR_FIGURE_INCHES", "SCALE_COLOURS", "ZOOM_HALF_SIZE", "AnchorGroup",
    "anchor_cell_groups", "anchors_figure", "default_anchor_background", "augmentation_tiles",
    "build_parser", "main", "detection_tiles", "draw_detections", "read_images", "read_video_frames",
    "BOX_COLOUR", "DEFAULT_PNG_COLOURS", "TILE_GAP", "draw_boxes", "encode_png", "figure_to_rgb",
    "fit_in_box", "normalized_to_pixel_xyxy", "pixel_yxyx_to_xyxy", "read_rgb", "tile_grid",
    "tile_height_for", "write_png",
]
