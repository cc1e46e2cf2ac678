"""The FaceBoxes model: feature extractor, prediction heads, padding, predictions and loss.

Box convention: [ymin, xmin, ymax, xmax] normalized to [0, 1] of the unpadded image, both
for ground truth going in and for predicted boxes coming out. Internally images are
zero-padded on the bottom/right to multiples of 128, boxes are rescaled into the padded frame
for training and back out of it (then clipped) for inference.
"""
import math

import tensorflow as tf

from src import anchor_generator, box_utils, nms, training_target_creation
from src.losses_and_ohem import OHEMParams, distillation_losses, ohem_losses
from src.network import FeatureExtractor, glorot_uniform

# Initial class bias [background, face]: the prior that 1% of anchors are faces (upstream).
CLASS_BIAS_INIT = (math.log(0.99), math.log(0.01))
FEATURE_CHANNELS = (128, 256, 256)


class Head(tf.Module):
    """A 3x3 convolution with bias that predicts `depth` numbers per anchor."""

    def __init__(self, scope, in_channels, num_anchors, depth, bias_init, seed=None):
        super().__init__(name=scope.replace("/", "_"))
        self.scope = scope
        self.num_anchors = num_anchors
        self.depth = depth
        self.kernel = tf.Variable(glorot_uniform([3, 3, in_channels, num_anchors * depth], seed),
                                  name="weights")
        self.bias = tf.Variable(tf.tile(tf.constant(bias_init, tf.float32), [num_anchors]),
                                name="biases")

    def named_variables(self):
        return {f"{self.scope}/weights": self.kernel, f"{self.scope}/biases": self.bias}

    def __call__(self, x):
        """Args: x: float [B, h, w, C]. Returns: float [B, h * w * num_anchors, depth]."""
        y = tf.nn.bias_add(tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), 1, "SAME"),
                           tf.cast(self.bias, x.dtype))
        return tf.reshape(y, [tf.shape(y)[0], -1, self.depth])

    def logit_difference(self, x):
        """For a 2-class head, logit(face) - logit(background) per anchor, computed directly.

        The difference of two convolutions is one convolution with the difference kernel,
        so inference runs half the class-head filters and needs no slicing.

        Args:
            x: float [B, h, w, C].

        Returns:
            float [B, h * w * num_anchors].
        """
        assert self.depth == 2, "only 2-class heads have a logit difference"
        kernel = tf.reshape(self.kernel, self.kernel.shape[:3] + [self.num_anchors, 2])
        bias = tf.reshape(self.bias, [self.num_anchors, 2])
        y = tf.nn.bias_add(tf.nn.conv2d(x, tf.cast(kernel[..., 1] - kernel[..., 0], x.dtype), 1, "SAME"),
                           tf.cast(bias[:, 1] - bias[:, 0], x.dtype))
        return tf.reshape(y, [tf.shape(y)[0], -1])


