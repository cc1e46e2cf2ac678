import numpy as np
import pytest
import tensorflow as tf

from src.detector import FaceBoxes, pad_images
from src.network import FeatureExtractor


@pytest.fixture(scope="module")
def model():
    return FaceBoxes(seed=3)


def count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


def test_parameter_counts_equal_upstream(model):
    assert count(model.trainable_variables) == 1_007_330
    assert count([v for v in model.variables if not v.trainable]) == 2_960
    names = model.named_variables()
    assert len(names) == len(model.variables)
    assert names["conv1/weights"].shape == (7, 7, 3, 24)
    assert names["inception2/conv_3x3_second_path4/batch_norm/moving_variance"].shape == (32,)
    assert names["prediction_layers/class_predictor_0/weights"].shape == (3, 3, 128, 42)
    assert names["prediction_layers/box_encoding_predictor_2/biases"].shape == (4,)


@pytest.mark.parametrize("height, width", [(128, 128), (256, 384), (512, 640)])
def test_feature_map_shapes(height, width):
    maps = FeatureExtractor(seed=1)(tf.zeros([2, height, width, 3]), training=False)
    assert [m.shape.as_list() for m in maps] == [
        [2, height // 32, width // 32, 128], [2, height // 64, width // 64, 256],
        [2, height // 128, width // 128, 256]]


@pytest.mark.parametrize("height, width, anchors", [(333, 517, 5115), (480, 640, 6820), (128, 256, 4 * 8 * 21 + 2 * 4 + 1 * 2)])
def test_raw_output_shapes_for_odd_sizes(model, height, width, anchors):
    padded, scale = pad_images(tf.zeros([1, height, width, 3]))
    enc, logits, anchor_boxes, _ = model.raw_outputs(padded, training=False)
    assert enc.shape == (1, anchors, 4) and logits.shape == (1, anchors, 2)
    assert anchor_boxes.shape == (anchors, 4)
    expected_scale = [height / padded.shape[1], width / padded.shape[2]]
    np.testing.assert_allclose(scale.numpy(), expected_scale, rtol=1e-6)


def test_class_bias_prior(model):
    bias = model.class_heads[0].bias.numpy().reshape(21, 2)
    np.testing.assert_allclose(np.exp(bias), np.tile([[0.99, 0.01]], (21, 1)), rtol=1e-6)


def test_folded_batch_norm_equals_batch_norm():
    net = FeatureExtractor(seed=2)
    rng = np.random.default_rng(0)
    for layer in net.layers:  # non-trivial statistics
        c = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 1.5, c))
        layer.beta.assign(rng.normal(0, 0.1, c))
        layer.moving_mean.assign(rng.normal(0, 0.1, c))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))
    images = tf.constant(rng.uniform(size=(1, 128, 256, 3)), tf.float32)
    folded = net(images, training=False)
    # Reference: conv, then batch norm with the moving statistics, unfolded.
    def conv_bn(layer, x):
        y = tf.nn.conv2d(x, layer.kernel, layer.stride, "SAME")
        return tf.nn.batch_normalization(y, layer.moving_mean, layer.moving_variance, layer.beta,
                                         layer.gamma, 1e-3)
    x = 2 * images - 1
    x = tf.nn.max_pool2d(tf.nn.relu(tf.concat([conv_bn(net.conv1, x), -conv_bn(net.conv1, x)], -1)), 3, 2, "SAME")
    x = tf.nn.max_pool2d(tf.nn.relu(tf.concat([conv_bn(net.conv2, x), -conv_bn(net.conv2, x)], -1)), 3, 2, "SAME")
    for inc in net.inceptions:
        r = lambda layer, t: tf.nn.relu(conv_bn(layer, t))
        x = tf.concat([r(inc.path1, x), r(inc.path2, tf.nn.max_pool2d(x, 3, 1, "SAME")),
                       r(inc.path3_3x3, r(inc.path3_1x1, x)),
                       r(inc.path4_3x3_second, r(inc.path4_3x3, r(inc.path4_1x1, x)))], -1)
    np.testing.assert_allclose(folded[0].numpy(), x.numpy(), atol=1e-4)


def test_training_mode_updates_moving_statistics():
    net = FeatureExtractor(seed=4)
    before = net.conv1.moving_mean.numpy().copy()
    net(tf.random.stateless_uniform([2, 128, 128, 3], seed=[1, 2]), training=True)
    assert not np.allclose(net.conv1.moving_mean.numpy(), before)
    np.testing.assert_allclose(net.conv1.moving_variance.numpy() > 0, True)
