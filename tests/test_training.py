"""src/training.py: which kernels get L2 weight decay and its value, and the mixed-precision step.

Small and fast: 128x128 images, batch 2, eager execution.
"""
import numpy as np
import pytest
import tensorflow as tf

from src.detector import FaceBoxes
from src.losses_and_ohem import OHEMParams
from src.trainer import compute_dtype
from src.training import compute_losses, make_optimizer, regularization_loss, train_step

WEIGHT_DECAY = 1e-3  # the upstream value

INCEPTION_PATHS = {  # name: (kernel size, in channels, out channels); 128 channels in
    "conv_1x1_path1": (1, 128, 32), "conv_1x1_path2": (1, 128, 32), "conv_1x1_path3": (1, 128, 24),
    "conv_3x3_path3": (3, 24, 32), "conv_1x1_path4": (1, 128, 24), "conv_3x3_path4": (3, 24, 32),
    "conv_3x3_second_path4": (3, 32, 32)}
# Every convolution kernel of FaceBoxes, from the architecture (the upstream's src/network.py):
# conv1 (on 3 channels), conv2 (on CReLU's 48), 3 inception modules x 7 convolutions, conv3_1,
# conv3_2, conv4_1, conv4_2, and the 3 box and 3 class heads (21, 1, 1 anchors per cell on 128,
# 256, 256 channels): 27 + 6 = 33 kernels.
KERNELS = {"conv1": (7, 7, 3, 24), "conv2": (5, 5, 48, 64)}
for _k in (1, 2, 3):
    for _path, (_size, _cin, _cout) in INCEPTION_PATHS.items():
        KERNELS[f"inception{_k}/{_path}"] = (_size, _size, _cin, _cout)
KERNELS.update({"conv3_1": (1, 1, 128, 128), "conv3_2": (3, 3, 128, 256), "conv4_1": (1, 1, 256, 128),
                "conv4_2": (3, 3, 128, 256)})
for _i, (_c, _a) in enumerate(zip((128, 256, 256), (21, 1, 1))):
    KERNELS[f"prediction_layers/box_encoding_predictor_{_i}"] = (3, 3, _c, 4 * _a)
    KERNELS[f"prediction_layers/class_predictor_{_i}"] = (3, 3, _c, 2 * _a)


