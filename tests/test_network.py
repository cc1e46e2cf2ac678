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


def conv2d_same(x, kernel, stride):
    """Plain numpy NHWC convolution with TensorFlow's 'SAME' padding (float64)."""
    kh, kw = kernel.shape[:2]
    pads = []
    for size, k in zip(x.shape[1:3], (kh, kw)):
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # [B, H, W, C, kh, kw]
    windows = windows[:, ::stride, ::stride]
    return np.einsum("bhwcij,ijco->bhwo", windows, kernel)


def test_training_mode_moving_statistics_are_exact_moving_averages(monkeypatch):
    """After one training-mode pass, every layer's moving_mean / moving_variance equal
    0.9 * old + 0.1 * batch statistic of its pre-BN activations (momentum 0.9, as the upstream).

    The batch variance is the biased one (sum of squares / N, what tf.nn.moments gives and what
    normalises the batch). The upstream's fused TF1 batch norm fed the Bessel-corrected
    (N / (N - 1)) variance to its moving average instead; at 128x128, batch 2 the deeper layers
    have N = 8 (conv3_2, conv4_1) and N = 2 (conv4_2), so the two are far apart and this test tells them
    apart (asserted below).
    """
    from src import network
    assert (network.BATCH_NORM_MOMENTUM, network.BATCH_NORM_EPSILON) == (0.9, 1e-3)
    net = FeatureExtractor(seed=4)
    rng = np.random.default_rng(5)
    old = {}
    for layer in net.layers:  # non-trivial old statistics, so the momentum matters
        c = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 1.5, c))
        layer.beta.assign(rng.normal(0, 0.1, c))
        layer.moving_mean.assign(rng.normal(0, 0.5, c))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))
        old[id(layer)] = (layer.moving_mean.numpy().astype(np.float64),
                          layer.moving_variance.numpy().astype(np.float64))
    inputs = {}  # each layer's input in the real forward pass
    call = network.ConvBN.__call__

    def recording_call(self, x, training):
        inputs[id(self)] = x.numpy().astype(np.float64)
        return call(self, x, training)

    monkeypatch.setattr(network.ConvBN, "__call__", recording_call)
    net(tf.constant(rng.uniform(size=(2, 128, 128, 3)), tf.float32), training=True)
    assert len(inputs) == len(net.layers) == 27
    sizes = []
    for layer in net.layers:
        y = conv2d_same(inputs[id(layer)], layer.kernel.numpy().astype(np.float64), layer.stride)
        n = y.shape[0] * y.shape[1] * y.shape[2]
        sizes.append(n)
        mean = y.mean(axis=(0, 1, 2))
        variance = ((y - mean) ** 2).mean(axis=(0, 1, 2))  # biased: / N
        old_mean, old_variance = old[id(layer)]
        np.testing.assert_allclose(layer.moving_mean.numpy(), 0.9 * old_mean + 0.1 * mean,
                                   rtol=1e-5, atol=1e-6, err_msg=layer.scope)
        np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 * old_variance + 0.1 * variance,
                                   rtol=1e-5, atol=1e-6, err_msg=layer.scope)
        if n <= 8:  # here the unbiased variance is off by far more than the tolerance
            unbiased = 0.9 * old_variance + 0.1 * variance * n / (n - 1)
            gap = np.abs(layer.moving_variance.numpy() - unbiased) / (1e-6 + 1e-5 * unbiased)
            assert gap.max() > 100, layer.scope
    assert sizes[-3:] == [2 * 2 * 2, 2 * 2 * 2, 2 * 1 * 1]  # conv3_2, conv4_1, conv4_2


def test_crelu_max_pool_equals_pooling_the_crelu_exactly():
    from src.network import crelu_max_pool
    x = tf.constant(np.random.default_rng(4).normal(size=(2, 37, 50, 6)).astype(np.float32))
    reference = tf.nn.max_pool2d(tf.nn.relu(tf.concat([x, -x], axis=-1)), 3, 2, "SAME")
    np.testing.assert_array_equal(crelu_max_pool(x, 2).numpy(), reference.numpy())


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_conv1_with_negation_gives_the_crelu_bit_for_bit(dtype):
    # Inference runs CReLU as conv1 with kernel [W, -W] and bias [b, -b] (ReLU fused): the
    # second half must be exactly -y, for the plain call and for the uint8-folded one, and
    # the pooled result equal crelu_max_pool's, in float32 and in bfloat16.
    from src.network import crelu_max_pool, max_pool
    net = FeatureExtractor(seed=8)
    _random_statistics(net, 2)
    rng = np.random.default_rng(3)
    pixels = tf.constant(rng.integers(0, 256, (2, 128, 256, 3)).astype(np.float32), dtype)
    normalized = tf.constant(rng.uniform(-1, 1, (2, 128, 256, 3)).astype(np.float32), dtype)
    for both, plain in [
            (net.conv1(normalized, False, with_negation=True), net.conv1(normalized, False)),
            (net.conv1.affine_input_call(pixels, 2.0 / 255.0, -1.0, with_negation=True),
             net.conv1.affine_input_call(pixels, 2.0 / 255.0, -1.0))]:
        assert both.shape == (2, 32, 64, 48) and both.dtype == dtype
        # Within one convolution the negated half is exact (IEEE rounding is sign-symmetric).
        np.testing.assert_array_equal(both[..., 24:].numpy(), (-both[..., :24]).numpy())
        # Against the 24-channel convolution, oneDNN may block the channels differently on
        # other CPUs; on this project's machines it is bit for bit, anywhere within rounding.
        tolerance = dict(rtol=1e-6, atol=1e-5) if dtype == tf.float32 else dict(rtol=1e-2, atol=2e-2)
        np.testing.assert_allclose(tf.cast(both[..., :24], tf.float32).numpy(),
                                   tf.cast(plain, tf.float32).numpy(), **tolerance)
        np.testing.assert_allclose(tf.cast(max_pool(tf.nn.relu(both), 2), tf.float32).numpy(),
                                   tf.cast(crelu_max_pool(plain, 2), tf.float32).numpy(), **tolerance)
    with pytest.raises(ValueError, match="inference only"):
        net.conv1(normalized, True, with_negation=True)


