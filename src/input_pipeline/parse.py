"""Parsing of one serialized tfrecord example (the schema of ``src/tfrecords.py``).

Box convention: boxes come out as ``[ymin, xmin, ymax, xmax]`` normalized to [0, 1] of the
image, float32 [N, 4] (N may be 0); ignore regions likewise, float32 [M, 4].

The schema is the upstream's, ``filename`` (bytes), ``image`` (JPEG bytes), ``xmin``,
``ymin``, ``xmax``, ``ymax`` (float lists, normalized), plus this project's optional
``ignore_*`` lists; a record without them (every upstream record) has no ignore regions.
"""
import tensorflow as tf

from src import tfrecords

# Normalized coordinates may exceed [0, 1] by this much (float round-off in the writer)
# before an example is rejected; within it they are clipped.
COORDINATE_TOLERANCE = 1e-3


def _stack_boxes(features, keys, filename, what):
    """Stacks four coordinate lists (xmin, ymin, xmax, ymax keys) into checked [N, 4] boxes."""
    xmin, ymin, xmax, ymax = (features[key] for key in keys)
    count = tf.size(ymin)
    same_length = tf.reduce_all(tf.equal(tf.stack([tf.size(xmin), tf.size(ymax),
                                                   tf.size(xmax)]), count))
    check_length = tf.debugging.Assert(
        same_length,
        ['tfrecord example', filename, f'has {what} coordinate lists of different lengths'])
    with tf.control_dependencies([check_length]):
        boxes = tf.stack([ymin, xmin, ymax, xmax], axis=1)  # [N, 4]
    in_range = tf.reduce_all((boxes >= -COORDINATE_TOLERANCE)
                             & (boxes <= 1.0 + COORDINATE_TOLERANCE))
    ordered = tf.reduce_all((boxes[:, 0] <= boxes[:, 2]) & (boxes[:, 1] <= boxes[:, 3]))
    check_values = tf.debugging.Assert(
        in_range & ordered,
        ['tfrecord example', filename,
         f'has {what} outside [0, 1] or with min > max (as ymin, xmin, ymax, xmax):',
         boxes], summarize=64)
    with tf.control_dependencies([check_values]):
        return tf.clip_by_value(boxes, 0.0, 1.0)


def parse_example(serialized):
    """Parses one serialized tf.train.Example and checks its boxes.

    Raises tf.errors.InvalidArgumentError (at run time) naming the example's filename when
    the four coordinate lists (of the boxes or of the ignore regions) differ in length, when
    a coordinate lies outside [0, 1] (beyond COORDINATE_TOLERANCE), or when a box has
    ymin > ymax or xmin > xmax.

    Args:
        serialized: a string scalar tensor, one serialized tf.train.Example.

    Returns:
        a dict with
            'filename': a string scalar tensor,
            'image': a string scalar tensor, the JPEG bytes,
            'boxes': a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax,
                clipped to [0, 1],
            'ignore_boxes': a float32 tensor of shape [M, 4], the ignore regions, likewise.
    """
    features = tf.io.parse_single_example(serialized, tfrecords.feature_spec())
    filename = features[tfrecords.FILENAME_KEY]
    boxes = _stack_boxes(features, tfrecords.BOX_KEYS, filename, 'boxes')
    ignore_boxes = _stack_boxes(features, tfrecords.IGNORE_BOX_KEYS, filename, 'ignore regions')
    return {'filename': filename, 'image': features[tfrecords.IMAGE_KEY], 'boxes': boxes,
            'ignore_boxes': ignore_boxes}
