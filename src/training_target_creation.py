"""Anchor <-> ground-truth matching and regression targets.

Box convention: [ymin, xmin, ymax, xmax], normalized (anchors and ground truth in the same
frame: the padded image).

Rule (the upstream's src/training_target_creation.py, threshold from its config.json): each anchor takes its best ground-truth box if that
IoU >= 0.35, else it is background; then every ground-truth box is force-matched to one anchor,
overriding the threshold match.

Beyond the upstream, which force-matched each box to its argmax anchor and so lost a face
whenever two faces shared that anchor, forced matches here are distinct: ground-truth boxes
are processed from the smallest area to the largest (small faces have the fewest good
anchors), and each takes its best-IoU anchor among those not already force-matched to an
earlier box. So every ground-truth box with positive area keeps at least one anchor.

Ignore regions (this project's addition; faces nobody is sure of, such as a teacher's
low-confidence boxes or WIDER's ``invalid`` faces): an anchor that is not matched to a face
but overlaps an ignore region (IoU >= IGNORE_IOU_THRESHOLD, or its centre inside the region)
is IGNORED: neither positive nor negative, so a doubtful face is never trained as
background. Matches to faces always win over ignore regions.
"""
import tensorflow as tf

from src import box_utils

# IoU above which an anchor is a positive (FaceBoxes paper, Sec. 3.4; upstream config).
MATCHING_THRESHOLD = 0.35
# An unmatched anchor with at least this IoU with an ignore region (or its centre inside
# one) is ignored. Below the matching threshold, so anchors that would have been positives
# for that face are all covered.
IGNORE_IOU_THRESHOLD = 0.3
# Values of `matches` that are not ground-truth indices.
BACKGROUND = -1
IGNORED = -2


def ignored_anchors(anchors, ignore_boxes, num_ignore):
    """Which anchors touch an ignore region (IoU >= IGNORE_IOU_THRESHOLD or centre inside).

    Args:
        anchors: a float tensor with shape [A, 4].
        ignore_boxes: a float tensor with shape [B, M, 4], zero padded after num_ignore[b].
        num_ignore: an int32 tensor with shape [B].

    Returns:
        a bool tensor with shape [B, A].
    """
    ignore_boxes = tf.convert_to_tensor(ignore_boxes, tf.float32)
    valid = tf.sequence_mask(num_ignore, tf.shape(ignore_boxes)[1])  # [B, M]
    overlaps = box_utils.iou(ignore_boxes, anchors)  # [B, M, A]
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2.0  # [A, 2]
    inside = tf.logical_and(
        tf.reduce_all(centres[None, None] >= ignore_boxes[:, :, None, :2], axis=-1),
        tf.reduce_all(centres[None, None] <= ignore_boxes[:, :, None, 2:], axis=-1))  # [B, M, A]
    hit = tf.logical_or(overlaps >= IGNORE_IOU_THRESHOLD, inside)
    return tf.reduce_any(tf.logical_and(hit, valid[:, :, None]), axis=1)


def match_anchors(anchors, boxes, num_boxes, threshold=MATCHING_THRESHOLD, ignore_boxes=None,
                  num_ignore=None):
    """Matches anchors to ground-truth boxes for a batch.

    Args:
        anchors: a float tensor with shape [A, 4].
        boxes: a float tensor with shape [B, N, 4], zero padded after num_boxes[b] boxes.
        num_boxes: an int32 tensor with shape [B].
        threshold: float, the IoU of a threshold match.
        ignore_boxes: an optional float tensor with shape [B, M, 4], ignore regions, zero
            padded after num_ignore[b].
        num_ignore: an int32 tensor with shape [B] (required with ignore_boxes).

    Returns:
        an int32 tensor with shape [B, A]: the index of the matched ground-truth box in
        boxes[b], BACKGROUND (-1), or IGNORED (-2).
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
    matches = tf.where(forced >= 0, forced, matches)
    if ignore_boxes is not None:
        ignored = ignored_anchors(anchors, ignore_boxes, num_ignore)
        matches = tf.where(tf.logical_and(matches < 0, ignored), IGNORED, matches)
    return matches


def create_targets(anchors, boxes, num_boxes, threshold=MATCHING_THRESHOLD, ignore_boxes=None,
                   num_ignore=None):
    """Matches and regression targets for a batch.

    Args:
        anchors: a float tensor with shape [A, 4].
        boxes: a float tensor with shape [B, N, 4], zero padded.
        num_boxes: an int32 tensor with shape [B].
        threshold: float, the IoU of a threshold match.
        ignore_boxes, num_ignore: optional ignore regions, see `match_anchors`.

    Returns:
        matches: an int32 tensor with shape [B, A], ground-truth index, BACKGROUND (-1) or
            IGNORED (-2).
        regression_targets: a float tensor with shape [B, A, 4], encoded [ty, tx, th, tw] for
            matched anchors, zeros elsewhere.
    """
    matches = match_anchors(anchors, boxes, num_boxes, threshold, ignore_boxes, num_ignore)
    # A zero row appended so the gather is valid even with no boxes at all.
    boxes = tf.pad(boxes, [[0, 0], [0, 1], [0, 0]])  # [B, N+1, 4]
    matched_boxes = tf.gather(boxes, tf.maximum(matches, 0), batch_dims=1)  # [B, A, 4]
    targets = box_utils.encode(matched_boxes, anchors[None])
    targets = tf.where((matches >= 0)[:, :, None], targets, 0.0)
    return matches, targets
