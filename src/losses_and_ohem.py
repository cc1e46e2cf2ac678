"""Localization and classification losses with online hard example mining (OHEM).

Box convention: [ymin, xmin, ymax, xmax], normalized; encodings are [ty, tx, th, tw].

Mining (the upstream's src/losses_and_ohem.py, values from its config.json), per image: anchors are ranked by the loss to
mine ('classification', or 'both' = classification + localization); up to `num_hard_examples`
are taken with a non-maximum suppression at `nms_threshold` over the decoded predicted boxes
(so near-duplicate anchors are not all picked); among them every positive is kept, and the
highest-loss negatives up to max(min_negatives_per_image, max_negatives_per_positive *
positives). The mined losses are summed over the batch and divided by the number of matched
anchors in the batch (at least 1) by the caller.

Ignored anchors (matches == -2, see training_target_creation) are neither positives nor
negatives: they are never mined and add no loss.
"""
import tensorflow as tf

from src import box_utils
from src.config import OHEMParams  # noqa: F401  (the settings' one home; re-exported here)
from src.training_target_creation import IGNORED


def localization_loss(predictions, targets, weights):
    """Smooth L1 (beta 1) summed over the 4 coordinates.

    Args:
        predictions: a float tensor with shape [B, A, 4].
        targets: a float tensor with shape [B, A, 4].
        weights: a float tensor with shape [B, A], 1 for positives and 0 elsewhere.

    Returns:
        a float tensor with shape [B, A].
    """
    diff = tf.abs(predictions - targets)
    per_coordinate = tf.where(diff < 1.0, 0.5 * tf.square(diff), diff - 0.5)
    return weights * tf.reduce_sum(per_coordinate, axis=-1)


