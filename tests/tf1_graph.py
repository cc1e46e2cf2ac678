"""Test fixture: frozen inference graphs built the TF1 way (graph mode, v1 control flow).

Box convention: the graphs output boxes as [ymin, xmin, ymax, xmax] normalized to [0, 1] of
the input image, like the FaceBoxes export (the upstream's save.py / create_pb.py).

The upstream's frozen `.pb` was written by TF 1.10: `tf.map_fn` over the batch is a v1
while loop (Enter/Exit/Switch/Merge/NextIteration with TensorArrayV3 ops) and the per-image
NMS is `NonMaxSuppressionV3`. `build_tf1_style_graph` reproduces exactly that op mix with a
tiny fixed-weight conv net, so `FaceDetector` is tested against the kind of graph users will
bring, and `build_bright_region_graph` gives a scale-consistent "detector" whose answer is
known by construction (for testing the upscaling path).
"""
import os

import numpy as np
import tensorflow as tf

INPUT_NAME = 'image_tensor'
OUTPUT_NAMES = ('boxes', 'scores', 'num_boxes')

FEATURE_STRIDE = 8  # conv1 stride 4 x conv2 stride 2
ANCHOR_SIZE_PX = 32.0  # one square anchor per feature cell
BOX_SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)  # the FaceBoxes [ty, tx, th, tw] scales
NMS_IOU_THRESHOLD = 0.3  # upstream evaluation NMS
NMS_SCORE_THRESHOLD = 0.05  # upstream evaluation NMS
LOGIT_GAIN = 3.0  # spreads the random logits so sigmoid scores cover most of (0, 1)
BRIGHT_LEVEL = 127.5  # bright_region graph: a pixel is "face" above this mean intensity
BRIGHT_SCORE = 0.9  # bright_region graph: the score of its single box


def _conv_kernel(rng, size, in_channels, out_channels):
    """He-normal kernel: float32 [size, size, in, out] (HWIO)."""
    fan_in = size * size * in_channels
    kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), (size, size, in_channels, out_channels))
    return tf.constant(kernel.astype(np.float32))


def _write_graph_def(graph_def, path):
    """Serializes a GraphDef to `path` through a temporary name in the same folder."""
    tmp_path = path + '.tmp'
    with open(tmp_path, 'wb') as f:
        f.write(graph_def.SerializeToString())
    os.replace(tmp_path, path)


def _session_reference(path):
    """Returns run(images) running the frozen graph at `path` with a tf.compat.v1.Session.

    run takes uint8 images [batch, height, width, 3] and returns numpy (boxes float32
    [batch, max_boxes, 4] normalized, scores float32 [batch, max_boxes], num_boxes int32
    [batch]).
    """
    graph_def = tf.compat.v1.GraphDef()
    with open(path, 'rb') as f:
        graph_def.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name='import')
    image_tensor = graph.get_tensor_by_name('import/%s:0' % INPUT_NAME)
    outputs = [graph.get_tensor_by_name('import/%s:0' % name) for name in OUTPUT_NAMES]
    session = tf.compat.v1.Session(graph=graph)

    def run(images):
        return tuple(session.run(outputs, feed_dict={image_tensor: images}))

    return run


def _anchor_grid(feature_shape, image_height, image_width):
    """Square anchors of ANCHOR_SIZE_PX centred on each feature cell.

    Args:
        feature_shape: int32 tensor [4], the shape of the feature map [batch, h, w, c].
        image_height, image_width: float32 scalar tensors, the input size in pixels.

    Returns:
        float32 tensor [h * w, 4]: (cy, cx, height, width), normalized, row-major.
    """
    grid_h, grid_w = feature_shape[1], feature_shape[2]
    cy = (tf.cast(tf.range(grid_h), tf.float32) + 0.5) / tf.cast(grid_h, tf.float32)
    cx = (tf.cast(tf.range(grid_w), tf.float32) + 0.5) / tf.cast(grid_w, tf.float32)
    cy, cx = tf.meshgrid(cy, cx, indexing='ij')  # [h, w] each
    cy, cx = tf.reshape(cy, [-1]), tf.reshape(cx, [-1])
    height = tf.fill(tf.shape(cy), ANCHOR_SIZE_PX / image_height)
    width = tf.fill(tf.shape(cx), ANCHOR_SIZE_PX / image_width)
    return tf.stack([cy, cx, height, width], axis=1)


def _decode(encodings, anchors):
    """Centre-size decoding: encodings float32 [B, A, 4] -> boxes [B, A, 4] clipped to [0, 1]."""
    ty, tx, th, tw = tf.unstack(encodings, axis=2)
    a_cy, a_cx, a_h, a_w = tf.unstack(anchors, axis=1)
    sy, sx, sh, sw = BOX_SCALE_FACTORS
    cy = a_cy + ty / sy * a_h
    cx = a_cx + tx / sx * a_w
    h = a_h * tf.exp(th / sh)
    w = a_w * tf.exp(tw / sw)
    boxes = tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=2)
    return tf.clip_by_value(boxes, 0.0, 1.0)


def _nms_padded(boxes, scores, max_boxes):
    """Per-image NMS, zero-padded.

    boxes float32 [A, 4], scores float32 [A] -> (boxes [max_boxes, 4], scores [max_boxes],
    count int32 []).
    """
    keep = tf.image.non_max_suppression(
        boxes, scores, max_boxes, iou_threshold=NMS_IOU_THRESHOLD,
        score_threshold=NMS_SCORE_THRESHOLD)
    count = tf.size(keep)
    pad = max_boxes - count
    kept_boxes = tf.pad(tf.gather(boxes, keep), [[0, pad], [0, 0]])
    kept_scores = tf.pad(tf.gather(scores, keep), [[0, pad]])
    return kept_boxes, kept_scores, tf.cast(count, tf.int32)


