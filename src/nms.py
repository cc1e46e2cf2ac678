"""Batched non-maximum suppression with fixed-size padded outputs, in the upstream's order.

Box convention: [ymin, xmin, ymax, xmax], normalized.

Each image goes through `tf.image.non_max_suppression` (the NonMaxSuppressionV3 op), as in
the upstream's `batch_non_max_suppression` (its `nms.py`, one map_fn over the batch). That op
keeps the boxes scoring strictly above `score_threshold` (measured: a score equal to it is
dropped) and, among boxes with equal scores, takes the lower anchor index first. A
well-trained model saturates many scores at exactly 1.0, so tie order decides which of
overlapping boxes survives: the single-op `combined_non_max_suppression` used before broke
ties differently (only 0-23 of 200 rows came out in the upstream's order on saturated
scores) and kept scores equal to the threshold.
"""
import tensorflow as tf

# Inference defaults: the upstream config.json's "postprocessing" values (its evaluation and
# export used them; our recipes repeat them under "postprocessing").
SCORE_THRESHOLD = 0.05
IOU_THRESHOLD = 0.3
MAX_BOXES = 200


def batch_non_max_suppression(boxes, scores, score_threshold, iou_threshold, max_boxes):
    """Greedy NMS per image.

    Args:
        boxes: a float tensor with shape [B, A, 4].
        scores: a float tensor with shape [B, A], face probabilities.
        score_threshold: float, boxes scoring at or below it are discarded first (the
            upstream op keeps only scores strictly above it).
        iou_threshold: float, a box overlapping a kept higher-scoring box above this is removed.
        max_boxes: int, the output size per image.

    Returns:
        boxes: a float tensor with shape [B, max_boxes, 4], in descending score order (ties:
            lower anchor index first), zero padded.
        scores: a float tensor with shape [B, max_boxes], zero padded.
        num_boxes: an int32 tensor with shape [B], the number of valid rows.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)

    def one_image(inputs):
        image_boxes, image_scores = inputs  # [A, 4], [A]
        keep = tf.image.non_max_suppression(image_boxes, image_scores, max_boxes,
                                            iou_threshold=iou_threshold,
                                            score_threshold=score_threshold)  # [K]
        count = tf.shape(keep)[0]
        padding = max_boxes - count
        kept_boxes = tf.pad(tf.gather(image_boxes, keep), [[0, padding], [0, 0]])
        kept_scores = tf.pad(tf.gather(image_scores, keep), [[0, padding]])
        return kept_boxes, kept_scores, count

    out_boxes, out_scores, num_boxes = tf.map_fn(
        one_image, (boxes, scores),
        fn_output_signature=(tf.TensorSpec([max_boxes, 4], tf.float32),
                             tf.TensorSpec([max_boxes], tf.float32),
                             tf.TensorSpec([], tf.int32)))
    return out_boxes, out_scores, num_boxes