def classification_loss(logits, labels):
    """Softmax cross-entropy over 2 classes (0 background, 1 face).

    Args:
        logits: a float tensor with shape [B, A, 2].
        labels: an int32 tensor with shape [B, A].

    Returns:
        a float tensor with shape [B, A].
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def mine_hard_examples(loc_losses, cls_losses, decoded_boxes, is_positive, params, is_ignored=None):
    """Selects hard examples per image.

    Args:
        loc_losses: a float tensor with shape [B, A] (zero for negatives).
        cls_losses: a float tensor with shape [B, A].
        decoded_boxes: a float tensor with shape [B, A, 4], the predicted boxes.
        is_positive: a bool tensor with shape [B, A].
        params: an OHEMParams.
        is_ignored: an optional bool tensor with shape [B, A]: anchors that are never mined
            (their mining loss is taken as -1, below every real loss, and they are excluded
            from the negatives).

    Returns:
        selected: a bool tensor with shape [B, A], the mined anchors.
        num_positives: an int32 tensor with shape [B], mined positives per image.
        num_negatives: an int32 tensor with shape [B], mined negatives per image.
    """
    if params.loss_to_use == "classification":
        mined_loss = cls_losses
    elif params.loss_to_use == "both":
        mined_loss = cls_losses + loc_losses
    else:
        raise ValueError(f"loss_to_use must be 'classification' or 'both', got {params.loss_to_use!r}")
    if is_ignored is not None:
        mined_loss = tf.where(is_ignored, -1.0, mined_loss)
    num_anchors = tf.shape(cls_losses)[1]
    # Batched NMS; indices come in descending loss order, padded with zeros.
    indices, num_valid = tf.image.non_max_suppression_padded(
        tf.stop_gradient(decoded_boxes), tf.stop_gradient(mined_loss),
        max_output_size=params.num_hard_examples, iou_threshold=params.nms_threshold,
        pad_to_max_output_size=True)  # [B, K], [B]
    num_kept = tf.shape(indices)[1]
    in_range = tf.sequence_mask(num_valid, num_kept)  # [B, K]
    positive = tf.logical_and(tf.gather(is_positive, indices, batch_dims=1), in_range)  # [B, K]
    negative = tf.logical_and(tf.logical_not(positive), in_range)
    if is_ignored is not None:
        negative = tf.logical_and(negative, tf.logical_not(tf.gather(is_ignored, indices, batch_dims=1)))
    num_positives = tf.reduce_sum(tf.cast(positive, tf.int32), axis=1)  # [B]
    max_negatives = tf.maximum(
        params.min_negatives_per_image,
        tf.cast(params.max_negatives_per_positive * tf.cast(num_positives, tf.float32), tf.int32))
    negative_rank = tf.cumsum(tf.cast(negative, tf.int32), axis=1)  # 1-based among negatives
    negative = tf.logical_and(negative, negative_rank <= max_negatives[:, None])
    keep = tf.logical_or(positive, negative)  # [B, K]
    # Scatter the kept indices back to an anchor mask.
    batch_index = tf.broadcast_to(tf.range(tf.shape(indices)[0])[:, None], tf.shape(indices))
    scatter_index = tf.stack([batch_index, indices], axis=-1)  # [B, K, 2]
    selected = tf.scatter_nd(scatter_index, tf.cast(keep, tf.int32),
                             tf.stack([tf.shape(indices)[0], num_anchors])) > 0  # [B, A]
    num_negatives = tf.reduce_sum(tf.cast(negative, tf.int32), axis=1)
    return selected, num_positives, num_negatives


def ohem_losses(box_encodings, class_logits, anchors, matches, regression_targets, params):
    """Mined localization and classification losses of a batch.

    Args:
        box_encodings: a float tensor with shape [B, A, 4], predicted encodings.
        class_logits: a float tensor with shape [B, A, 2].
        anchors: a float tensor with shape [A, 4].
        matches: an int32 tensor with shape [B, A] (-1 background, IGNORED = -2 ignored).
        regression_targets: a float tensor with shape [B, A, 4].
        params: an OHEMParams.

    Returns:
        a dict of scalars/tensors: 'localization_loss' and 'classification_loss' (float, summed
        over mined anchors and divided by max(1, matched anchors in the batch)),
        'num_matches' (int32 scalar), 'num_mined_positives' and 'num_mined_negatives' (int32 [B]).
    """
    box_encodings = tf.cast(box_encodings, tf.float32)
    class_logits = tf.cast(class_logits, tf.float32)
    is_positive = matches >= 0  # [B, A]
    is_ignored = matches == IGNORED  # [B, A]
    weights = tf.cast(is_positive, tf.float32)
    loc = localization_loss(box_encodings, regression_targets, weights)  # [B, A]
    cls = classification_loss(class_logits, tf.cast(is_positive, tf.int32))  # [B, A]
    decoded = box_utils.decode(box_encodings, anchors[None])  # [B, A, 4]
    selected, num_pos, num_neg = mine_hard_examples(loc, cls, decoded, is_positive, params, is_ignored)
    selected = tf.cast(selected, tf.float32)
    num_matches = tf.reduce_sum(tf.cast(is_positive, tf.int32))
    normalizer = tf.maximum(tf.cast(num_matches, tf.float32), 1.0)
    return {
        "localization_loss": tf.reduce_sum(loc * selected) / normalizer,
        "classification_loss": tf.reduce_sum(cls * selected) / normalizer,
        "num_matches": num_matches,
        "num_mined_positives": num_pos,
        "num_mined_negatives": num_neg,
    }


def distillation_losses(box_encodings, class_logits, teacher_encodings, teacher_logits, normalizer):
    """Losses that pull a model's raw outputs towards a teacher's (knowledge distillation).

    Fine-tuning from a model's weights on new data, these keep what the starting model knows
    where the new labels are silent: every anchor, not only the mined ones, is compared with
    the teacher's answer on the same (augmented) images.

    Args:
        box_encodings: a float tensor with shape [B, A, 4], the model's encodings.
        class_logits: a float tensor with shape [B, A, 2], the model's logits (background, face).
        teacher_encodings: a float tensor with shape [B, A, 4] (no gradient flows into it).
        teacher_logits: a float tensor with shape [B, A, 2] (no gradient flows into it).
        normalizer: a float scalar, the divisor of the sums (the OHEM losses' one: the matched
            anchors of the batch, at least 1), so that the weights compare with theirs.

    Returns:
        a dict of float scalars:
        'distillation_classification_loss': KL(teacher || model) of the two-class softmax,
            summed over every anchor (0 where the model agrees with the teacher);
        'distillation_localization_loss': smooth L1 between the encodings, each anchor weighted
            by the teacher's face probability (boxes matter where the teacher sees a face).
    """
    teacher_logits = tf.stop_gradient(tf.cast(teacher_logits, tf.float32))
    teacher_encodings = tf.stop_gradient(tf.cast(teacher_encodings, tf.float32))
    class_logits = tf.cast(class_logits, tf.float32)
    box_encodings = tf.cast(box_encodings, tf.float32)
    teacher_log_p = tf.nn.log_softmax(teacher_logits, axis=-1)  # [B, A, 2]
    log_p = tf.nn.log_softmax(class_logits, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_p) * (teacher_log_p - log_p), axis=-1)  # [B, A]
    teacher_face = tf.exp(teacher_log_p[..., 1])  # [B, A]
    loc = localization_loss(box_encodings, teacher_encodings, teacher_face)  # [B, A]
    return {
        "distillation_classification_loss": tf.reduce_sum(kl) / normalizer,
        "distillation_localization_loss": tf.reduce_sum(loc) / normalizer,
    }
