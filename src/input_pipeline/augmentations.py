"""Training augmentations of FaceBoxes, in the upstream order and with its parameters.

Box convention: every box here is ``[ymin, xmin, ymax, xmax]`` normalized to [0, 1] of the
image it belongs to (float32 tensors of shape [N, 4], N may be 0). Images are float32
[H, W, 3] with values in [0, 1].

The upstream order (its src/input_pipeline/pipeline.py, random_image_crop.py and
other_augmentations.py) is: random crop (prob 0.9),
resize to the training size, colour distortions (prob 0.45) then grayscale (prob 0.05),
per-pixel value scaling (prob 0.2), box jitter, horizontal flip (prob 0.5).

Randomness is stateless throughout: every function takes a ``seed`` (int32/int64 tensor of
shape [2]) and derives what it needs from it with ``tf.random.experimental.stateless_split``,
so the same seed gives the same result. ``augment`` splits one per-example seed into the
per-step seeds with ``split_step_seeds``; the input pipeline uses the same split so that its
fused decode-and-crop path makes exactly the choices ``augment`` would make.

Probability branches use ``tf.cond`` so that the skipped work is not computed.

Ignore regions (float32 [M, 4], same convention; faces nobody is sure of) ride along with
the geometric steps: they never steer the crop window, are kept when they intersect it at
all (clipped to it), are not jittered, and are flipped with the image.
"""
import collections

import tensorflow as tf

# Random crop, as tf.image.sample_distorted_bounding_box samples it (upstream values).
CROP_PROBABILITY = 0.9
CROP_MIN_OBJECT_COVERED = 0.9
CROP_ASPECT_RATIO_RANGE = (0.93, 1.07)
CROP_AREA_RANGE = (0.4, 0.9)
CROP_MAX_ATTEMPTS = 100
# A box is kept after the crop only if at least this fraction of its own area lies inside
# the window (upstream overlap threshold).
CROP_MIN_BOX_OVERLAP = 0.4

# Colour distortions (upstream values).
COLOUR_PROBABILITY = 0.45
BRIGHTNESS_MAX_DELTA = 0.1
CONTRAST_RANGE = (0.8, 1.2)
HUE_MAX_DELTA = 0.1
SATURATION_RANGE = (0.8, 1.2)
GRAYSCALE_PROBABILITY = 0.05

# Independent per-pixel-value scaling (upstream values).
PIXEL_SCALE_PROBABILITY = 0.2
PIXEL_SCALE_RANGE = (0.85, 1.15)

# Each box corner moves by up to this fraction of the box height (y) or width (x).
BOX_JITTER_RATIO = 0.01

FLIP_PROBABILITY = 0.5

# Guards divisions by a box area or window size.
_EPSILON = 1e-8

StepSeeds = collections.namedtuple(
    'StepSeeds', ['crop', 'colour', 'pixel_scale', 'jitter', 'flip'])
StepSeeds.__doc__ = """Per-step stateless seeds, each an int tensor of shape [2]."""


def split_step_seeds(seed):
    """Splits one per-example seed into one seed per augmentation step.

    Args:
        seed: an int32 or int64 tensor of shape [2].

    Returns:
        a StepSeeds of int tensors of shape [2] (same dtype as ``seed``).
    """
    seeds = tf.random.experimental.stateless_split(seed, num=len(StepSeeds._fields))
    return StepSeeds(*tf.unstack(seeds))


def _coin(probability, seed):
    """A scalar bool tensor that is True with the given probability (stateless)."""
    return tf.random.stateless_uniform([], seed=seed) < probability


def _check_boxes(boxes):
    """Raises ValueError unless ``boxes`` has static shape [N, 4] (N may be unknown)."""
    if boxes.shape.rank != 2 or boxes.shape[-1] != 4:
        raise ValueError(f'boxes must have shape [N, 4], got {boxes.shape}')


