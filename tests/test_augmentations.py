"""Tests for src/input_pipeline/augmentations.py (boxes: normalized ymin, xmin, ymax, xmax)."""
import numpy as np
import pytest
import tensorflow as tf

from src.input_pipeline import augmentations as aug

# Neutral background and unique, mutually distant face colours for the painted images.
BACKGROUND = 0.5
FACE_COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]],
                        np.float32)
# Pixel boxes (y1, x1, y2, x2) of the painted faces in a 300 x 400 image, non-overlapping
# and apart, some near the borders so that crops cut them.
FACE_PIXEL_BOXES = np.array([[10, 10, 70, 60], [20, 150, 90, 230], [5, 320, 80, 395],
                             [130, 40, 210, 120], [150, 260, 230, 330], [230, 170, 295, 250]])
PAINTED_SHAPE = (300, 400)


def painted_image():
    """A [300, 400, 3] float32 image with FACE_COLOURS rectangles and their boxes [6, 4]."""
    image = np.full(PAINTED_SHAPE + (3,), BACKGROUND, np.float32)
    for colour, (y1, x1, y2, x2) in zip(FACE_COLOURS, FACE_PIXEL_BOXES):
        image[y1:y2, x1:x2] = colour
    height, width = PAINTED_SHAPE
    boxes = (FACE_PIXEL_BOXES / np.array([height, width, height, width])).astype(np.float32)
    return image, boxes


