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
    scale = 1.0 / tf.cast(tf.stack([image_height, image_width, image_height, image_width]), tf.float32)
    all_anchors, counts = [], []
    for specs, stride in zip(ANCHOR_SPECS, STRIDES):
        grid_h = image_height // stride
        grid_w = image_width // stride
        template = cell_template(specs)  # [K, 4] dy, dx, height, width
        # Each anchor's corners relative to its cell centre, [K, 4] ymin, xmin, ymax, xmax.
        corners = tf.constant(np.concatenate(
            [template[:, :2] - 0.5 * template[:, 2:], template[:, :2] + 0.5 * template[:, 2:]], axis=1))
        cy = (tf.cast(tf.range(grid_h), tf.float32) + 0.5) * stride  # [h]
        cx = (tf.cast(tf.range(grid_w), tf.float32) + 0.5) * stride  # [w]
        cy, cx = tf.meshgrid(cy, cx, indexing="ij")  # [h, w]
        centres = tf.stack([cy, cx, cy, cx], axis=-1)[:, :, None, :]  # [h, w, 1, 4]
        anchors = (centres + corners) * scale  # [h, w, K, 4]
        all_anchors.append(tf.reshape(anchors, [-1, 4]))
        counts.append(grid_h * grid_w * template.shape[0])
    anchors = tf.clip_by_value(tf.concat(all_anchors, axis=0), 0.0, 1.0)
    return anchors, counts


def anchor_centres_and_sizes(image_height, image_width, window_scale):
    """The anchors of `generate_anchors` as 4-wide centres and sizes, in the unpadded frame.

    For `box_utils.decode_with_centres_and_sizes`. Each axis of an anchor depends only on its
    grid row (y) or column (x) and its place in the cell, so both axes are computed on small
    [grid, K] tensors and broadcast once; the anchors are clipped to the padded image as in
    `generate_anchors`.

    Args:
        image_height, image_width: ints or int32 scalar tensors, multiples of 128.
        window_scale: a float32 tensor with shape [2], (H / H', W / W') of the unpadded
            image in the padded one; centres and sizes are divided by it.

    Returns:
        centres: a float32 tensor with shape [num_anchors, 4], (cy, cx, cy, cx).
        sizes: a float32 tensor with shape [num_anchors, 4], (h, w, h, w).
        Both normalized by the unpadded size, anchors in `generate_anchors` order.
    """
    y_columns = tf.constant([1.0, 0.0, 1.0, 0.0])
    x_columns = tf.constant([0.0, 1.0, 0.0, 1.0])
    inverse = 1.0 / tf.cast(tf.stack([image_height, image_width]), tf.float32)
    all_centres, all_sizes = [], []
    for specs, stride in zip(ANCHOR_SPECS, STRIDES):
        template = cell_template(specs)  # [K, 4] dy, dx, height, width

        def axis(size, offsets, lengths, index):
            """Clipped anchor centres and lengths along one axis, each [grid, K]."""
            cells = (tf.cast(tf.range(size // stride), tf.float32) + 0.5) * stride  # [grid]
            low = tf.clip_by_value((cells[:, None] + (offsets - 0.5 * lengths)) * inverse[index], 0.0, 1.0)
            high = tf.clip_by_value((cells[:, None] + (offsets + 0.5 * lengths)) * inverse[index], 0.0, 1.0)
            length = high - low
            return (low + 0.5 * length) / window_scale[index], length / window_scale[index]

        cy, h = axis(image_height, template[:, 0], template[:, 2], 0)
        cx, w = axis(image_width, template[:, 1], template[:, 3], 1)
        # [grid_h, 1, K, 1] * y columns + [1, grid_w, K, 1] * x columns -> [grid_h, grid_w, K, 4]
        centres = cy[:, None, :, None] * y_columns + cx[None, :, :, None] * x_columns
        sizes = h[:, None, :, None] * y_columns + w[None, :, :, None] * x_columns
        all_centres.append(tf.reshape(centres, [-1, 4]))
        all_sizes.append(tf.reshape(sizes, [-1, 4]))
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
