"""The network of a frozen FaceBoxes graph (.pb) as a LiteRT model (.tflite), for XNNPACK and edge runtimes.

The `.tflite` holds the convolutional network only: from the image to the prediction heads'
outputs (the last convolutions, bias added). Anchors, box decoding, scores and NMS stay in
the `.pb`: `face_detector.FaceDetector` runs the `.tflite` with LiteRT and feeds its outputs
into the rest of the frozen graph, so the boxes and scores are the frozen graph's, up to float
rounding (tested). The cut is found in the graph (it is not tied to one model): every
convolution from which no other convolution is reached is a head.

Interface of the `.tflite` (signature-free, one subgraph):
    input `image_tensor`: uint8 [1, H, W, 3] RGB, H and W multiples of PAD_MULTIPLE (128): the
        image zero-padded on the bottom and right, which is what the frozen graph does itself.
    outputs: float32 [1, H / stride, W / stride, channels], one per head, named in the
        metadata below by the frozen graph's tensor they stand for.
Resize the input (`Interpreter.resize_tensor_input`) to each padded size: with the padding
done outside, the graph holds no shape arithmetic, so every tensor gets a static shape and
XNNPACK takes the whole network.

Metadata: the model's metadata entry METADATA_NAME holds a UTF-8 JSON object with
`format` (FORMAT_VERSION), `source_pb_sha256` (the sha256 of the `.pb` file's bytes it was
made from: FaceDetector never uses a `.tflite` made from another `.pb`), `input`,
`pad_multiple` and `outputs`: {the `.tflite` output tensor name: the frozen graph's tensor}.

Rewrites for XNNPACK (each the same values up to float rounding, checked at export against the
frozen graph by `match_outputs`):
  - conv1: the frozen graph computes its CReLU pair with a doubled kernel [W, -W] (a gain in
    bfloat16 in TensorFlow); here it is 24 filters and relu(concat(max_pool(y), max_pool(-y))),
    which XNNPACK runs in ~0.6x of the doubled kernel's time (bench/bench_conv1.py).
  - conv1's 'SAME' border, padded with the raw value 127.5 (which normalises to 0), becomes a
    subtraction and a zero pad that XNNPACK folds into the convolution (a non-zero pad runs
    outside XNNPACK): ~0.8x of the network's time at 1024x768.
  - the padding to PAD_MULTIPLE, zero once the input is padded, is dropped; the inception
    modules' SplitV becomes strided slices, so XNNPACK takes the network as one partition.
"""
import json
import logging

import numpy as np
import tensorflow as tf

# Where FaceDetector looks for the .tflite and the sha256 it checks: face_detector.py's own.
from face_detector import _file_sha256 as sha256_of_file  # noqa: E402
from face_detector import tflite_path_for  # noqa: E402
from src.atomic_io import write_bytes_atomic
from src.export import NODE_NAMES, OUTPUT_KEYS

logger = logging.getLogger(__name__)

# The input of the .tflite is padded to multiples of this (anchor_generator.PAD_MULTIPLE, the
# upstream's padding to its coarsest stride).
PAD_MULTIPLE = 128
METADATA_NAME = "faceboxes"
FORMAT_VERSION = 1
_IMPORT_SCOPE = "import"
_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
# Ops whose output depends only on their input's shape.
_SHAPE_OPS = ("Shape", "ShapeN", "Size", "Rank")
# Padded input sizes (height, width) at which the network's shape-only values are computed:
# they must agree to become constants of the .tflite.
_PROBE_SIZES = ((PAD_MULTIPLE, PAD_MULTIPLE), (2 * PAD_MULTIPLE, 3 * PAD_MULTIPLE),
                (3 * PAD_MULTIPLE, 2 * PAD_MULTIPLE))
# Image sizes (height, width) on which export checks the .tflite against the frozen graph:
# one needs padding, one does not.
_CHECK_SIZES = ((200, 300), (256, 128))
# Largest |difference| allowed between the .tflite's head outputs and the frozen graph's,
# relative to the largest |output|: float32 rounding of a different summation order gives
# ~1e-6 (measured ~4e-6 on the shipped model).
CHECK_TOLERANCE = 1e-4


class TfliteExportError(ValueError):
    """The graph cannot be cut or converted as this module expects (the message says why)."""


def _source(name):
    """'node' of an input string 'node', 'node:k' or '^node'."""
    return name.lstrip("^").split(":")[0]


def _tensor(name):
    """'node:k' of an input string 'node' or 'node:k'."""
    return name if ":" in name else name + ":0"


def head_tensors(graph_def):
    """The frozen graph's head outputs: where the `.tflite` ends.

    A head is a convolution from which no other convolution is reached; its output is taken
    after its BiasAdd when that is its only consumer.

    Args:
        graph_def: tf.compat.v1.GraphDef of a FaceBoxes inference graph.

    Returns:
        list of tensor names 'node:0', in the graph's node order.

    Raises:
        TfliteExportError: the graph has no convolution.
    """
    nodes = {node.name: node for node in graph_def.node}
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(_source(name), []).append(node.name)
    reaches_conv = {}

    def leads_to_conv(start):
        seen, stack = set(), list(consumers.get(start, ()))
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if nodes[name].op in _CONV_OPS or reaches_conv.get(name):
                return True
            stack.extend(consumers.get(name, ()))
        return False

    heads = []
    for node in graph_def.node:
        if node.op not in _CONV_OPS:
            continue
        reaches_conv[node.name] = leads_to_conv(node.name)
        if not reaches_conv[node.name]:
            users = consumers.get(node.name, [])
            bias_add = len(users) == 1 and nodes[users[0]].op == "BiasAdd"
            heads.append((users[0] if bias_add else node.name) + ":0")
    if not heads:
        raise TfliteExportError("the graph has no convolution: not a FaceBoxes network")
    return heads


def _image_dependent(graph_def, input_name):
    """Names of the nodes whose values depend on the input image's values (not only its shape)."""
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            if not name.startswith("^"):
                consumers.setdefault(_source(name), []).append(node)
    dependent, stack = set(), [input_name]
    while stack:
        name = stack.pop()
        if name in dependent:
            continue
        dependent.add(name)
        stack.extend(node.name for node in consumers.get(name, ()) if node.op not in _SHAPE_OPS)
    return dependent


def network_part(graph_def, input_name, heads):
    """The network: the image-dependent nodes the heads need, and what else they read.

    Args:
        graph_def: tf.compat.v1.GraphDef.
        input_name: the image placeholder's name.
        heads: tensor names, see `head_tensors`.

    Returns:
        (set of node names, sorted list of tensor names computed from the image's shape alone
        (padding amounts and the like) that those nodes read).
    """
    nodes = {node.name: node for node in graph_def.node}
    dependent = _image_dependent(graph_def, input_name)
    part, shape_inputs, stack = set(), set(), [_source(name) for name in heads]
    while stack:
        name = stack.pop()
        if name in part:
            continue
        part.add(name)
        for tensor in nodes[name].input:
            if tensor.startswith("^"):
                continue
            source = _source(tensor)
            if source in dependent:
                stack.append(source)
            elif nodes[source].op != "Const":
                shape_inputs.add(_tensor(tensor))
    return part, sorted(shape_inputs)


def _wrap(graph_def):
    """tf.compat.v1.wrap_function importing `graph_def`, and a lookup of its tensors by name."""
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.compat.v1.import_graph_def(graph_def, name=_IMPORT_SCOPE), [])
    return wrapped, lambda name: wrapped.graph.get_tensor_by_name(f"{_IMPORT_SCOPE}/{_tensor(name)}")


def _const_node(name, value):
    node = tf.compat.v1.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return node


def freeze_shape_inputs(graph_def, input_name, part, shape_inputs):
    """`graph_def` with the network's shape-only inputs replaced by constants.

    For inputs padded to multiples of PAD_MULTIPLE they do not depend on the size (the padding
    to add is zero, conv1's 'SAME' borders are the same): they are computed at _PROBE_SIZES
    and must agree.

    Raises:
        TfliteExportError: a value differs between the probe sizes.
    """
    if not shape_inputs:
        return graph_def
    wrapped, tensor = _wrap(graph_def)
    values_of = wrapped.prune(feeds=tensor(input_name), fetches=[tensor(name) for name in shape_inputs])
    probes = [[value.numpy() for value in values_of(tf.zeros([1, height, width, 3], tf.uint8))]
              for height, width in _PROBE_SIZES]
    for name, values in zip(shape_inputs, zip(*probes)):
        if any(not np.array_equal(values[0], other) for other in values[1:]):
            raise TfliteExportError(f"{name} depends on the input size even for sizes that are multiples of "
                                    f"{PAD_MULTIPLE}: the network cannot run on a padded input")
    frozen = tf.compat.v1.GraphDef()
    frozen.CopyFrom(graph_def)
    replacement = {}
    for k, (name, value) in enumerate(zip(shape_inputs, probes[0])):
        replacement[name] = f"tflite_export/shape_value_{k}"
        frozen.node.append(_const_node(replacement[name], value))
    for node in frozen.node:
        if node.name in part:
            for k, tensor in enumerate(node.input):
                if not tensor.startswith("^") and _tensor(tensor) in replacement:
                    node.input[k] = replacement[_tensor(tensor)]
    return frozen


def _const_value(node):
    return tf.make_ndarray(node.attr["value"].tensor) if node.op == "Const" else None


def undouble_conv1(graph_def, part):
    """Rewrites a doubled CReLU convolution of the network back to half the filters.

    Pattern: Conv2D with a constant kernel [..., 2c] = [W, -W] -> BiasAdd with a constant
    bias [b, -b] -> Relu -> MaxPool, each the only consumer of the previous. It becomes
    Conv2D(W) -> BiasAdd(b) = y; relu(concat(max_pool(y), max_pool(-y))): the same values up
    to float rounding (max pooling commutes with ReLU; max_pool(-y) pools the negated values).

    Args:
        graph_def: tf.compat.v1.GraphDef (not modified).
        part: the network's node names (see `network_part`); only those are rewritten.

    Returns:
        (new graph_def, number of convolutions rewritten).
    """
    rewritten = tf.compat.v1.GraphDef()
    rewritten.CopyFrom(graph_def)
    nodes = {node.name: node for node in rewritten.node}
    consumers = {}
    for node in rewritten.node:
        for name in node.input:
            consumers.setdefault(_source(name), []).append(nodes[node.name])

    def only_consumer(name, op):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op == op else None

    count = 0
    for conv in [node for node in rewritten.node if node.name in part and node.op == "Conv2D"]:
        bias_add = only_consumer(conv.name, "BiasAdd")
        relu = bias_add and only_consumer(bias_add.name, "Relu")
        pool = relu and only_consumer(relu.name, "MaxPool")
        if pool is None:
            continue
        kernel = _const_value(nodes[_source(conv.input[1])])
        bias = _const_value(nodes[_source(bias_add.input[1])])
        if kernel is None or bias is None or kernel.shape[-1] % 2:
            continue
        half = kernel.shape[-1] // 2
        if not (np.array_equal(kernel[..., half:], -kernel[..., :half])
                and np.array_equal(bias[half:], -bias[:half])):
            continue
        prefix = f"tflite_export/undoubled_{count}"
        rewritten.node.extend([_const_node(prefix + "/kernel", kernel[..., :half]),
                               _const_node(prefix + "/bias", bias[:half])])
        conv.input[1], bias_add.input[1] = prefix + "/kernel", prefix + "/bias"
        negated = rewritten.node.add(name=prefix + "/neg", op="Neg", input=[bias_add.name])
        negated.attr["T"].CopyFrom(bias_add.attr["T"])
        negated_pool = rewritten.node.add(name=prefix + "/neg_pool", op="MaxPool", input=[negated.name])
        for key, value in pool.attr.items():
            negated_pool.attr[key].CopyFrom(value)
        axis = rewritten.node.add(name=prefix + "/axis", op="Const")
        axis.CopyFrom(_const_node(axis.name, np.array(-1, np.int32)))
        # The ReLU goes after the pooling: pool <- BiasAdd, relu <- concat(pool, neg_pool).
        pool.input[0] = bias_add.name
        concat = rewritten.node.add(name=prefix + "/concat", op="ConcatV2",
                                    input=[pool.name, negated_pool.name, axis.name])
        concat.attr["N"].i = 2
        concat.attr["T"].CopyFrom(bias_add.attr["T"])
        concat.attr["Tidx"].type = tf.int32.as_datatype_enum
        for user in consumers.get(pool.name, []):
            for k, name in enumerate(user.input):
                if _source(name) == pool.name and not name.startswith("^"):
                    user.input[k] = relu.name
        relu.input[0] = concat.name
        count += 1
    return rewritten, count


def _graph_index(graph_def):
    """({name: node}, {node name: [consumer nodes]}) of `graph_def` (data and control inputs)."""
    nodes = {node.name: node for node in graph_def.node}
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(_source(name), []).append(node)
    return nodes, consumers


def drop_zero_pads(graph_def, part):
    """`graph_def` with the network's Pad / PadV2 by constant zero amounts made Identity ops.

    With the input padded outside, the frozen graph's own padding to PAD_MULTIPLE adds
    nothing, but LiteRT would still copy the image through it (outside XNNPACK).

    Returns:
        (new graph_def, number of pads removed).
    """
    rewritten = tf.compat.v1.GraphDef()
    rewritten.CopyFrom(graph_def)
    nodes, _ = _graph_index(rewritten)
    count = 0
    for node in rewritten.node:
        if node.name not in part or node.op not in ("Pad", "PadV2"):
            continue
        amounts = _const_value(nodes[_source(node.input[1])])
        if amounts is None or np.any(amounts):
            continue
        data_type = node.attr["T"].type
        del node.input[1:]
        node.op = "Identity"
        for key in list(node.attr):
            del node.attr[key]
        node.attr["T"].type = data_type
        count += 1
    return rewritten, count


def split_to_slices(graph_def, part):
    """`graph_def` with the network's SplitV ops (constant sizes and axis) made Slice ops.

    The inception modules split one fused 1x1 convolution into their paths; XNNPACK runs
    SLICE but not SPLIT_V, which would cut the network into four delegate partitions. Slices
    copy the same values.

    Returns:
        (new graph_def, number of SplitV ops replaced).
    """
    rewritten = tf.compat.v1.GraphDef()
    rewritten.CopyFrom(graph_def)
    nodes, consumers = _graph_index(rewritten)
    count = 0
    for split in [node for node in rewritten.node if node.name in part and node.op == "SplitV"]:
        sizes = _const_value(nodes[_source(split.input[1])])
        axis = _const_value(nodes[_source(split.input[2])])
        if sizes is None or axis is None or np.any(sizes < 0) or int(axis) != -1:
            continue
        slices = []
        offset = 0
        for k, size in enumerate(sizes.tolist()):
            prefix = f"{split.name}/slice_{k}"
            rewritten.node.extend([_const_node(prefix + "/begin", np.array([0, 0, 0, offset], np.int32)),
                                   _const_node(prefix + "/end", np.array([0, 0, 0, offset + size], np.int32)),
                                   _const_node(prefix + "/strides", np.array([1, 1, 1, 1], np.int32))])
            node = rewritten.node.add(name=prefix, op="StridedSlice",
                                      input=[split.input[0], prefix + "/begin", prefix + "/end", prefix + "/strides"])
            node.attr["T"].CopyFrom(split.attr["T"])
            node.attr["Index"].type = tf.int32.as_datatype_enum
            # Whole batch, rows and columns: the masks take those dimensions' full range.
            node.attr["begin_mask"].i = node.attr["end_mask"].i = 0b0111
            for key in ("ellipsis_mask", "new_axis_mask", "shrink_axis_mask"):
                node.attr[key].i = 0
            slices.append(prefix)
            offset += size
        for user in consumers.get(split.name, []):
            for k, name in enumerate(user.input):
                if _source(name) == split.name and not name.startswith("^"):
                    output = int(name.split(":")[1]) if ":" in name else 0
                    user.input[k] = slices[output]
        count += 1
    return rewritten, count


def zero_pad_conv_input(graph_def, part):
    """Rewrites PadV2(x, p, c) -> Conv2D('VALID') -> BiasAdd to zero padding of x - c.

    conv(pad(x, c)) + b = conv(pad(x - c, 0)) + b + c * sum(kernel): exact in real numbers
    (every window sums c * kernel over its padded and unpadded taps alike), float rounding
    otherwise. XNNPACK runs the subtraction and a zero pad (folded into the convolution),
    not a pad by a non-zero value. The frozen graph pads conv1's raw input by 127.5, the raw
    value that normalises to 0.

    Returns:
        (new graph_def, number of convolutions rewritten).
    """
    rewritten = tf.compat.v1.GraphDef()
    rewritten.CopyFrom(graph_def)
    nodes, consumers = _graph_index(rewritten)
    count = 0
    for pad in [node for node in rewritten.node if node.name in part and node.op == "PadV2"]:
        users = consumers.get(pad.name, [])
        conv = users[0] if len(users) == 1 and users[0].op == "Conv2D" else None
        bias_users = consumers.get(conv.name, []) if conv is not None else []
        bias_add = bias_users[0] if len(bias_users) == 1 and bias_users[0].op == "BiasAdd" else None
        value = _const_value(nodes[_source(pad.input[2])])
        if bias_add is None or value is None or conv.attr["padding"].s != b"VALID":
            continue
        kernel = _const_value(nodes[_source(conv.input[1])])
        bias = _const_value(nodes[_source(bias_add.input[1])])
        if kernel is None or bias is None:
            continue
        prefix = f"{pad.name}/zero_padded"
        shift = np.asarray(value, kernel.dtype)
        corrected = (bias.astype(np.float64) + float(shift) * kernel.astype(np.float64).sum(axis=(0, 1, 2)))
        rewritten.node.extend([_const_node(prefix + "/value", shift),
                               _const_node(prefix + "/bias", corrected.astype(bias.dtype))])
        shifted = rewritten.node.add(name=prefix + "/shifted", op="Sub", input=[pad.input[0], prefix + "/value"])
        shifted.attr["T"].CopyFrom(pad.attr["T"])
        paddings = pad.input[1]
        pad.op = "Pad"
        del pad.input[:]
        pad.input.extend([shifted.name, paddings])
        bias_add.input[1] = prefix + "/bias"
        count += 1
    return rewritten, count


def convert_network(graph_def, input_name, heads):
    """Converts the image -> heads part of `graph_def` (shape-only inputs already constant).

    Returns:
        bytes, the .tflite flatbuffer (input uint8 [1, -1, -1, 3], one float32 output per head).
    """
    wrapped, tensor = _wrap(graph_def)
    network = wrapped.prune(feeds=tensor(input_name), fetches=[tensor(name) for name in heads])
    function = tf.function(lambda image: network(image),
                           input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name=input_name)])
    concrete = function.get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], function).convert()


def _padded(image):
    """uint8 [1, H, W, 3] -> zero-padded on the bottom and right to multiples of PAD_MULTIPLE."""
    height, width = image.shape[1:3]
    pad_h, pad_w = -height % PAD_MULTIPLE, -width % PAD_MULTIPLE
    return np.pad(image, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])


def match_outputs(content, graph_def, input_name, heads, interpreter_class):
    """Runs the .tflite and the frozen graph on test images; maps .tflite outputs to heads.

    Args:
        content: bytes, the .tflite.
        graph_def: the original frozen graph.
        input_name: the image placeholder.
        heads: the head tensor names.
        interpreter_class: a LiteRT Interpreter class (ai_edge_litert.interpreter.Interpreter).

    Returns:
        (dict {.tflite output name: head tensor name}, the largest relative difference seen).

    Raises:
        TfliteExportError: an output matches no head, or the values differ by more than
            CHECK_TOLERANCE.
    """
    wrapped, tensor = _wrap(graph_def)
    reference = wrapped.prune(feeds=tensor(input_name), fetches=[tensor(name) for name in heads])
    interpreter = interpreter_class(model_content=content)
    index = interpreter.get_input_details()[0]["index"]
    rng = np.random.default_rng(0)
    mapping, worst = None, 0.0
    for height, width in _CHECK_SIZES:
        image = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
        want = [value.numpy() for value in reference(tf.constant(image))]
        padded = _padded(image)
        interpreter.resize_tensor_input(index, padded.shape, strict=False)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, padded)
        interpreter.invoke()
        got = {detail["name"]: interpreter.get_tensor(detail["index"])
               for detail in interpreter.get_output_details()}
        found = {}
        for head, value in zip(heads, want):
            scale = max(float(np.abs(value).max()), 1e-6)
            for name, output in got.items():
                if output.shape == value.shape and name not in found.values():
                    difference = float(np.abs(output - value).max()) / scale
                    if difference <= CHECK_TOLERANCE:
                        found[head] = name
                        worst = max(worst, difference)
                        break
            if head not in found:
                raise TfliteExportError(f"the .tflite's outputs do not reproduce the graph's {head} at "
                                        f"{width}x{height} (no output within {CHECK_TOLERANCE:g})")
        by_output = {name: head for head, name in found.items()}
        if mapping is not None and by_output != mapping:
            raise TfliteExportError("the .tflite's outputs map to the heads differently at different sizes")
        mapping = by_output
    return mapping, worst


def add_metadata(content, metadata):
    """Returns the .tflite `content` with a metadata entry METADATA_NAME holding JSON `metadata`."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415
    from tensorflow.lite.tools import flatbuffer_utils  # noqa: PLC0415
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata, sort_keys=True).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(content):
    """The JSON object in a .tflite's METADATA_NAME entry, or None when it has none."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415
    model = schema.Model.GetRootAs(content, 0)
    for k in range(model.MetadataLength()):
        entry = model.Metadata(k)
        if entry.Name() == METADATA_NAME.encode():
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode("utf-8"))
    return None


def tflite_from_graph_def(graph_def, source_sha256, interpreter_class):
    """The .tflite bytes (with metadata) of a frozen graph's network; see the module docstring.

    Args:
        graph_def: tf.compat.v1.GraphDef with the nodes of `src.export.NODE_NAMES`.
        source_sha256: hex sha256 of the .pb file's bytes, recorded in the metadata.
        interpreter_class: a LiteRT Interpreter class, to check the result.

    Returns:
        (bytes, dict of facts for the log: heads, rewrites (counts by name), relative_difference:
        the largest head difference to the frozen graph relative to the head's largest value).

    Raises:
        TfliteExportError: see head_tensors, freeze_shape_inputs, match_outputs.
    """
    input_name = NODE_NAMES["input"]
    names = {node.name for node in graph_def.node}
    missing = [name for name in [input_name] + [NODE_NAMES[key] for key in OUTPUT_KEYS] if name not in names]
    if missing:
        raise TfliteExportError(f"the graph lacks the node(s) {', '.join(missing)}")
    heads = head_tensors(graph_def)
    part, shape_inputs = network_part(graph_def, input_name, heads)
    network = freeze_shape_inputs(graph_def, input_name, part, shape_inputs)
    rewrites = {}
    for rewrite in (undouble_conv1, drop_zero_pads, split_to_slices, zero_pad_conv_input):
        network, rewrites[rewrite.__name__] = rewrite(network, part)
    content = convert_network(network, input_name, heads)
    mapping, worst = match_outputs(content, graph_def, input_name, heads, interpreter_class)
    metadata = {"format": FORMAT_VERSION, "source_pb_sha256": source_sha256, "input": input_name,
                "pad_multiple": PAD_MULTIPLE, "outputs": mapping}
    return add_metadata(content, metadata), {"heads": len(heads), "rewrites": rewrites,
                                             "relative_difference": worst}


def export_tflite(pb_path, tflite_path=None):
    """Writes the .tflite of a frozen graph's network, atomically; see the module docstring.

    Args:
        pb_path: str, the frozen graph (.pb).
        tflite_path: str or None (default: `tflite_path_for(pb_path)`).

    Returns:
        (tflite_path, dict of facts: heads, rewrites, relative_difference, size_bytes).

    Raises:
        ImportError: ai_edge_litert is not installed (needed to check the result).
        TfliteExportError, ValueError, OSError: the graph cannot be read or converted.
    """
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    from src.frozen_graph import read_graph_def  # noqa: PLC0415
    tflite_path = tflite_path or tflite_path_for(pb_path)
    graph_def = read_graph_def(pb_path)
    content, facts = tflite_from_graph_def(graph_def, sha256_of_file(pb_path), Interpreter)
    write_bytes_atomic(tflite_path, content)
    facts["size_bytes"] = len(content)
    logger.info("wrote %s (%d bytes) from %s: %d heads, rewrites %s, outputs within %.1e of the graph's",
                tflite_path, len(content), pb_path, facts["heads"], facts["rewrites"],
                facts["relative_difference"])
    return tflite_path, facts