def expected_crop(boxes, window):
    """Numpy restatement of the crop rules: returns (kept mask [N], new boxes [M, 4])."""
    w_ymin, w_xmin, w_ymax, w_xmax = window
    ih = np.clip(np.minimum(boxes[:, 2], w_ymax) - np.maximum(boxes[:, 0], w_ymin), 0, None)
    iw = np.clip(np.minimum(boxes[:, 3], w_xmax) - np.maximum(boxes[:, 1], w_xmin), 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = ih * iw / area >= 0.4
    kept = boxes[keep]
    low = np.array([w_ymin, w_xmin, w_ymin, w_xmin])
    high = np.array([w_ymax, w_xmax, w_ymax, w_xmax])
    extent = np.array([w_ymax - w_ymin, w_xmax - w_xmin] * 2)
    return keep, (np.clip(kept, low, high) - low) / extent


def assert_box_encloses_colour(image, box, colour, margin=1.5):
    """The pixels of ``colour`` lie in ``box`` (+margin px) and fill it (-margin px)."""
    height, width = image.shape[:2]
    y1, x1, y2, x2 = box * np.array([height, width, height, width])
    matches = np.all(np.abs(image - colour) < 0.02, axis=-1)
    ys, xs = np.nonzero(matches)
    assert ys.size > 0, f'colour {colour} vanished although its box {box} was kept'
    # Pixel (i, j) covers [i, i + 1] x [j, j + 1].
    assert ys.min() >= y1 - margin and ys.max() + 1 <= y2 + margin, (box, colour)
    assert xs.min() >= x1 - margin and xs.max() + 1 <= x2 + margin, (box, colour)
    inner = matches[int(np.ceil(y1 + margin)):int(np.floor(y2 - margin)),
                    int(np.ceil(x1 + margin)):int(np.floor(x2 - margin))]
    assert inner.all(), f'box {box} is not filled with colour {colour}'


def test_crop_boxes_to_window_hand_derived():
    window = tf.constant([0.2, 0.2, 0.6, 0.6])
    boxes = tf.constant([
        [0.3, 0.3, 0.5, 0.5],   # inside: kept, -> [0.25, 0.25, 0.75, 0.75]
        [0.7, 0.7, 0.9, 0.9],   # completely outside: dropped
        [0.1, 0.3, 0.3, 0.5],   # half inside (0.5 >= 0.4): kept, clipped
        [0.5, 0.3, 0.9, 0.5],   # a quarter inside (0.25 < 0.4): dropped
        [0.6, 0.3, 0.8, 0.5],   # touches the window edge only: dropped
    ])
    new_boxes, keep = aug.crop_boxes_to_window(boxes, window)
    np.testing.assert_array_equal(keep.numpy(), [True, False, True, False, False])
    np.testing.assert_allclose(new_boxes.numpy(), [[0.25, 0.25, 0.75, 0.75],
                                                   [0.0, 0.25, 0.25, 0.75]], atol=1e-6)


def test_crop_boxes_to_window_no_boxes():
    new_boxes, keep = aug.crop_boxes_to_window(tf.zeros([0, 4]), tf.constant([0., 0., .5, .5]))
    assert new_boxes.shape == (0, 4) and keep.shape == (0,)


def test_crop_window_covers_090_of_a_box_over_many_seeds():
    rng = np.random.default_rng(0)
    sample = tf.function(aug.sample_crop_window)
    crops = 0
    for index in range(300):
        count = int(rng.integers(1, 6))
        size = rng.uniform(0.05, 0.5, (count, 1))
        ymin, xmin = rng.uniform(0, 1 - size), rng.uniform(0, 1 - size)
        boxes = np.concatenate([ymin, xmin, ymin + size, xmin + size], 1).astype(np.float32)
        height, width = int(rng.integers(100, 600)), int(rng.integers(100, 600))
        crop_window, window, cropped = sample(tf.constant([height, width, 3]),
                                              tf.constant(boxes), tf.constant([index, 11]))
        oy, ox, ch, cw = crop_window.numpy()
        assert 0 <= oy and oy + ch <= height and 0 <= ox and ox + cw <= width
        np.testing.assert_allclose(window.numpy(), [oy / height, ox / width,
                                                    (oy + ch) / height, (ox + cw) / width],
                                   rtol=1e-6)
        # The sampler measures coverage on boxes truncated to whole pixels.
        pixel = (boxes * np.array([height, width, height, width], np.float32)).astype(int)
        ih = np.clip(np.minimum(pixel[:, 2], oy + ch) - np.maximum(pixel[:, 0], oy), 0, None)
        iw = np.clip(np.minimum(pixel[:, 3], ox + cw) - np.maximum(pixel[:, 1], ox), 0, None)
        area = (pixel[:, 2] - pixel[:, 0]) * (pixel[:, 3] - pixel[:, 1])
        assert (ih * iw / area).max() >= 0.9
        if cropped:
            crops += 1
            if (ch, cw) != (height, width):  # a real crop, not the sampler's fallback
                assert 0.4 - 0.02 <= ch * cw / (height * width) <= 0.9 + 0.02
                assert 0.93 - 0.02 <= cw / ch <= 1.07 + 0.02
        else:
            assert (oy, ox, ch, cw) == (0, 0, height, width)
    # Probability 0.9 over 300 fixed seeds: 270 expected, std 5.2.
    assert 250 <= crops <= 290


def test_image_without_boxes_is_never_cropped():
    # No boxes: the whole image is the one box, and a crop of at most 0.9 of the area
    # cannot cover 0.9 of it, so the sampler always falls back to the whole image.
    for index in range(20):
        image = tf.zeros([60, 80, 3])
        out, boxes, window = aug.random_crop(image, tf.zeros([0, 4]), tf.constant([index, 0]))
        assert out.shape == (60, 80, 3) and boxes.shape == (0, 4)
        np.testing.assert_array_equal(window.numpy(), [0, 0, 1, 1])


def test_crop_resize_flip_keep_boxes_on_their_faces():
    image, boxes = painted_image()
    crop = tf.function(aug.random_crop)
    seen_drop = seen_crop = seen_flip = False
    for index in range(40):
        seed = tf.constant([index, 5])
        seeds = aug.split_step_seeds(seed)
        out, new_boxes, window = crop(tf.constant(image), tf.constant(boxes), seeds.crop)
        keep, expected = expected_crop(boxes, window.numpy())
        np.testing.assert_allclose(new_boxes.numpy(), expected, atol=1e-5)
        seen_crop |= bool(np.any(window.numpy() != [0, 0, 1, 1]))
        seen_drop |= not keep.all()
        out = aug.resize(out, (160, 200))
        out, new_boxes = aug.random_flip_left_right(out, new_boxes, seeds.flip)
        flipped = not np.array_equal(
            new_boxes.numpy(), np.asarray(expected, np.float32).reshape(-1, 4))
        seen_flip |= flipped
        for box, colour in zip(new_boxes.numpy(), FACE_COLOURS[keep]):
            assert_box_encloses_colour(out.numpy(), box, colour)
    assert seen_crop and seen_drop and seen_flip


def test_fused_window_matches_full_image_crop():
    image, boxes = painted_image()
    seed = tf.constant([3, 3])
    out, _, window = aug.random_crop(tf.constant(image), tf.constant(boxes), seed)
    crop_window, same_window, _ = aug.sample_crop_window(tf.constant([300, 400, 3]),
                                                         tf.constant(boxes), seed)
    np.testing.assert_array_equal(window.numpy(), same_window.numpy())
    oy, ox, ch, cw = crop_window.numpy()
    np.testing.assert_array_equal(out.numpy(), image[oy:oy + ch, ox:ox + cw])


def test_flip_maps_x_to_one_minus_x():
    image = tf.reshape(tf.range(2 * 3 * 3, dtype=tf.float32), [2, 3, 3])
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 0.25]])
    flipped_image, flipped_boxes = aug.flip_left_right(image, boxes)
    np.testing.assert_allclose(flipped_boxes.numpy(),
                               [[0.1, 0.4, 0.5, 0.8], [0.0, 0.75, 1.0, 1.0]], atol=1e-6)
    np.testing.assert_array_equal(flipped_image.numpy(), image.numpy()[:, ::-1])


