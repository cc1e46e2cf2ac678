"""Parsing of one serialized tfrecord example in the upstream schema.

Box convention: boxes come out as ``[ymin, xmin, ymax, xmax]`` normalized to [0, 1] of the
image, float32 [N, 4] (N may be 0).

The schema is the upstream's (UPSTREAM_FACTS.md, "File formats"): ``filename`` (bytes),
``image`` (JPEG bytes), ``xmin``, ``ymin``, ``xmax``, ``ymax`` (float lists, normalized).
It is spelled out here rather than imported from the writer so that reading does not
depend on the writing code.
"""
import tensorflow as tf

FEATURE_SPEC = {
    'filename': tf.io.FixedLenFeature([], tf.string),
    'image': tf.io.FixedLenFeature([], tf.string),
    'xmin': tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
    'ymin': tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
    'xmax': tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
    'ymax': tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
}

# Normalized coordinates may exceed [0, 1] by this much (float round-off in the writer)
# before an example is rejected; within it they are clipped.
COORDINATE_TOLERANCE = 1e-3


def parse_example(serialized):
    """Parses one serialized tf.train.Example and checks its boxes.

    Raises tf.errors.InvalidArgumentError (at run time) naming the example's filename when
    the four coordinate lists differ in length, when a coordinate lies outside [0, 1]
    (beyond COORDINATE_TOLERANCE), or when a box has ymin > ymax or xmin > xmax.

    Args:
        serialized: a string scalar tensor, one serialized tf.train.Example.

    Returns:
        a dict with
            'filename': a string scalar tensor,
            'image': a string scalar tensor, the JPEG bytes,
            'boxes': a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax,
                clipped to [0, 1].
    """
    features = tf.io.parse_single_example(serialized, FEATURE_SPEC)
    filename = features['filename']
    ymin, xmin, ymax, xmax = (features[key] for key in ('ymin', 'xmin', 'ymax', 'xmax'))
    count = tf.size(ymin)
    same_length = tf.reduce_all(tf.equal(tf.stack([tf.size(xmin), tf.size(ymax),
                                                   tf.size(xmax)]), count))
    check_length = tf.debugging.Assert(
        same_length,
        ['tfrecord example', filename, 'has xmin/ymin/xmax/ymax lists of different lengths'])
    with tf.control_dependencies([check_length]):
        boxes = tf.stack([ymin, xmin, ymax, xmax], axis=1)  # [N, 4]
    in_range = tf.reduce_all((boxes >= -COORDINATE_TOLERANCE)
                             & (boxes <= 1.0 + COORDINATE_TOLERANCE))
    ordered = tf.reduce_all((boxes[:, 0] <= boxes[:, 2]) & (boxes[:, 1] <= boxes[:, 3]))
    check_values = tf.debugging.Assert(
        in_range & ordered,
        ['tfrecord example', filename,
         'has a box outside [0, 1] or with min > max (boxes as ymin, xmin, ymax, xmax):',
         boxes], summarize=64)
    with tf.control_dependencies([check_values]):
        boxes = tf.clip_by_value(boxes, 0.0, 1.0)
    return {'filename': filename, 'image': features['image'], 'boxes': boxes}
