import numpy as np
import pytest

from src import anchor_generator


def anchors_np(h, w):
    anchors, counts = anchor_generator.generate_anchors(h, w)
    return anchors.numpy(), [int(c) for c in counts]


@pytest.mark.parametrize("size, padded, expected", [
    ((1024, 1024), (1024, 1024), 32 * 32 * 21 + 16 * 16 + 8 * 8),
    ((768, 1024), (768, 1024), 24 * 32 * 21 + 12 * 16 + 6 * 8),
    ((480, 640), (512, 640), 16 * 20 * 21 + 8 * 10 + 4 * 5),
    ((333, 517), (384, 640), 12 * 20 * 21 + 6 * 10 + 3 * 5),
])
def test_counts(size, padded, expected):
    assert anchor_generator.padded_size(*size) == padded
    anchors, counts = anchors_np(*padded)
    assert anchors.shape == (expected, 4)
    assert sum(counts) == expected


def test_1024_total_is_upstream_number():
    anchors, counts = anchors_np(1024, 1024)
    assert len(anchors) == 21824
    assert counts == [21504, 256, 64]


def test_exact_coordinates_and_order_square():
    anchors, _ = anchors_np(1024, 1024)
    px = anchors * 1024
    base = (1 * 32 + 2) * 21  # cell row 1, column 2; centre (48, 80) pixels
    expected = {
        base + 0: [20, 52, 52, 84],    # 32 px, kx=0, ky=0: centre (36, 68)
        base + 1: [28, 52, 60, 84],    # kx=0, ky=1: y moves first (inner loop)
        base + 4: [20, 60, 52, 92],    # kx=1, ky=0
        base + 15: [44, 76, 76, 108],  # kx=3, ky=3: centre (60, 92)
        base + 16: [0, 32, 64, 96],    # 64 px, kx=0, ky=0: centre (32, 64), clipped at top
        base + 17: [32, 32, 96, 96],   # 64 px, kx=0, ky=1: centre (64, 64)
        base + 18: [0, 64, 64, 128],   # 64 px, kx=1, ky=0: centre (32, 96)
        base + 20: [0, 16, 112, 144],  # 128 px at the cell centre, clipped
        21504: [0, 0, 160, 160],       # first 256 px anchor, centre (32, 32)
        21504 + 17: [0, 0, 224, 224],  # map 1, row 1, column 1: centre (96, 96), clipped
        21504 + 256: [0, 0, 320, 320],  # first 512 px anchor, centre (64, 64)
    }
    for index, box in expected.items():
        np.testing.assert_allclose(px[index], box, atol=1e-3, err_msg=f"anchor {index}")


def test_exact_coordinates_non_square():
    anchors, _ = anchors_np(768, 1024)
    base = (1 * 32 + 2) * 21
    np.testing.assert_allclose(anchors[base], [20 / 768, 52 / 1024, 52 / 768, 84 / 1024], atol=1e-6)
    np.testing.assert_allclose(anchors[base + 1], [28 / 768, 52 / 1024, 60 / 768, 84 / 1024], atol=1e-6)


def test_all_clipped_to_unit_square():
    anchors, _ = anchors_np(384, 640)
    assert anchors.min() >= 0.0 and anchors.max() <= 1.0
    assert np.all(anchors[:, 2] > anchors[:, 0]) and np.all(anchors[:, 3] > anchors[:, 1])


def test_cell_template_spacing():
    template = anchor_generator.cell_template(anchor_generator.ANCHOR_SPECS[0])
    assert template.shape == (21, 4)
    # 32 px anchors densified 4x: sub-centres 8 px apart, y inner loop.
    np.testing.assert_allclose(template[:4, 0], [-12, -4, 4, 12])
    np.testing.assert_allclose(template[:4, 1], [-12, -12, -12, -12])
    np.testing.assert_allclose(template[16:20, :2], [[-16, -16], [16, -16], [-16, 16], [16, 16]])


@pytest.mark.parametrize("height, width", [(128, 128), (384, 640), (768, 1024)])
def test_centres_and_sizes_equal_those_of_the_anchors(height, width):
    import tensorflow as tf
    window_scale = tf.constant([0.75, 0.9])
    centres, sizes = anchor_generator.anchor_centres_and_sizes(height, width, window_scale)
    anchors, _ = anchors_np(height, width)
    scale = np.array([0.75, 0.9, 0.75, 0.9], np.float32)
    want_sizes = np.tile(anchors[:, 2:] - anchors[:, :2], 2) / scale
    want_centres = np.tile(anchors[:, :2] + 0.5 * (anchors[:, 2:] - anchors[:, :2]), 2) / scale
    assert centres.shape == sizes.shape == anchors.shape
    np.testing.assert_allclose(centres.numpy(), want_centres, atol=1e-6)
    np.testing.assert_allclose(sizes.numpy(), want_sizes, atol=1e-6)