def pad_images(images, value=0.0):
    """Pads images on the bottom/right to multiples of 128.

    Args:
        images: a tensor with shape [B, H, W, 3], float or uint8.
        value: the padding value (0, black, for images in [0, 1] and for uint8 pixels).

    Returns:
        padded: a tensor with shape [B, H', W', 3], images' dtype.
        scale: a float tensor with shape [2], (H / H', W / W'): a box in the unpadded frame
            times scale is the same box in the padded frame.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    padded_height, padded_width = anchor_generator.padded_size(height, width)
    padded = tf.pad(images, [[0, 0], [0, padded_height - height], [0, padded_width - width], [0, 0]],
                    constant_values=tf.cast(value, images.dtype))
    scale = tf.cast(tf.stack([height, width]), tf.float32) / tf.cast(
        tf.stack([padded_height, padded_width]), tf.float32)
    return padded, scale


class FaceBoxes(tf.Module):
    """FaceBoxes detector.

    Args:
        seed: optional int for deterministic initialisation.
    """

    def __init__(self, seed=None):
        super().__init__(name="faceboxes")
        self.feature_extractor = FeatureExtractor(seed=seed)
        s = (lambda k: None if seed is None else seed * 1000 + k)
        counts = anchor_generator.NUM_ANCHORS_PER_CELL
        self.box_heads = [
            Head(f"prediction_layers/box_encoding_predictor_{i}", c, k, 4, (0.0,) * 4, seed=s(i))
            for i, (c, k) in enumerate(zip(FEATURE_CHANNELS, counts))]
        self.class_heads = [
            Head(f"prediction_layers/class_predictor_{i}", c, k, 2, CLASS_BIAS_INIT, seed=s(10 + i))
            for i, (c, k) in enumerate(zip(FEATURE_CHANNELS, counts))]

    def named_variables(self):
        """Dict from upstream checkpoint name to variable, for every variable of the model."""
        names = self.feature_extractor.named_variables()
        for head in self.box_heads + self.class_heads:
            names.update(head.named_variables())
        return names

    def regularized_kernels(self):
        """Every convolution kernel (feature extractor and heads), for L2 weight decay."""
        return [layer.kernel for layer in self.feature_extractor.layers] + [
            head.kernel for head in self.box_heads + self.class_heads]

    def raw_outputs(self, images, training):
        """Runs the network on padded images.

        Args:
            images: a float tensor with shape [B, H, W, 3] in [0, 1], H and W multiples of 128.
            training: bool.

        Returns:
            box_encodings: a float tensor with shape [B, A, 4].
            class_logits: a float tensor with shape [B, A, 2].
            anchors: a float tensor with shape [A, 4], normalized to the padded image.
            num_anchors_per_level: a list of three ints or int32 scalars.
        """
        feature_maps = self.feature_extractor(images, training)
        box_encodings = tf.concat([h(f) for h, f in zip(self.box_heads, feature_maps)], axis=1)
        class_logits = tf.concat([h(f) for h, f in zip(self.class_heads, feature_maps)], axis=1)
        shape = tf.shape(images)
        anchors, counts = anchor_generator.generate_anchors(shape[1], shape[2])
        return box_encodings, class_logits, anchors, counts

    def predictions(self, images, score_threshold=nms.SCORE_THRESHOLD, iou_threshold=nms.IOU_THRESHOLD,
                    max_boxes=nms.MAX_BOXES):
        """Detected faces after NMS.

        Args:
            images: a float tensor with shape [B, H, W, 3] in [0, 1], any H and W.
            score_threshold, iou_threshold: floats, NMS settings.
            max_boxes: int, the output size per image.

        Returns:
            a dict: 'boxes' float32 [B, max_boxes, 4] normalized to the unpadded image and
            clipped to [0, 1]; 'scores' float32 [B, max_boxes]; 'num_boxes' int32 [B].
        """
        padded, scale = pad_images(2.0 * images - 1.0, value=-1.0)  # -1 is the image of black
        return self._detect(padded, scale, "normalized", score_threshold, iou_threshold, max_boxes)

    def predictions_from_uint8(self, images, score_threshold=nms.SCORE_THRESHOLD, iou_threshold=nms.IOU_THRESHOLD,
                               max_boxes=nms.MAX_BOXES,
                               compute_dtype=tf.float32):
        """`predictions` for uint8 images [B, H, W, 3].

        The pixels are padded as uint8 (0, black), cast once to compute_dtype and go into
        conv1 unnormalized: the map to [-1, 1] is folded into conv1's kernel and bias
        (FeatureExtractor input_range='uint8'), which saves two passes over the image.

        compute_dtype: the network's dtype (tf.float32, or tf.bfloat16 for faster CPU
        inference where bfloat16 matrix units exist); decoding and NMS stay float32.
        """
        padded, scale = pad_images(images, value=0)
        return self._detect(tf.cast(padded, compute_dtype), scale, "uint8", score_threshold, iou_threshold,
                            max_boxes)

    def _detect(self, padded, scale, input_range, score_threshold, iou_threshold, max_boxes):
        """Inference on padded images (see FeatureExtractor for input_range); see `predictions`."""
        feature_maps = self.feature_extractor(padded, training=False, input_range=input_range)
        box_encodings = tf.concat([h(f) for h, f in zip(self.box_heads, feature_maps)], axis=1)
        face_logits = tf.concat([h.logit_difference(f) for h, f in zip(self.class_heads, feature_maps)],
                                axis=1)  # [B, A]
        shape = tf.shape(padded)
        # Anchors straight in the unpadded frame, decoded in full-width ops (box_utils).
        centres, sizes = anchor_generator.anchor_centres_and_sizes(shape[1], shape[2], scale)
        boxes = box_utils.decode_with_centres_and_sizes(tf.cast(box_encodings, tf.float32), centres, sizes)
        boxes = box_utils.clip_to_window(boxes)  # [B, A, 4]
        # The face probability of the 2-class softmax is sigmoid(face - background logit).
        scores = tf.sigmoid(tf.cast(face_logits, tf.float32))  # [B, A]
        boxes, scores, num_boxes = nms.batch_non_max_suppression(
            boxes, scores, score_threshold, iou_threshold, max_boxes)
        return {"boxes": boxes, "scores": scores, "num_boxes": num_boxes}

    def loss(self, images, boxes, num_boxes, ohem_params=OHEMParams(),
             matching_threshold=training_target_creation.MATCHING_THRESHOLD, ignore_boxes=None,
             num_ignore=None, teacher=None):
        """Training losses with OHEM.

        Args:
            images: a float tensor with shape [B, H, W, 3] in [0, 1].
            boxes: a float tensor with shape [B, N, 4], normalized to the unpadded image,
                zero padded after num_boxes[b].
            num_boxes: an int32 tensor with shape [B].
            ohem_params: an OHEMParams.
            matching_threshold: float.
            ignore_boxes: an optional float tensor with shape [B, M, 4], ignore regions
                normalized to the unpadded image, zero padded after num_ignore[b].
            num_ignore: an int32 tensor with shape [B] (required with ignore_boxes).
            teacher: an optional FaceBoxes run in inference mode on the same padded images;
                adds the `distillation_losses` towards its outputs.

        Returns:
            a dict: 'localization_loss', 'classification_loss' (float scalars, before loss
            weights), 'num_matches' (int32 scalar), 'num_mined_positives',
            'num_mined_negatives' (int32 [B]), 'num_ignored' (int32 scalar, ignored anchors
            in the batch), 'matches_per_level' (int32 [3], matched anchors
            in the batch per feature map); with a teacher also
            'distillation_classification_loss' and 'distillation_localization_loss' (float
            scalars, before the distillation weight).
        """
        padded, scale = pad_images(images)
        boxes = tf.convert_to_tensor(boxes, tf.float32) * tf.tile(scale, [2])
        if ignore_boxes is not None:
            ignore_boxes = tf.convert_to_tensor(ignore_boxes, tf.float32) * tf.tile(scale, [2])
        box_encodings, class_logits, anchors, counts = self.raw_outputs(padded, training=True)
        matches, targets = training_target_creation.create_targets(
            anchors, boxes, num_boxes, matching_threshold, ignore_boxes, num_ignore)
        losses = ohem_losses(box_encodings, class_logits, anchors, matches, targets, ohem_params)
        if teacher is not None:
            teacher_encodings, teacher_logits, _, _ = teacher.raw_outputs(padded, training=False)
            normalizer = tf.maximum(tf.cast(losses["num_matches"], tf.float32), 1.0)
            losses.update(distillation_losses(box_encodings, class_logits, teacher_encodings,
                                              teacher_logits, normalizer))
        positives = tf.reduce_sum(tf.cast(matches >= 0, tf.int32), axis=0)  # [A]
        losses["num_ignored"] = tf.reduce_sum(tf.cast(matches == training_target_creation.IGNORED, tf.int32))
        losses["matches_per_level"] = tf.stack(
            [tf.reduce_sum(p) for p in tf.split(positives, tf.stack(counts))])
        return losses
