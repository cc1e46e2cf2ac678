"""Batched non-maximum suppression with fixed-size padded outputs.

Box convention: [ymin, xmin, ymax, xmax], normalized.

One `CombinedNonMaxSuppression` op handles the whole batch (a single class), so batch 1
inference has no per-image map_fn or TensorArray in its graph.
"""
import tensorflow as tf


def batch_non_max_suppression(boxes, scores, score_threshold, iou_threshold, max_boxes):
    """Greedy NMS per image.

    Args:
        boxes: a float tensor with shape [B, A, 4].
        scores: a float tensor with shape [B, A], face probabilities.
        score_threshold: float, boxes scoring below it are discarded first.
        iou_threshold: float, a box overlapping a kept higher-scoring box above this is removed.
        max_boxes: int, the output size per image.

    Returns:
        boxes: a float tensor with shape [B, max_boxes, 4], in descending score order, zero padded.
        scores: a float tensor with shape [B, max_boxes], zero padded.
        num_boxes: an int32 tensor with shape [B], the number of valid rows.
    """
    nmsed_boxes, nmsed_scores, _, num_boxes = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], scores[:, :, None],
        max_output_size_per_class=max_boxes, max_total_size=max_boxes,
        iou_threshold=iou_threshold, score_threshold=score_threshold,
        pad_per_class=False, clip_boxes=False)
    return nmsed_boxes, nmsed_scores, tf.cast(num_boxes, tf.int32)
