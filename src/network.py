"""The FaceBoxes feature extractor (RDCL + MSCL) as plain tf.Modules.

Layout NHWC, float32. Every convolution is 'SAME' padded, has no bias and is followed by batch
norm (momentum 0.9, epsilon 0.001, scale and centre), then an activation: CReLU for conv1 and
conv2, ReLU elsewhere (the upstream's src/network.py).

At inference (`training=False`) batch norm is folded into the convolution (kernel scaled, a
bias added), which is exact and saves a pass over every activation.

Every module exposes `named_variables()`: a dict from the upstream TF1 checkpoint name
(`conv1/weights`, `conv1/batch_norm/gamma`, ...) to our variable, so checkpoints convert by name.
"""
import tensorflow as tf

BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-3


def glorot_uniform(shape, seed=None):
    """Glorot/Xavier uniform initial values for a conv kernel of shape [kh, kw, cin, cout]."""
    kh, kw, cin, cout = shape
    limit = (6.0 / ((cin + cout) * kh * kw)) ** 0.5
    if seed is None:
        return tf.random.uniform(shape, -limit, limit)
    return tf.random.stateless_uniform(shape, seed=[seed, 0], minval=-limit, maxval=limit)


class ConvBN(tf.Module):
    """A bias-free convolution followed by batch norm.

    Args:
        scope: the upstream variable scope, e.g. 'inception1/conv_1x1_path1'.
        kernel_size: int, square kernel.
        in_channels, out_channels: ints.
        stride: int.
        seed: optional int for deterministic initialisation.
    """

    def __init__(self, scope, kernel_size, in_channels, out_channels, stride=1, seed=None):
        super().__init__(name=scope.replace("/", "_"))
        self.scope = scope
        self.stride = stride
        self.kernel = tf.Variable(
            glorot_uniform([kernel_size, kernel_size, in_channels, out_channels], seed), name="weights")
        self.gamma = tf.Variable(tf.ones([out_channels]), name="gamma")
        self.beta = tf.Variable(tf.zeros([out_channels]), name="beta")
        # ON_READ + MEAN: each replica updates its own copy; reads average them (tf.distribute).
        stats = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                     aggregation=tf.VariableAggregation.MEAN)
        self.moving_mean = tf.Variable(tf.zeros([out_channels]), name="moving_mean", **stats)
        self.moving_variance = tf.Variable(tf.ones([out_channels]), name="moving_variance", **stats)
        # True: training normalises with the moving statistics and leaves them as they are (see
        # freeze_batch_norm_statistics); gamma, beta and the kernel still learn.
        self.frozen_statistics = False

    def named_variables(self):
        """Dict from upstream checkpoint name to variable."""
        return {
            f"{self.scope}/weights": self.kernel,
            f"{self.scope}/batch_norm/gamma": self.gamma,
            f"{self.scope}/batch_norm/beta": self.beta,
            f"{self.scope}/batch_norm/moving_mean": self.moving_mean,
            f"{self.scope}/batch_norm/moving_variance": self.moving_variance,
        }

    def folded(self):
        """Kernel and bias with inference batch norm folded in.

        Returns:
            kernel: float32 [kh, kw, cin, cout]; bias: float32 [cout].
        """
        scale = self.gamma * tf.math.rsqrt(self.moving_variance + BATCH_NORM_EPSILON)
        return self.kernel * scale, self.beta - self.moving_mean * scale

    def affine_input_call(self, raw, input_scale, input_offset, with_negation=False):
        """Inference on `raw` images whose input to this layer is input_scale * raw + input_offset.

        The affine map is folded into the kernel and bias (kernel * input_scale, bias +
        input_offset * sum of the kernel over kh, kw, cin), which saves a pass over the input.
        'SAME' zero padding of the mapped input becomes explicit padding of `raw` with the raw
        value that maps to zero, -input_offset / input_scale, followed by a 'VALID'
        convolution: the result equals `self(input_scale * raw + input_offset, False)` up to
        rounding, borders included.

        Args:
            raw: float [B, H, W, cin] (float32 or bfloat16).
            input_scale, input_offset: Python floats, input_scale != 0.
            with_negation: bool, see `_with_negation`.

        Returns:
            float [B, ceil(H / stride), ceil(W / stride), cout] before activation, raw's dtype
            ([..., 2 * cout] with_negation).
        """
        kernel, bias = self.folded()
        bias = bias + input_offset * tf.reduce_sum(kernel, axis=[0, 1, 2])
        kernel = kernel * input_scale
        if with_negation:
            kernel, bias = _with_negation(kernel, bias)
        shape = tf.shape(raw)
        size = kernel.shape[0]
        paddings = [[0, 0], _same_padding(shape[1], size, self.stride),
                    _same_padding(shape[2], size, self.stride), [0, 0]]
        padded = tf.pad(raw, paddings, constant_values=tf.cast(-input_offset / input_scale, raw.dtype))
        y = tf.nn.conv2d(padded, tf.cast(kernel, raw.dtype), [1, self.stride, self.stride, 1], "VALID")
        return tf.nn.bias_add(y, tf.cast(bias, raw.dtype))

    def __call__(self, x, training, with_negation=False):
        """Args: x: float [B, H, W, cin]; training: bool; with_negation: bool, inference only,
        see `_with_negation`. Returns: float [B, H', W', cout] ([..., 2 * cout] with_negation)
        before activation."""
        strides = [1, self.stride, self.stride, 1]
        if with_negation and training:
            raise ValueError("with_negation is for inference only (training=False)")
        if not training:
            kernel, bias = self.folded()
            if with_negation:
                kernel, bias = _with_negation(kernel, bias)
            return tf.nn.bias_add(tf.nn.conv2d(x, tf.cast(kernel, x.dtype), strides, "SAME"),
                                  tf.cast(bias, x.dtype))
        y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), strides, "SAME")
        if self.frozen_statistics:
            mean, variance = (tf.cast(v, y.dtype) for v in (self.moving_mean, self.moving_variance))
            return tf.nn.batch_normalization(y, mean, variance, tf.cast(self.beta, y.dtype),
                                             tf.cast(self.gamma, y.dtype), BATCH_NORM_EPSILON)
        mean, variance = tf.nn.moments(tf.cast(y, tf.float32), axes=[0, 1, 2])
        y = tf.nn.batch_normalization(y, tf.cast(mean, y.dtype), tf.cast(variance, y.dtype),
                                      tf.cast(self.beta, y.dtype), tf.cast(self.gamma, y.dtype),
                                      BATCH_NORM_EPSILON)
        decay = 1.0 - BATCH_NORM_MOMENTUM
        self.moving_mean.assign_sub(decay * (self.moving_mean - mean))
        self.moving_variance.assign_sub(decay * (self.moving_variance - variance))
        return y


def freeze_batch_norm_statistics(module):
    """Makes every ConvBN inside `module` train with its moving statistics, without updating them.

    For fine-tuning from weights whose statistics came from far more data than the new batches
    (e.g. the upstream's WIDER FACE model): each batch is normalised as at inference, so small or
    unusual batches cannot drag the statistics away; gamma, beta and the kernels still learn.
    Call it before the first training step is traced.

    Args:
        module: a tf.Module (e.g. a FaceBoxes, or one ConvBN).

    Returns:
        int, the number of batch-norm layers frozen.
    """
    layers = [m for m in (module, *module.submodules) if isinstance(m, ConvBN)]
    for layer in layers:
        layer.frozen_statistics = True
    return len(layers)


def _with_negation(kernel, bias):
    """The kernel and bias of a convolution whose output is concat(y, -y), y the original's.

    Negating a kernel and a bias negates every product and sum exactly, so the second half
    is bit for bit -y. CReLU's relu(concat(y, -y)) then becomes this one convolution with
    ReLU fused (measured for conv1, whose 3 input channels make it memory-bound: 0.17 ms
    less per 640x480 image in bfloat16, the same in float32; for conv2 the doubled
    arithmetic costs more than it saves, so conv2 keeps crelu_max_pool).

    Args: kernel: float [kh, kw, cin, cout]; bias: float [cout].
    Returns: kernel [kh, kw, cin, 2 * cout], bias [2 * cout].
    """
    return tf.concat([kernel, -kernel], axis=-1), tf.concat([bias, -bias], axis=0)


def _same_padding(size, kernel_size, stride):
    """[before, after] int32 padding that 'SAME' applies to a dimension of `size` (scalar tensor)."""
    out = (size + stride - 1) // stride
    total = tf.maximum((out - 1) * stride + kernel_size - size, 0)
    return tf.stack([total // 2, total - total // 2])


def crelu_max_pool(x, stride):
    """CReLU then 3x3 max pool: max_pool(relu(concat(x, -x)), stride) on the channel axis.

    [B, H, W, C] -> [B, ceil(H / stride), ceil(W / stride), 2C]. Max pooling works per
    channel and commutes with ReLU (both monotone), so this is computed exactly as
    relu(concat(max_pool(x), max_pool(-x))): the concat and ReLU run on the pooled,
    stride^2 times smaller tensor instead of the full-size one.
    """
    return tf.nn.relu(tf.concat([max_pool(x, stride), max_pool(-x, stride)], axis=-1))


def max_pool(x, stride):
    """3x3 max pool, 'SAME'; x: float [B, H, W, C]."""
    return tf.nn.max_pool2d(x, 3, stride, "SAME")


class Inception(tf.Module):
    """Inception module of the MSCL: concat of four 32-channel paths, 128 channels out.

    Paths: (1) 1x1 conv 32; (2) 3x3 max pool stride 1, 1x1 conv 32; (3) 1x1 conv 24, 3x3 conv
    32; (4) 1x1 conv 24, 3x3 conv 32, 3x3 conv 32. All followed by BN and ReLU.
    """

    def __init__(self, scope, in_channels, seed=None):
        super().__init__(name=scope)
        s = (lambda k: None if seed is None else seed * 10 + k)
        self.path1 = ConvBN(f"{scope}/conv_1x1_path1", 1, in_channels, 32, seed=s(1))
        self.path2 = ConvBN(f"{scope}/conv_1x1_path2", 1, in_channels, 32, seed=s(2))
        self.path3_1x1 = ConvBN(f"{scope}/conv_1x1_path3", 1, in_channels, 24, seed=s(3))
        self.path3_3x3 = ConvBN(f"{scope}/conv_3x3_path3", 3, 24, 32, seed=s(4))
        self.path4_1x1 = ConvBN(f"{scope}/conv_1x1_path4", 1, in_channels, 24, seed=s(5))
        self.path4_3x3 = ConvBN(f"{scope}/conv_3x3_path4", 3, 24, 32, seed=s(6))
        self.path4_3x3_second = ConvBN(f"{scope}/conv_3x3_second_path4", 3, 32, 32, seed=s(7))

    @property
    def layers(self):
        return (self.path1, self.path2, self.path3_1x1, self.path3_3x3,
                self.path4_1x1, self.path4_3x3, self.path4_3x3_second)

    def __call__(self, x, training):
        """Args: x: float [B, H, W, C]. Returns: float [B, H, W, 128]."""
        if training:
            p1 = tf.nn.relu(self.path1(x, training))
            p3 = tf.nn.relu(self.path3_1x1(x, training))
            p4 = tf.nn.relu(self.path4_1x1(x, training))
        else:
            # The three 1x1 convolutions that read x run as one 80-filter convolution.
            folded = [layer.folded() for layer in (self.path1, self.path3_1x1, self.path4_1x1)]
            kernel = tf.concat([k for k, _ in folded], axis=-1)
            bias = tf.concat([b for _, b in folded], axis=-1)
            y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, tf.cast(kernel, x.dtype), 1, "SAME"),
                                          tf.cast(bias, x.dtype)))
            p1, p3, p4 = tf.split(y, [32, 24, 24], axis=-1)
        p2 = tf.nn.relu(self.path2(tf.nn.max_pool2d(x, 3, 1, "SAME"), training))
        p3 = tf.nn.relu(self.path3_3x3(p3, training))
        p4 = tf.nn.relu(self.path4_3x3(p4, training))
        p4 = tf.nn.relu(self.path4_3x3_second(p4, training))
        return tf.concat([p1, p2, p3, p4], axis=-1)


class FeatureExtractor(tf.Module):
    """RDCL + MSCL of FaceBoxes.

    Input: float images [B, H, W, 3] in [0, 1], H and W multiples of 128 (the detector pads).
    Output: three feature maps, strides 32, 64, 128:
        [B, H/32, W/32, 128], [B, H/64, W/64, 256], [B, H/128, W/128, 256].
    """

    def __init__(self, seed=None):
        super().__init__(name="feature_extractor")
        s = (lambda k: None if seed is None else seed * 100 + k)
        self.conv1 = ConvBN("conv1", 7, 3, 24, stride=4, seed=s(1))
        self.conv2 = ConvBN("conv2", 5, 48, 64, stride=2, seed=s(2))
        self.inceptions = [Inception(f"inception{k}", 128, seed=s(2 + k)) for k in (1, 2, 3)]
        self.conv3_1 = ConvBN("conv3_1", 1, 128, 128, seed=s(6))
        self.conv3_2 = ConvBN("conv3_2", 3, 128, 256, stride=2, seed=s(7))
        self.conv4_1 = ConvBN("conv4_1", 1, 256, 128, seed=s(8))
        self.conv4_2 = ConvBN("conv4_2", 3, 128, 256, stride=2, seed=s(9))

    @property
    def layers(self):
        """Every ConvBN in forward order."""
        out = [self.conv1, self.conv2]
        for inception in self.inceptions:
            out.extend(inception.layers)
        return out + [self.conv3_1, self.conv3_2, self.conv4_1, self.conv4_2]

    def named_variables(self):
        names = {}
        for layer in self.layers:
            names.update(layer.named_variables())
        return names

    def __call__(self, images, training, input_range="unit"):
        """Runs the network.

        Args:
            images: float [B, H, W, 3], H and W multiples of 128, with values in the range
                that `input_range` names; the network's input is 2x - 1 of images in [0, 1].
            training: bool.
            input_range: 'unit': images in [0, 1] (padding 0, black); 'normalized': already
                mapped to [-1, 1] (padding -1); 'uint8': pixel values 0..255 as floats
                (padding 0), inference only: the map x * 2/255 - 1 is folded into conv1's
                kernel and bias (see ConvBN.affine_input_call).

        Returns:
            a list of the three feature maps.
        """
        # At inference conv1 computes concat(y, -y) itself (see _with_negation): CReLU is then
        # its fused ReLU, and max pooling commutes with ReLU, so this equals crelu_max_pool.
        if input_range == "uint8":
            if training:
                raise ValueError("input_range='uint8' is for inference only (training=False)")
            x = self.conv1.affine_input_call(images, 2.0 / 255.0, -1.0, with_negation=True)
        elif input_range in ("unit", "normalized"):
            x = images if input_range == "normalized" else 2.0 * images - 1.0
            x = self.conv1(x, True) if training else self.conv1(x, False, with_negation=True)
        else:
            raise ValueError(f"input_range must be 'unit', 'normalized' or 'uint8', got {input_range!r}")
        x = crelu_max_pool(x, 2) if training else max_pool(tf.nn.relu(x), 2)
        x = crelu_max_pool(self.conv2(x, training), 2)
        for inception in self.inceptions:
            x = inception(x, training)
        map0 = x
        x = tf.nn.relu(self.conv3_1(x, training))
        map1 = tf.nn.relu(self.conv3_2(x, training))
        x = tf.nn.relu(self.conv4_1(map1, training))
        map2 = tf.nn.relu(self.conv4_2(x, training))
        return [map0, map1, map2]