def _check_image(image):
    """Raises ValueError unless ``image`` has static rank 3 with 3 channels."""
    if image.shape.rank != 3 or image.shape[-1] not in (3, None):
        raise ValueError(f'image must have shape [H, W, 3], got {image.shape}')


# ---------------------------------------------------------------------------------------
# 1. Random crop.
# ---------------------------------------------------------------------------------------

def sample_crop_window(image_shape, boxes, seed):
    """Samples the random crop window, or the whole image when the crop is skipped.

    The crop happens with probability CROP_PROBABILITY; its window is drawn as
    ``tf.image.stateless_sample_distorted_bounding_box`` draws it with the ground-truth boxes
    as ``bounding_boxes`` (so at least CROP_MIN_OBJECT_COVERED of one box's area lies inside
    it, or the whole image is returned after CROP_MAX_ATTEMPTS failures; an image without
    boxes uses the whole image as its one box, which with these area limits means it is
    never cropped).

    This function only needs the image shape, so the pipeline can call it on the JPEG
    header's shape and crop while decoding.

    Args:
        image_shape: an int32 tensor of shape [3] (height, width, channels) or [2].
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        seed: an int tensor of shape [2].

    Returns:
        crop_window: an int32 tensor of shape [4], the pixel window as
            [offset_y, offset_x, height, width] (the argument order of
            ``tf.io.decode_and_crop_jpeg``).
        window: a float32 tensor of shape [4], the same window as normalized
            [ymin, xmin, ymax, xmax] of the image; [0, 0, 1, 1] when not cropped.
        cropped: a bool scalar tensor, whether the crop was applied.
    """
    _check_boxes(boxes)
    image_shape = tf.cast(image_shape, tf.int32)
    height, width = image_shape[0], image_shape[1]
    decision_seed, window_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2))
    cropped = _coin(CROP_PROBABILITY, decision_seed)

    def sample():
        # The sampler rejects coordinates outside [0, 1]; stored boxes are valid already,
        # this only guards float round-off.
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            image_size=tf.stack([height, width, 3]),
            bounding_boxes=tf.clip_by_value(boxes, 0.0, 1.0)[tf.newaxis],
            seed=window_seed,
            min_object_covered=CROP_MIN_OBJECT_COVERED,
            aspect_ratio_range=CROP_ASPECT_RATIO_RANGE,
            area_range=CROP_AREA_RANGE,
            max_attempts=CROP_MAX_ATTEMPTS,
            use_image_if_no_bounding_boxes=True)
        return tf.stack([begin[0], begin[1], size[0], size[1]])

    def whole_image():
        return tf.stack([0, 0, height, width])

    crop_window = tf.cond(cropped, sample, whole_image)
    # The normalized window is derived from the integer pixel window so that boxes and
    # pixels agree exactly.
    scale = tf.cast(tf.stack([height, width, height, width]), tf.float32)
    corners = tf.concat([crop_window[:2], crop_window[:2] + crop_window[2:]], axis=0)
    window = tf.cast(corners, tf.float32) / scale
    return crop_window, window, cropped


