"""Box arithmetic on tensors.

Box convention: a box is ``[ymin, xmin, ymax, xmax]`` (normalized to [0, 1] inside the model,
but every function here works in any consistent unit). Every op accepts boxes of shape
``[..., 4]`` and broadcasts over the leading dimensions; a last dimension other than 4
raises ``ValueError``.
"""
import numpy as np
import tensorflow as tf

# Centre-size encoding scale factors [ty, tx, th, tw] (upstream / SSD convention).
SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)
# Guards divisions and logs in encode (upstream value).
EPSILON = 1e-8


def _check_boxes(boxes, name="boxes"):
    boxes = tf.convert_to_tensor(boxes, dtype=tf.float32)
    if boxes.shape.rank is not None and boxes.shape[-1] is not None and boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4], got {boxes.shape}")
    return boxes


def area(boxes):
    """Area of boxes.

    Args:
        boxes: a float tensor with shape [..., 4], [ymin, xmin, ymax, xmax].

    Returns:
        a float tensor with shape [...]; degenerate boxes have area 0.
    """
    boxes = _check_boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)


def intersection(boxes1, boxes2):
    """Pairwise intersection areas.

    Args:
        boxes1: a float tensor with shape [..., N, 4].
        boxes2: a float tensor with shape [..., M, 4].

    Returns:
        a float tensor with shape [..., N, M].
    """
    boxes1 = _check_boxes(boxes1, "boxes1")
    boxes2 = _check_boxes(boxes2, "boxes2")
    ymin1, xmin1, ymax1, xmax1 = tf.split(boxes1, 4, axis=-1)  # [..., N, 1] each
    ymin2, xmin2, ymax2, xmax2 = tf.unstack(boxes2, axis=-1)  # [..., M] each
    ymin2, xmin2, ymax2, xmax2 = (tf.expand_dims(t, -2) for t in (ymin2, xmin2, ymax2, xmax2))
    heights = tf.maximum(tf.minimum(ymax1, ymax2) - tf.maximum(ymin1, ymin2), 0.0)
    widths = tf.maximum(tf.minimum(xmax1, xmax2) - tf.maximum(xmin1, xmin2), 0.0)
    return heights * widths


def iou(boxes1, boxes2):
    """Pairwise intersection over union.

    Args:
        boxes1: a float tensor with shape [..., N, 4].
        boxes2: a float tensor with shape [..., M, 4].

    Returns:
        a float tensor with shape [..., N, M]; 0 where the union is empty.
    """
    inter = intersection(boxes1, boxes2)
    union = tf.expand_dims(area(boxes1), -1) + tf.expand_dims(area(boxes2), -2) - inter
    return tf.math.divide_no_nan(inter, union)


def to_center_coordinates(boxes):
    """[ymin, xmin, ymax, xmax] -> [cy, cx, h, w], shape [..., 4] -> [..., 4]."""
    boxes = _check_boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([0.5 * (ymin + ymax), 0.5 * (xmin + xmax), ymax - ymin, xmax - xmin], axis=-1)


def to_minmax_coordinates(boxes):
    """[cy, cx, h, w] -> [ymin, xmin, ymax, xmax], shape [..., 4] -> [..., 4]."""
    boxes = _check_boxes(boxes)
    cy, cx, h, w = tf.unstack(boxes, axis=-1)
    return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def _centres_and_sizes(boxes):
    """[..., 4] ymin, xmin, ymax, xmax -> (centres [..., 2] (cy, cx), sizes [..., 2] (h, w))."""
    sizes = boxes[..., 2:] - boxes[..., :2]
    return boxes[..., :2] + 0.5 * sizes, sizes