def make_batch():
    """Two 128x128 images, one bright rectangle (a 'face') each, boxes normalized."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 0.3, (2, 128, 128, 3)).astype(np.float32)
    images[0, 32:80, 40:84] = 0.9
    images[1, 10:60, 60:100] = 0.8
    boxes = np.array([[[32, 40, 80, 84]], [[10, 60, 60, 100]]], np.float32) / 128
    return {"images": tf.constant(images), "boxes": tf.constant(boxes),
            "num_boxes": tf.constant([1, 1], tf.int32)}


def test_regularized_kernels_are_exactly_the_33_convolution_kernels():
    model = FaceBoxes(seed=1)
    named = model.named_variables()
    assert len(KERNELS) == 33
    for name, shape in KERNELS.items():
        assert tuple(named[f"{name}/weights"].shape) == shape, name
    kernels = model.regularized_kernels()
    assert len(kernels) == 33 and len({id(k) for k in kernels}) == 33  # no kernel twice
    assert {id(k) for k in kernels} == {id(named[f"{name}/weights"]) for name in KERNELS}
    # ... and nothing else: no batch-norm gamma/beta, head bias or moving statistic.
    others = [name for name, v in named.items() if id(v) not in {id(k) for k in kernels}]
    assert others and all(name.rsplit("/", 1)[1] in ("gamma", "beta", "moving_mean", "moving_variance", "biases")
                          for name in others)
    sizes = sum(int(np.prod(shape)) for shape in KERNELS.values())
    assert sizes == 1_004_232
    # The rest of the 1,007,330 trainable numbers: 2 x 1,480 BN gamma/beta and 138 head biases.
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) - sizes == 2 * 1_480 + 138


def test_regularization_loss_value_and_gradient():
    model = FaceBoxes(seed=1)
    named = model.named_variables()
    expected = WEIGHT_DECAY * sum(np.sum(named[f"{name}/weights"].numpy().astype(np.float64) ** 2)
                                  for name in KERNELS) / 2
    with tf.GradientTape() as tape:
        reg = regularization_loss(model.regularized_kernels(), WEIGHT_DECAY)
    np.testing.assert_allclose(reg.numpy(), expected, rtol=1e-5)
    # Its gradient is weight_decay * w on exactly those kernels and nothing on anything else.
    gradients = tape.gradient(reg, model.trainable_variables, unconnected_gradients="zero")
    decayed = {id(named[f"{name}/weights"]) for name in KERNELS}
    for v, g in zip(model.trainable_variables, gradients):
        np.testing.assert_allclose(g.numpy(), WEIGHT_DECAY * v.numpy() if id(v) in decayed else 0.0,
                                   rtol=1e-5, atol=1e-12, err_msg=v.name)
    # compute_losses adds exactly that term to the weighted losses.
    out = compute_losses(model, make_batch(), (2.0, 0.5), weight_decay=WEIGHT_DECAY)
    np.testing.assert_allclose(out["regularization_loss"].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        out["total_loss"].numpy(),
        2.0 * out["localization_loss"].numpy() + 0.5 * out["classification_loss"].numpy() + expected, rtol=1e-5)


def one_step(dtype):
    """One train_step from the same weights (seed 7) on the same batch, images cast to dtype
    as src/trainer.py does; returns (losses, model, weights before, weights after)."""
    model = FaceBoxes(seed=7)
    optimizer = make_optimizer([1000], [0.01, 0.001], 0.9)
    optimizer.build(model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]
    batch = make_batch()
    batch = dict(batch, images=tf.cast(batch["images"], dtype))
    out = train_step(model, optimizer, batch, (1.0, 1.0), OHEMParams(), 0.35, WEIGHT_DECAY)
    return out, model, optimizer, before, [v.numpy() for v in model.trainable_variables]


def test_mixed_precision_step_is_close_to_float32_and_keeps_float32_variables():
    # The trainer's mixed-precision type: bfloat16 on CPU, float16 on GPU; the step below runs in
    # bfloat16 either way.
    assert compute_dtype(True) == (tf.float16 if tf.config.list_physical_devices("GPU") else tf.bfloat16)
    dtype = tf.bfloat16
    out32, _, _, before32, after32 = one_step(tf.float32)
    out16, model16, optimizer16, before16, after16 = one_step(dtype)
    for a, b in zip(before32, before16):
        np.testing.assert_array_equal(a, b)  # the same starting weights
    assert int(out16["num_matches"]) == int(out32["num_matches"]) > 0
    # Measured (this CPU, seed 7): relative differences 7e-4 (total), 2.8e-3 (localization),
    # 1.3e-3 (classification). bfloat16 keeps 8 significant bits (a relative step of
    # 2^-8 = 3.9e-3); the losses are sums over hundreds of mined anchors whose rounding errors
    # mostly cancel, so 1e-2 (~2.5 bfloat16 steps, ~4x the worst measured) is the tolerance.
    for key in ("total_loss", "localization_loss", "classification_loss"):
        value = float(out16[key])
        assert np.isfinite(value), key
        assert value != float(out32[key]), f"{key}: bit-identical, so bfloat16 was not used"
        assert value == pytest.approx(float(out32[key]), rel=1e-2), key
    # The weight decay is computed on the float32 kernels: the same in both.
    assert float(out16["regularization_loss"]) == pytest.approx(float(out32["regularization_loss"]), rel=1e-6)
    # Every variable (weights, batch-norm statistics, optimizer slots) stays float32.
    assert {v.dtype for v in model16.variables} == {tf.float32}
    slots = [v for v in optimizer16.variables if v is not optimizer16.iterations]
    assert len(slots) >= len(model16.trainable_variables)  # a momentum per weight, at least
    assert {str(v.dtype) for v in slots} == {"float32"}
    # The update is the float32 one up to bfloat16 gradient noise. Measured: cosine 0.95
    # (per-variable relative differences up to ~0.5 for the small BN gradients of early layers,
    # which go back through many bfloat16 convolutions); 0.8 still fails a missing, partial or
    # sign-flipped update.
    delta32 = np.concatenate([(a - b).ravel() for a, b in zip(after32, before32)])
    delta16 = np.concatenate([(a - b).ravel() for a, b in zip(after16, before16)])
    assert np.all(np.isfinite(delta16))
    cosine = delta32 @ delta16 / (np.linalg.norm(delta32) * np.linalg.norm(delta16))
    assert cosine > 0.8
    assert np.linalg.norm(delta16) == pytest.approx(np.linalg.norm(delta32), rel=0.2)
    # ... and the network really ran in bfloat16 (not float32 on bfloat16-rounded images).
    padded = tf.cast(make_batch()["images"], dtype)  # 128x128: already a multiple of 128
    maps = model16.feature_extractor(padded, training=True)
    encodings, logits, _, _ = model16.raw_outputs(padded, training=True)
    assert {m.dtype for m in maps} | {encodings.dtype, logits.dtype} == {tf.bfloat16}


def test_the_learning_rate_schedule_piecewise_or_constant():
    import numpy as np
    stepped = make_optimizer([2], [0.01, 0.001], 0.9)
    constant = make_optimizer([], [0.0003], 0.9)
    variable = tf.Variable([1.0])
    for optimizer in (stepped, constant):
        optimizer.build([variable])
    rates = []
    for _ in range(4):
        rates.append((float(stepped.learning_rate), float(constant.learning_rate)))
        for optimizer in (stepped, constant):
            optimizer.apply_gradients([(tf.constant([0.0]), variable)])
    # (Keras: the first rate holds while step <= boundary)
    np.testing.assert_allclose(rates, [(0.01, 0.0003), (0.01, 0.0003), (0.01, 0.0003), (0.001, 0.0003)], rtol=1e-6)