def crop_boxes_to_window(boxes, window, min_overlap=CROP_MIN_BOX_OVERLAP):
    """Applies the crop rules to boxes: drop, clip, re-normalize to the window.

    A box is dropped when it lies completely outside the window, or when less than
    ``min_overlap`` of its own area lies inside the window (with a positive ``min_overlap``
    a box of zero area is dropped too). Kept boxes are clipped to the window and expressed
    in its frame.

    Args:
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        window: a float32 tensor of shape [4], normalized ymin, xmin, ymax, xmax.
        min_overlap: float, the fraction of a box's area that must lie inside the window
            (CROP_MIN_BOX_OVERLAP for faces, 0 for ignore regions).

    Returns:
        new_boxes: a float32 tensor of shape [M, 4], M <= N, normalized to the window.
        keep: a bool tensor of shape [N], which input boxes survive (in order).
    """
    _check_boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    w_ymin, w_xmin, w_ymax, w_xmax = tf.unstack(window)
    completely_outside = ((ymin >= w_ymax) | (ymax <= w_ymin)
                          | (xmin >= w_xmax) | (xmax <= w_xmin))
    inter_h = tf.maximum(tf.minimum(ymax, w_ymax) - tf.maximum(ymin, w_ymin), 0.0)
    inter_w = tf.maximum(tf.minimum(xmax, w_xmax) - tf.maximum(xmin, w_xmin), 0.0)
    area = tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)
    overlap = inter_h * inter_w / tf.maximum(area, _EPSILON)
    keep = tf.logical_not(completely_outside) & (overlap >= min_overlap)

    kept = tf.boolean_mask(boxes, keep)
    origin = tf.stack([w_ymin, w_xmin, w_ymin, w_xmin])
    extent = tf.stack([w_ymax - w_ymin, w_xmax - w_xmin] * 2)
    clipped = tf.clip_by_value(kept, tf.stack([w_ymin, w_xmin] * 2),
                               tf.stack([w_ymax, w_xmax] * 2))
    new_boxes = tf.clip_by_value((clipped - origin) / tf.maximum(extent, _EPSILON), 0.0, 1.0)
    return new_boxes, keep


def random_crop(image, boxes, seed):
    """Augmentation 1: the upstream random crop of a decoded image.

    Args:
        image: a float32 tensor of shape [H, W, 3], values in [0, 1].
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        seed: an int tensor of shape [2].

    Returns:
        image: a float32 tensor of shape [h, w, 3], the crop.
        boxes: a float32 tensor of shape [M, 4], the surviving boxes normalized to the crop.
        window: a float32 tensor of shape [4], the crop window as normalized
            [ymin, xmin, ymax, xmax] of the input image ([0, 0, 1, 1] when not cropped).
    """
    _check_image(image)
    crop_window, window, cropped = sample_crop_window(tf.shape(image), boxes, seed)
    boxes = tf.cond(cropped, lambda: crop_boxes_to_window(boxes, window)[0], lambda: boxes)
    return crop_image(image, crop_window, cropped), boxes, window


def crop_image(image, crop_window, cropped):
    """The crop window's pixels (``sample_crop_window``'s [y, x, height, width]) when
    `cropped`, else the image as it is. image: float32 [H, W, 3] -> float32 [h, w, 3]."""
    return tf.cond(cropped, lambda: tf.slice(image, tf.stack([crop_window[0], crop_window[1], 0]),
                                             tf.stack([crop_window[2], crop_window[3], -1])),
                   lambda: image)


# ---------------------------------------------------------------------------------------
# 2. Resize.
# ---------------------------------------------------------------------------------------

def resize(image, image_size):
    """Augmentation 2: bilinear resize to the training size (boxes are unaffected).

    Args:
        image: a float32 tensor of shape [H, W, 3].
        image_size: a pair of ints (height, width).

    Returns:
        a float32 tensor of static shape [height, width, 3].
    """
    height, width = image_size
    resized = tf.image.resize(image, [height, width], method=tf.image.ResizeMethod.BILINEAR)
    resized.set_shape([height, width, 3])
    return resized


# ---------------------------------------------------------------------------------------
# 3. Colour distortions and grayscale.
# ---------------------------------------------------------------------------------------

def random_colour_distortions(image, seed):
    """Augmentation 3: random colour distortions then random grayscale.

    With probability COLOUR_PROBABILITY: brightness, contrast, hue and saturation (in that
    order, each with a random strength), clipped to [0, 1]. Then, independently, with
    probability GRAYSCALE_PROBABILITY the image becomes gray (three equal channels).

    Args:
        image: a float32 tensor of shape [H, W, 3], values in [0, 1].
        seed: an int tensor of shape [2].

    Returns:
        a float32 tensor of shape [H, W, 3], values in [0, 1].
    """
    _check_image(image)
    (colour_seed, brightness_seed, contrast_seed, hue_seed, saturation_seed,
     gray_seed) = tf.unstack(tf.random.experimental.stateless_split(seed, num=6))

    def distort():
        out = tf.image.stateless_random_brightness(image, BRIGHTNESS_MAX_DELTA,
                                                   seed=brightness_seed)
        out = tf.image.stateless_random_contrast(out, *CONTRAST_RANGE, seed=contrast_seed)
        out = tf.image.stateless_random_hue(out, HUE_MAX_DELTA, seed=hue_seed)
        out = tf.image.stateless_random_saturation(out, *SATURATION_RANGE,
                                                   seed=saturation_seed)
        return tf.clip_by_value(out, 0.0, 1.0)

    image = tf.cond(_coin(COLOUR_PROBABILITY, colour_seed), distort, lambda: image)

    def to_gray():
        return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))

    return tf.cond(_coin(GRAYSCALE_PROBABILITY, gray_seed), to_gray, lambda: image)


# ---------------------------------------------------------------------------------------
# 4. Per-pixel value scaling.
# ---------------------------------------------------------------------------------------

def random_pixel_value_scale(image, seed):
    """Augmentation 4: with probability PIXEL_SCALE_PROBABILITY multiply every value.

    Each of the H * W * 3 values is multiplied by its own factor drawn from
    U(PIXEL_SCALE_RANGE), then the image is clipped to [0, 1].

    Args:
        image: a float32 tensor of shape [H, W, 3], values in [0, 1].
        seed: an int tensor of shape [2].

    Returns:
        a float32 tensor of shape [H, W, 3], values in [0, 1].
    """
    _check_image(image)
    decision_seed, factor_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))

    def scale():
        factors = tf.random.stateless_uniform(tf.shape(image), seed=factor_seed,
                                              minval=PIXEL_SCALE_RANGE[0],
                                              maxval=PIXEL_SCALE_RANGE[1])
        return tf.clip_by_value(image * factors, 0.0, 1.0)

    return tf.cond(_coin(PIXEL_SCALE_PROBABILITY, decision_seed), scale, lambda: image)


# ---------------------------------------------------------------------------------------
# 5. Box jitter.
# ---------------------------------------------------------------------------------------

def random_jitter_boxes(boxes, seed):
    """Augmentation 5: moves each box corner by up to BOX_JITTER_RATIO of the box size.

    ymin and ymax move by U(-r, r) * box height, xmin and xmax by U(-r, r) * box width,
    each independently; the result is clipped to [0, 1].

    Args:
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        seed: an int tensor of shape [2].

    Returns:
        a float32 tensor of shape [N, 4].
    """
    _check_boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    height, width = ymax - ymin, xmax - xmin
    sizes = tf.stack([height, width, height, width], axis=1)  # [N, 4]
    shifts = tf.random.stateless_uniform(tf.shape(boxes), seed=seed,
                                         minval=-BOX_JITTER_RATIO, maxval=BOX_JITTER_RATIO)
    return tf.clip_by_value(boxes + shifts * sizes, 0.0, 1.0)


# ---------------------------------------------------------------------------------------
# 6. Horizontal flip.
# ---------------------------------------------------------------------------------------

def flip_left_right(image, boxes):
    """Mirrors an image and its boxes horizontally (x -> 1 - x).

    Args:
        image: a float32 tensor of shape [H, W, 3].
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.

    Returns:
        image: the mirrored image, shape [H, W, 3].
        boxes: a float32 tensor of shape [N, 4]; the new xmin is 1 - old xmax and the new
            xmax is 1 - old xmin.
    """
    return tf.reverse(image, axis=[1]), flip_boxes_left_right(boxes)


def flip_boxes_left_right(boxes):
    """Mirrors boxes horizontally: float32 [N, 4] -> [N, 4], xmin' = 1 - xmax, xmax' = 1 - xmin."""
    _check_boxes(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=1)