def build_tf1_style_graph(path, seed=0, max_boxes=20):
    """Writes a frozen TF1-style detector graph to `path` and returns a Session reference.

    The graph: placeholder `image_tensor` uint8 [None, None, None, 3]; x = 2 * image / 255 - 1;
    conv 5x5/4 (8) ReLU, conv 3x3/2 (16) ReLU, a 3x3 head giving one logit and four box
    offsets per cell; one ANCHOR_SIZE_PX square anchor per cell; sigmoid scores; decoding;
    then `tf.map_fn` over the batch (built with control flow v1, hence TensorArrayV3 and
    Enter/Exit/Switch/Merge ops) running `tf.image.non_max_suppression`
    (NonMaxSuppressionV3) padded to `max_boxes`. Weights are fixed constants from `seed`.

    Args:
        path: str, where the serialized GraphDef is written (atomically).
        seed: int, seeds the fixed random weights.
        max_boxes: int, the padded number of output boxes per image.

    Returns:
        run(images): images uint8 numpy [batch, height, width, 3] -> (boxes float32
        [batch, max_boxes, 4] normalized ymin, xmin, ymax, xmax; scores float32
        [batch, max_boxes]; num_boxes int32 [batch]), computed by tf.compat.v1.Session on
        the graph read back from `path`.
    """
    rng = np.random.RandomState(seed)
    graph = tf.Graph()
    was_v2 = tf.compat.v1.control_flow_v2_enabled()
    # The switch is process-global; it is restored below so other tests keep TF2 defaults.
    tf.compat.v1.disable_control_flow_v2()
    try:
        with graph.as_default():
            image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name=INPUT_NAME)
            shape = tf.shape(image)
            image_height = tf.cast(shape[1], tf.float32)
            image_width = tf.cast(shape[2], tf.float32)
            x = tf.cast(image, tf.float32) * (2.0 / 255.0) - 1.0
            x = tf.nn.relu(tf.nn.conv2d(x, _conv_kernel(rng, 5, 3, 8), 4, 'SAME'))
            x = tf.nn.relu(tf.nn.conv2d(x, _conv_kernel(rng, 3, 8, 16), 2, 'SAME'))
            head = tf.nn.conv2d(x, _conv_kernel(rng, 3, 16, 5), 1, 'SAME')  # [B, h, w, 5]
            head = tf.reshape(head, [shape[0], -1, 5])  # [B, A, 5]
            scores = tf.sigmoid(LOGIT_GAIN * head[:, :, 0])  # [B, A]
            anchors = _anchor_grid(tf.shape(x), image_height, image_width)
            boxes = _decode(head[:, :, 1:], anchors)  # [B, A, 4]
            out_boxes, out_scores, out_count = tf.map_fn(
                lambda args: _nms_padded(args[0], args[1], max_boxes),
                (boxes, scores), fn_output_signature=(tf.float32, tf.float32, tf.int32))
            tf.identity(out_boxes, name=OUTPUT_NAMES[0])
            tf.identity(out_scores, name=OUTPUT_NAMES[1])
            tf.identity(out_count, name=OUTPUT_NAMES[2])
    finally:
        if was_v2:
            tf.compat.v1.enable_control_flow_v2()
    _write_graph_def(graph.as_graph_def(), path)
    return _session_reference(path)


def build_bright_region_graph(path):
    """Writes a frozen graph that "detects" the bounding box of the bright pixels.

    Scale-consistent by construction: a pixel is bright when its channel mean exceeds
    BRIGHT_LEVEL; the single output box is the normalized extent of the bright pixels
    (rows first/last+1 over height, columns over width) with score BRIGHT_SCORE, or no box
    (num_boxes 0) when nothing is bright. Same interface as the FaceBoxes export with
    max_boxes 1.

    Args:
        path: str, where the serialized GraphDef is written (atomically).

    Returns:
        run(images) as for build_tf1_style_graph.
    """
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name=INPUT_NAME)
        bright = tf.reduce_mean(tf.cast(image, tf.float32), axis=3) > BRIGHT_LEVEL  # [B, H, W]
        rows = tf.reduce_any(bright, axis=2)  # [B, H]
        cols = tf.reduce_any(bright, axis=1)  # [B, W]

        def extent(mask):
            """mask bool [B, N] -> (first, last + 1) float32 [B] each, normalized by N."""
            size = tf.shape(mask)[1]
            as_int = tf.cast(mask, tf.int32)
            first = tf.argmax(as_int, axis=1, output_type=tf.int32)
            last = size - tf.argmax(tf.reverse(as_int, [1]), axis=1, output_type=tf.int32)
            size = tf.cast(size, tf.float32)
            return tf.cast(first, tf.float32) / size, tf.cast(last, tf.float32) / size

        ymin, ymax = extent(rows)
        xmin, xmax = extent(cols)
        found = tf.reduce_any(rows, axis=1)  # [B]
        mask = tf.cast(found, tf.float32)
        boxes = tf.stack([ymin, xmin, ymax, xmax], axis=1) * mask[:, None]  # [B, 4]
        tf.identity(boxes[:, None, :], name=OUTPUT_NAMES[0])
        tf.identity((BRIGHT_SCORE * mask)[:, None], name=OUTPUT_NAMES[1])
        tf.identity(tf.cast(found, tf.int32), name=OUTPUT_NAMES[2])
    _write_graph_def(graph.as_graph_def(), path)
    return _session_reference(path)


def graph_op_types(path):
    """The set of op type names (str) in the GraphDef at `path`, function library included."""
    graph_def = tf.compat.v1.GraphDef()
    with open(path, 'rb') as f:
        graph_def.ParseFromString(f.read())
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops
