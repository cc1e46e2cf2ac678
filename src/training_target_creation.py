"""Anchor <-> ground-truth matching and regression targets.

Box convention: [ymin, xmin, ymax, xmax], normalized (anchors and ground truth in the same
frame: the padded image).

Rule (UPSTREAM_FACTS.md, "Matching"): each anchor takes its best ground-truth box if that
IoU >= 0.35, else it is background; then every ground-truth box is force-matched to one anchor,
overriding the threshold match.

Beyond the upstream, which force-matched each box to its argmax anchor and so lost a face
whenever two faces shared that anchor, forced matches here are distinct: ground-truth boxes
are processed from the smallest area to the largest (small faces have the fewest good
anchors), and each takes its best-IoU anchor among those not already force-matched to an
earlier box. So every ground-truth box with positive area keeps at least one anchor.
"""
import tensorflow as tf

from src import box_utils

# IoU above which an anchor is a positive (FaceBoxes paper, Sec. 3.4; upstream config).
MATCHING_THRESHOLD = 0.35


def match_anchors(anchors, boxes, num_boxes, threshold=MATCHING_THRESHOLD):
    """Matches anchors to ground-truth boxes for a batch.

    Args:
        anchors: a float tensor with shape [A, 4].
        boxes: a float tensor with shape [B, N, 4], zero padded after num_boxes[b] boxes.
        num_boxes: an int32 tensor with shape [B].
        threshold: float, the IoU of a threshold match.

    Returns:
        an int32 tensor with shape [B, A]: the index of the matched ground-truth box in
        boxes[b], or -1 for background.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    num_boxes = tf.convert_to_tensor(num_boxes, tf.int32)
    batch_size = tf.shape(boxes)[0]
    num_anchors = tf.shape(anchors)[0]
    max_boxes = tf.shape(boxes)[1]
    valid = tf.sequence_mask(num_boxes, max_boxes)  # [B, N]

    overlaps = box_utils.iou(boxes, anchors)  # [B, N, A]
    # Padded rows can never win: -1 is below any IoU.
    overlaps = tf.where(valid[:, :, None], overlaps, -1.0)

    # Threshold matching; max over an empty N axis would fail, so pad one invalid row.
    padded = tf.concat([overlaps, -tf.ones([batch_size, 1, num_anchors])], axis=1)  # [B, N+1, A]
    best_box = tf.argmax(padded, axis=1, output_type=tf.int32)  # [B, A]
    best_iou = tf.reduce_max(padded, axis=1)  # [B, A]
    matches = tf.where(best_iou >= threshold, best_box, -1)

    # Forced, distinct matches, smallest box first.
    areas = tf.where(valid, box_utils.area(boxes), float("inf"))  # [B, N]
    order = tf.argsort(areas, axis=1, stable=True)  # [B, N]
    batch_index = tf.range(batch_size)

    def body(k, taken, forced):
        box_index = order[:, k]  # [B]
        row = tf.gather_nd(overlaps, tf.stack([batch_index, box_index], axis=1))  # [B, A]
        row = tf.where(taken, -2.0, row)
        anchor_index = tf.argmax(row, axis=1, output_type=tf.int32)  # [B]
        is_valid = k < num_boxes  # [B]
        hit = tf.logical_and(tf.one_hot(anchor_index, num_anchors, on_value=True, off_value=False),
                             is_valid[:, None])  # [B, A]
        forced = tf.where(hit, box_index[:, None], forced)
        return k + 1, tf.logical_or(taken, hit), forced

    _, _, forced = tf.while_loop(
        lambda k, taken, forced: k < max_boxes,
        body,
        (tf.constant(0), tf.zeros([batch_size, num_anchors], tf.bool),
         -tf.ones([batch_size, num_anchors], tf.int32)))
    return tf.where(forced >= 0, forced, matches)


def create_targets(anchors, boxes, num_boxes, threshold=MATCHING_THRESHOLD):
    """Matches and regression targets for a batch.

    Args:
        anchors: a float tensor with shape [A, 4].
        boxes: a float tensor with shape [B, N, 4], zero padded.
        num_boxes: an int32 tensor with shape [B].
        threshold: float, the IoU of a threshold match.

    Returns:
        matches: an int32 tensor with shape [B, A], ground-truth index or -1.
        regression_targets: a float tensor with shape [B, A, 4], encoded [ty, tx, th, tw] for
            matched anchors, zeros elsewhere.
    """
    matches = match_anchors(anchors, boxes, num_boxes, threshold)
    # A zero row appended so the gather is valid even with no boxes at all.
    boxes = tf.pad(boxes, [[0, 0], [0, 1], [0, 0]])  # [B, N+1, 4]
    matched_boxes = tf.gather(boxes, tf.maximum(matches, 0), batch_dims=1)  # [B, A, 4]
    targets = box_utils.encode(matched_boxes, anchors[None])
    targets = tf.where((matches >= 0)[:, :, None], targets, 0.0)
    return matches, targets