def _random_statistics(net, seed):
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        c = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 1.5, c))
        layer.beta.assign(rng.normal(0, 0.1, c))
        layer.moving_mean.assign(rng.normal(0, 0.1, c))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))


@pytest.mark.parametrize("height, width", [(128, 128), (256, 384)])
def test_uint8_input_folded_into_conv1_equals_normalizing_first(height, width):
    # conv1 with x * 2/255 - 1 folded into its kernel and bias, and 'SAME' borders padded with
    # the raw value 127.5 (which normalizes to 0), equals conv1 on the normalized image.
    net = FeatureExtractor(seed=5)
    _random_statistics(net, 1)
    pixels = np.random.default_rng(2).integers(0, 256, (2, height, width, 3)).astype(np.float32)
    # Saturated corners: the border terms are largest there.
    pixels[:, :3, :3] = 255.0
    pixels[:, -3:, -3:] = 0.0
    folded = net.conv1.affine_input_call(tf.constant(pixels), 2.0 / 255.0, -1.0)
    reference = net.conv1(tf.constant(pixels * (2.0 / 255.0) - 1.0), training=False)
    assert folded.shape == reference.shape == (2, height // 4, width // 4, 24)
    np.testing.assert_allclose(folded.numpy(), reference.numpy(), atol=2e-5)
    maps = net(tf.constant(pixels), training=False, input_range="uint8")
    reference_maps = net(tf.constant(pixels / 255.0), training=False, input_range="unit")
    for got, want in zip(maps, reference_maps):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-5)


def test_uint8_input_range_is_inference_only():
    net = FeatureExtractor(seed=5)
    with pytest.raises(ValueError, match="inference only"):
        net(tf.zeros([1, 128, 128, 3]), training=True, input_range="uint8")
    with pytest.raises(ValueError, match="input_range"):
        net(tf.zeros([1, 128, 128, 3]), training=False, input_range="bytes")


def test_predictions_from_uint8_equal_predictions_of_unit_images():
    model = FaceBoxes(seed=6)
    _random_statistics(model.feature_extractor, 3)
    for head in model.class_heads:  # make some anchors fire so NMS has work
        head.bias.assign(head.bias + np.random.default_rng(1).normal(0, 2.0, head.bias.shape))
    images = np.random.default_rng(7).integers(0, 256, (2, 201, 333, 3)).astype(np.uint8)
    got = model.predictions_from_uint8(tf.constant(images), 0.05, 0.3, 50)
    want = model.predictions(tf.constant(images, tf.float32) / 255.0, 0.05, 0.3, 50)
    np.testing.assert_array_equal(got["num_boxes"].numpy(), want["num_boxes"].numpy())
    assert got["num_boxes"].numpy().min() > 10
    np.testing.assert_allclose(got["scores"].numpy(), want["scores"].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["boxes"].numpy(), want["boxes"].numpy(), atol=1e-5)


def test_frozen_batch_norm_trains_with_the_moving_statistics_and_keeps_them():
    from src.network import ConvBN, FeatureExtractor, freeze_batch_norm_statistics
    layer = ConvBN("c", 3, 4, 6, seed=1)
    layer.moving_mean.assign(np.linspace(-1, 1, 6).astype(np.float32))
    layer.moving_variance.assign(np.linspace(0.5, 2, 6).astype(np.float32))
    layer.gamma.assign(np.full(6, 1.5, np.float32))
    x = tf.random.stateless_normal([2, 8, 8, 4], seed=[3, 4])
    assert freeze_batch_norm_statistics(layer) == 1
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * y)
    conv = tf.nn.conv2d(x, layer.kernel, [1, 1, 1, 1], "SAME")
    want = (conv - layer.moving_mean) / tf.sqrt(layer.moving_variance + 1e-3) * layer.gamma + layer.beta
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), np.linspace(-1, 1, 6).astype(np.float32))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), np.linspace(0.5, 2, 6).astype(np.float32))
    gradients = tape.gradient(loss, [layer.kernel, layer.gamma, layer.beta])
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)
    # Every batch-norm layer of the network is found: 27, as the upstream's 27 conv + BN blocks.
    assert freeze_batch_norm_statistics(FeatureExtractor(seed=0)) == 27