def encode(boxes, anchors, scale_factors=SCALE_FACTORS):
    """Centre-size encoding of boxes relative to anchors.

    ty = sy (cy - cy_a) / h_a, tx = sx (cx - cx_a) / w_a, th = sh log(h / h_a), tw = sw log(w / w_a).

    Args:
        boxes: a float tensor with shape [..., 4], [ymin, xmin, ymax, xmax].
        anchors: a float tensor with shape [..., 4] broadcastable to boxes.
        scale_factors: four floats [sy, sx, sh, sw].

    Returns:
        a float tensor with shape [..., 4], [ty, tx, th, tw].
    """
    centres, sizes = _centres_and_sizes(_check_boxes(boxes))
    anchor_centres, anchor_sizes = _centres_and_sizes(_check_boxes(anchors, "anchors"))
    anchor_sizes = anchor_sizes + EPSILON
    scale = tf.constant(scale_factors, tf.float32)
    return tf.concat([
        (centres - anchor_centres) / anchor_sizes,
        tf.math.log((sizes + EPSILON) / anchor_sizes),
    ], axis=-1) * scale


def decode(codes, anchors, scale_factors=SCALE_FACTORS):
    """Inverse of `encode`.

    Args:
        codes: a float tensor with shape [..., 4], [ty, tx, th, tw].
        anchors: a float tensor with shape [..., 4] broadcastable to codes, [ymin, xmin, ymax, xmax].
        scale_factors: four floats [sy, sx, sh, sw].

    Returns:
        a float tensor with shape [..., 4], [ymin, xmin, ymax, xmax].
    """
    codes = _check_boxes(codes, "codes") / tf.constant(scale_factors, tf.float32)
    anchor_centres, anchor_sizes = _centres_and_sizes(_check_boxes(anchors, "anchors"))
    centres = codes[..., :2] * anchor_sizes + anchor_centres
    half_sizes = 0.5 * tf.exp(codes[..., 2:]) * anchor_sizes
    return tf.concat([centres - half_sizes, centres + half_sizes], axis=-1)


def decode_with_centres_and_sizes(codes, centres, sizes, scale_factors=SCALE_FACTORS):
    """`decode` with the anchors given as 4-wide centres and sizes (inference's fast path).

    Equal to decode(codes, anchors) up to float rounding, in fewer, full-width ops: the
    column picks of the codes ([ty, tx, ty, tx] / scale factors and [th, tw, th, tw] / scale
    factors) are two [4, 4] matrix products instead of strided slices.

    Args:
        codes: a float32 tensor with shape [B, A, 4], [ty, tx, th, tw].
        centres: a float32 tensor with shape [A, 4], the anchors' (cy, cx, cy, cx).
        sizes: a float32 tensor with shape [A, 4], the anchors' (h, w, h, w).
        scale_factors: four floats [sy, sx, sh, sw].

    Returns:
        a float32 tensor with shape [B, A, 4], [ymin, xmin, ymax, xmax] in the anchors' frame.
    """
    sy, sx, sh, sw = scale_factors
    pick_centre = np.zeros((4, 4), np.float32)
    pick_size = np.zeros((4, 4), np.float32)
    for column in range(4):
        axis = column % 2  # 0: y, 1: x
        pick_centre[axis, column] = 1.0 / (sy, sx)[axis]
        pick_size[2 + axis, column] = 1.0 / (sh, sw)[axis]
    flat = tf.reshape(codes, [-1, 4])
    offsets = tf.matmul(flat, pick_centre) + tf.constant([-0.5, -0.5, 0.5, 0.5]) * tf.exp(
        tf.matmul(flat, pick_size))
    return centres + sizes * tf.reshape(offsets, tf.shape(codes))


def clip_to_window(boxes, window=(0.0, 0.0, 1.0, 1.0)):
    """Clip boxes to a window.

    Args:
        boxes: a float tensor with shape [..., 4], [ymin, xmin, ymax, xmax].
        window: [ymin, xmin, ymax, xmax] of the window.

    Returns:
        a float tensor with shape [..., 4].
    """
    boxes = _check_boxes(boxes)
    wy0, wx0, wy1, wx1 = window
    return tf.clip_by_value(boxes, tf.constant([wy0, wx0, wy0, wx0], boxes.dtype),
                            tf.constant([wy1, wx1, wy1, wx1], boxes.dtype))