def test_random_flip_happens_about_half_the_time():
    image = tf.zeros([4, 4, 3])
    boxes = tf.constant([[0.1, 0.1, 0.2, 0.3]])
    flips = sum(
        bool(aug.random_flip_left_right(image, boxes, tf.constant([k, 1]))[1][0, 1] > 0.5)
        for k in range(100))
    assert 35 <= flips <= 65


def test_jitter_moves_each_corner_by_at_most_one_percent():
    rng = np.random.default_rng(2)
    size = rng.uniform(0.05, 0.6, (50, 2))
    corner = rng.uniform(0, 1 - size)
    boxes = np.concatenate([corner, corner + size], 1).astype(np.float32)
    boxes[0] = [0.0, 0.0, 1.0, 1.0]  # touches every border: clipped there
    jittered = aug.random_jitter_boxes(tf.constant(boxes), tf.constant([4, 2])).numpy()
    sizes = np.concatenate([size, size], 1)
    sizes[0] = 1.0
    delta = np.abs(jittered - boxes)
    assert np.all(delta <= 0.01 * sizes + 1e-6)
    assert np.all(delta[1:] > 0)
    assert jittered.min() >= 0.0 and jittered.max() <= 1.0
    assert jittered.shape == (50, 4)
    empty = aug.random_jitter_boxes(tf.zeros([0, 4]), tf.constant([4, 2]))
    assert empty.shape == (0, 4)


@pytest.mark.parametrize('fill', [None, 0.0, 1.0])
def test_colour_ops_keep_values_in_unit_range(fill):
    rng = np.random.default_rng(3)
    if fill is None:
        image = rng.uniform(0, 1, (24, 32, 3)).astype(np.float32)
    else:
        image = np.full((24, 32, 3), fill, np.float32)
    colour = tf.function(aug.random_colour_distortions)
    scale = tf.function(aug.random_pixel_value_scale)
    changed = 0
    for index in range(40):
        out = colour(tf.constant(image), tf.constant([index, 9])).numpy()
        assert out.shape == image.shape
        assert out.min() >= 0.0 and out.max() <= 1.0
        changed += not np.array_equal(out, image)
        out = scale(tf.constant(image), tf.constant([index, 9])).numpy()
        assert out.min() >= 0.0 and out.max() <= 1.0
    if fill is None:
        # Probability 0.45 (+0.05 grayscale) over 40 fixed seeds.
        assert 8 <= changed <= 32


def test_grayscale_gives_three_equal_channels():
    image = tf.constant(np.random.default_rng(4).uniform(0, 1, (8, 8, 3)), tf.float32)
    grays = 0
    for index in range(200):
        out = aug.random_colour_distortions(image, tf.constant([index, 1])).numpy()
        if np.allclose(out[..., 0], out[..., 1]) and np.allclose(out[..., 1], out[..., 2]):
            grays += 1
    # Probability 0.05 over 200 fixed seeds: 10 expected.
    assert 3 <= grays <= 20


def test_pixel_value_scale_factors_in_range():
    image = tf.fill([16, 16, 3], 0.5)
    scaled = 0
    for index in range(30):
        out = aug.random_pixel_value_scale(image, tf.constant([index, 2])).numpy()
        if not np.array_equal(out, image.numpy()):
            scaled += 1
            ratio = out / 0.5
            assert ratio.min() >= 0.85 - 1e-6 and ratio.max() <= 1.15 + 1e-6
            assert np.unique(out).size > 100  # each value has its own factor
    assert 0 < scaled <= 15


def test_augment_is_deterministic_and_shaped():
    image, boxes = painted_image()
    first = aug.augment(tf.constant(image), tf.constant(boxes), (64, 96), tf.constant([7, 7]))
    second = aug.augment(tf.constant(image), tf.constant(boxes), (64, 96), tf.constant([7, 7]))
    assert first[0].shape == (64, 96, 3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert first[0].numpy().min() >= 0.0 and first[0].numpy().max() <= 1.0
    assert first[1].numpy().min() >= 0.0 and first[1].numpy().max() <= 1.0


def test_bad_box_shape_is_rejected():
    with pytest.raises(ValueError, match='boxes must have shape'):
        aug.crop_boxes_to_window(tf.zeros([3, 5]), tf.constant([0., 0., 1., 1.]))