def random_flip_left_right(image, boxes, seed):
    """Augmentation 6: horizontal flip with probability FLIP_PROBABILITY.

    Args:
        image: a float32 tensor of shape [H, W, 3].
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        seed: an int tensor of shape [2].

    Returns:
        image: a float32 tensor of shape [H, W, 3].
        boxes: a float32 tensor of shape [N, 4].
    """
    return tf.cond(_coin(FLIP_PROBABILITY, seed),
                   lambda: flip_left_right(image, boxes),
                   lambda: (image, boxes))


# ---------------------------------------------------------------------------------------
# All of them.
# ---------------------------------------------------------------------------------------

def augment_after_crop(image, boxes, image_size, seeds, ignore_boxes=None):
    """Augmentations 2-6 (everything after the crop), in the upstream order.

    Args:
        image: a float32 tensor of shape [H, W, 3], values in [0, 1] (already cropped).
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        image_size: a pair of ints (height, width), the training size.
        seeds: a StepSeeds from ``split_step_seeds``.
        ignore_boxes: an optional float32 tensor of shape [M, 4] (default: none).

    Returns:
        image: a float32 tensor of static shape [height, width, 3], values in [0, 1].
        boxes: a float32 tensor of shape [N, 4].
        ignore_boxes: a float32 tensor of shape [M, 4] (flipped with the image).
    """
    ignore_boxes = _as_ignore_boxes(ignore_boxes)
    image = resize(image, image_size)
    image = random_colour_distortions(image, seeds.colour)
    image = random_pixel_value_scale(image, seeds.pixel_scale)
    boxes = random_jitter_boxes(boxes, seeds.jitter)

    def flip():
        flipped_image, flipped_boxes = flip_left_right(image, boxes)
        return flipped_image, flipped_boxes, flip_boxes_left_right(ignore_boxes)

    return tf.cond(_coin(FLIP_PROBABILITY, seeds.flip), flip,
                   lambda: (image, boxes, ignore_boxes))


def _as_ignore_boxes(ignore_boxes):
    """None -> float32 [0, 4]; otherwise a checked float32 [M, 4] tensor."""
    if ignore_boxes is None:
        return tf.zeros([0, 4], tf.float32)
    ignore_boxes = tf.convert_to_tensor(ignore_boxes, tf.float32)
    _check_boxes(ignore_boxes)
    return ignore_boxes


def split_partial_faces(boxes, window, min_visible):
    """The crop rule for faces when partly visible faces become ignore regions.

    A face with at least ``min_visible`` of its area inside the window stays a face; one
    that touches the window with less becomes an ignore region (neither face nor
    background); one completely outside is dropped. Both kinds are clipped to the window
    and expressed in its frame (``crop_boxes_to_window``). With the upstream rule alone
    (``crop_boxes_to_window``, 0.4) the lower 40-60% of a face is trained as a whole face and
    a face less visible than that as background.

    Args:
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        window: a float32 tensor of shape [4], normalized ymin, xmin, ymax, xmax.
        min_visible: float in (0, 1], the visible fraction from which a face stays a face.

    Returns:
        faces: a float32 tensor of shape [K, 4], K <= N, normalized to the window.
        partial: a float32 tensor of shape [P, 4], P <= N - K, normalized to the window.
    """
    faces, is_face = crop_boxes_to_window(boxes, window, min_overlap=min_visible)
    touching, touches = crop_boxes_to_window(boxes, window, min_overlap=0.0)
    partial = tf.boolean_mask(touching, tf.boolean_mask(tf.logical_not(is_face), touches))
    return faces, partial


def extend_box_tops(boxes, fraction):
    """Moves every box's top edge up by ``fraction`` of its height, stopping at the image top.

    A label-convention step, not an augmentation: the teacher's boxes start at the eyebrows,
    while FDDB's ellipses (and face crops people expect) include the forehead. With
    ``fraction`` 0.2 a box [ymin, xmin, ymax, xmax] becomes
    [max(ymin - 0.2 (ymax - ymin), 0), xmin, ymax, xmax]: the chin stays where it was.

    Args:
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        fraction: a Python float >= 0 (0 returns ``boxes`` itself).

    Returns:
        a float32 tensor of shape [N, 4].
    """
    if fraction == 0:
        return boxes
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=1)
    ymin = tf.maximum(ymin - float(fraction) * (ymax - ymin), 0.0)
    return tf.stack([ymin, xmin, ymax, xmax], axis=1)


def crop_faces_and_ignore_boxes(boxes, ignore_boxes, window, cropped, partial_face_ignore_below=None):
    """Faces and ignore regions after the crop (the same rules in ``augment`` and the fused
    JPEG pipeline).

    Args:
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        ignore_boxes: a float32 tensor of shape [M, 4].
        window: a float32 tensor of shape [4] (from ``sample_crop_window``).
        cropped: a bool scalar tensor, whether the image was cropped.
        partial_face_ignore_below: None for the upstream rule (faces at least 0.4 inside
            the window kept, the others dropped), or a float in (0, 1]: faces less visible
            than that become ignore regions (``split_partial_faces``).

    Returns:
        boxes: a float32 tensor of shape [K, 4]; ignore_boxes: a float32 tensor of shape [L, 4].
    """
    ignore_boxes = crop_ignore_boxes(ignore_boxes, window)
    if partial_face_ignore_below is None:
        boxes = tf.cond(cropped, lambda: crop_boxes_to_window(boxes, window)[0], lambda: boxes)
        return boxes, ignore_boxes
    boxes, partial = tf.cond(
        cropped, lambda: split_partial_faces(boxes, window, float(partial_face_ignore_below)),
        lambda: (boxes, tf.zeros([0, 4], tf.float32)))
    return boxes, tf.concat([ignore_boxes, partial], axis=0)


def crop_ignore_boxes(ignore_boxes, window):
    """Ignore regions after the crop: kept if they touch the window, clipped, re-normalized.

    With the whole-image window [0, 0, 1, 1] (no crop) every region is kept unchanged.

    Args:
        ignore_boxes: a float32 tensor of shape [M, 4] of regions with positive area.
        window: a float32 tensor of shape [4] (from ``sample_crop_window``).

    Returns:
        a float32 tensor of shape [K, 4], K <= M.
    """
    return crop_boxes_to_window(ignore_boxes, window, min_overlap=0.0)[0]


def augment(image, boxes, image_size, seed, ignore_boxes=None, partial_face_ignore_below=None):
    """All upstream training augmentations on a decoded image, in the upstream order.

    Args:
        image: a float32 tensor of shape [H, W, 3], values in [0, 1].
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        image_size: a pair of ints (height, width), the training size.
        seed: an int tensor of shape [2], the per-example seed.
        ignore_boxes: an optional float32 tensor of shape [M, 4] (default: none).
        partial_face_ignore_below: None (upstream) or a float in (0, 1]: faces less visible
            than that after the crop become ignore regions (``crop_faces_and_ignore_boxes``).

    Returns:
        image: a float32 tensor of static shape [height, width, 3], values in [0, 1].
        boxes: a float32 tensor of shape [K, 4], K <= N.
        ignore_boxes: a float32 tensor of shape [L, 4], L <= M (L <= M + N - K with
            ``partial_face_ignore_below``).
    """
    ignore_boxes = _as_ignore_boxes(ignore_boxes)
    seeds = split_step_seeds(seed)
    _check_image(image)
    crop_window, window, cropped = sample_crop_window(tf.shape(image), boxes, seeds.crop)
    image = crop_image(image, crop_window, cropped)
    boxes, ignore_boxes = crop_faces_and_ignore_boxes(boxes, ignore_boxes, window, cropped,
                                                      partial_face_ignore_below)
    return augment_after_crop(image, boxes, image_size, seeds, ignore_boxes)
