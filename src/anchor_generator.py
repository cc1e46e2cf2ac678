"""Densified anchors of FaceBoxes for any (padded) input size.

Box convention: [ymin, xmin, ymax, xmax], normalized by the padded image height/width and
clipped to [0, 1].

Layout (the upstream's src/anchor_generator.py): anchors are emitted grid-row-major (row i outer,
column j inner), then per cell in spec order, then the n x n sub-centres of a densified
spec with the x sub-index as the outer loop and the y sub-index as the inner loop. The
prediction heads reshape their outputs in exactly this order.
"""
import math

import numpy as np
import tensorflow as tf

# (scale in pixels, aspect ratio, densification n) per feature map (FaceBoxes paper, Table/Sec. 3.3).
ANCHOR_SPECS = (
    ((32, 1.0, 4), (64, 1.0, 2), (128, 1.0, 1)),
    ((256, 1.0, 1),),
    ((512, 1.0, 1),),
)
# Feature map strides in pixels (inception3, conv3_2, conv4_2).
STRIDES = (32, 64, 128)
# Every input side is padded to a multiple of this (the coarsest stride).
PAD_MULTIPLE = 128


def anchors_per_cell(specs):
    """Number of anchors per grid cell for one feature map's specs (sum of n^2)."""
    return sum(n * n for _, _, n in specs)


NUM_ANCHORS_PER_CELL = tuple(anchors_per_cell(s) for s in ANCHOR_SPECS)  # (21, 1, 1)


def cell_template(specs):
    """Anchor offsets and sizes of one cell, in pixels, in emission order.

    Args:
        specs: a sequence of (scale, aspect_ratio, n).

    Returns:
        a float32 numpy array with shape [K, 4]: [dy, dx, height, width] where (dy, dx) is the
        offset of the anchor centre from the cell centre; K = sum of n^2.
    """
    rows = []
    for scale, ratio, n in specs:
        height = scale / math.sqrt(ratio)
        width = scale * math.sqrt(ratio)
        offsets = (np.arange(n) + 0.5) / n - 0.5
        for kx in range(n):          # x sub-index is the outer loop
            for ky in range(n):      # y sub-index is the inner loop
                rows.append((offsets[ky] * height, offsets[kx] * width, height, width))
    return np.asarray(rows, dtype=np.float32)


def _axis_bounds(size, stride, offsets, lengths, inverse):
    """Clipped anchor extents along one axis: (low, high), each float32 [size // stride, K].

    An anchor's y extent depends only on its grid row and its place in the cell (x: the
    column), so each axis is computed on a small [grid, K] tensor and broadcast later.

    Args:
        size: int or int32 scalar tensor, the padded image side (a multiple of 128).
        stride: int, the feature map's stride.
        offsets, lengths: float32 numpy [K], the cell template's centre offsets and lengths
            along this axis, in pixels.
        inverse: float32 scalar tensor, 1 / size.
    """
    cells = (tf.cast(tf.range(size // stride), tf.float32) + 0.5) * stride  # [grid] cell centres
    low = tf.clip_by_value((cells[:, None] + (offsets - 0.5 * lengths)) * inverse, 0.0, 1.0)
    high = tf.clip_by_value((cells[:, None] + (offsets + 0.5 * lengths)) * inverse, 0.0, 1.0)
    return low, high


def _per_level_bounds(image_height, image_width):
    """For each feature map: ((y low, y high) [grid_h, K], (x low, x high) [grid_w, K]), clipped."""
    inverse = 1.0 / tf.cast(tf.stack([image_height, image_width]), tf.float32)
    levels = []
    for specs, stride in zip(ANCHOR_SPECS, STRIDES):
        template = cell_template(specs)  # [K, 4] dy, dx, height, width
        levels.append((_axis_bounds(image_height, stride, template[:, 0], template[:, 2], inverse[0]),
                       _axis_bounds(image_width, stride, template[:, 1], template[:, 3], inverse[1])))
    return levels


def _broadcast_grid(y_values, x_values):
    """[grid_h, K, 4] y-part + [grid_w, K, 4] x-part -> [grid_h * grid_w * K, 4], row-major."""
    return tf.reshape(y_values[:, None] + x_values[None, :], [-1, 4])


_Y_COLUMNS = np.array([1.0, 0.0, 1.0, 0.0], np.float32)  # ymin, xmin, ymax, xmax (or cy, cx, cy, cx)
_X_COLUMNS = np.array([0.0, 1.0, 0.0, 1.0], np.float32)


def generate_anchors(image_height, image_width):
    """Anchors for an input of the given padded size.

    Args:
        image_height: an int or int32 scalar tensor, a multiple of 128.
        image_width: an int or int32 scalar tensor, a multiple of 128.

    Returns:
        anchors: a float32 tensor with shape [num_anchors, 4], [ymin, xmin, ymax, xmax]
            normalized by the padded size and clipped to [0, 1].
        num_anchors_per_level: a list of three int32 scalar tensors (or ints when the size is
            static), the anchor count of each feature map.
    """
    all_anchors, counts = [], []
    for ((y_low, y_high), (x_low, x_high)), specs, stride in zip(
            _per_level_bounds(image_height, image_width), ANCHOR_SPECS, STRIDES):
        # [grid, K, 4] with the axis' (low, high) in the columns of (min, max).
        y_part = tf.stack([y_low, tf.zeros_like(y_low), y_high, tf.zeros_like(y_high)], axis=-1)
        x_part = tf.stack([tf.zeros_like(x_low), x_low, tf.zeros_like(x_high), x_high], axis=-1)
        all_anchors.append(_broadcast_grid(y_part, x_part))
        counts.append((image_height // stride) * (image_width // stride) * anchors_per_cell(specs))
    return tf.concat(all_anchors, axis=0), counts


def anchor_centres_and_sizes(image_height, image_width, window_scale):
    """The anchors of `generate_anchors` as 4-wide centres and sizes, in the unpadded frame.

    For `box_utils.decode_with_centres_and_sizes`: the same clipped extents (one code path,
    `_axis_bounds`), turned into centres and lengths per axis before broadcasting.

    Args:
        image_height, image_width: ints or int32 scalar tensors, multiples of 128.
        window_scale: a float32 tensor with shape [2], (H / H', W / W') of the unpadded
            image in the padded one; centres and sizes are divided by it.

    Returns:
        centres: a float32 tensor with shape [num_anchors, 4], (cy, cx, cy, cx).
        sizes: a float32 tensor with shape [num_anchors, 4], (h, w, h, w).
        Both normalized by the unpadded size, anchors in `generate_anchors` order.
    """
    all_centres, all_sizes = [], []
    for (y_bounds, x_bounds) in _per_level_bounds(image_height, image_width):
        parts = []
        for (low, high), scale, columns in ((y_bounds, window_scale[0], _Y_COLUMNS),
                                            (x_bounds, window_scale[1], _X_COLUMNS)):
            length = high - low  # the same formulas as box_utils' centre/size conversion
            parts.append(((low + 0.5 * length) / scale, length / scale, columns))
        (cy, h, yc), (cx, w, xc) = parts
        all_centres.append(_broadcast_grid(cy[..., None] * yc, cx[..., None] * xc))
        all_sizes.append(_broadcast_grid(h[..., None] * yc, w[..., None] * xc))
    return tf.concat(all_centres, axis=0), tf.concat(all_sizes, axis=0)


def padded_size(height, width):
    """Size after zero-padding on the bottom/right to the next multiple of 128.

    Args:
        height, width: ints or int32 scalar tensors.

    Returns:
        (padded_height, padded_width) of the same kind.
    """
    return (
        (height + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE,
        (width + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE,
    )
