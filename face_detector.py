"""FaceDetector: runs a frozen FaceBoxes inference graph (.pb) on RGB images.

Box convention: returned boxes are float32 [N, 4] in PIXELS of the image passed in, in the
upstream order [ymin, xmin, ymax, xmax]. The graph itself outputs the same order normalized
to [0, 1] of its input image. The shipped model (the upstream's WIDER FACE weights) draws
WIDER FACE's face boxes: from the forehead to the chin, cheek to cheek.

Self-contained on purpose (imports only numpy and TensorFlow): copy this one file next to a
`.pb` into any project. It loads graphs frozen by this project and by the upstream TF 1.10
code alike (v1 control flow, TensorArrayV3 from tf.map_fn, NonMaxSuppressionV3).

Example:
    detector = FaceDetector('model/facebox.pb')
    boxes, scores = detector(rgb_image_uint8, score_threshold=0.5)
    detector = FaceDetector('model/facebox.pb', max_dimension=None)   # every image at full size

Image size: the network's anchors are 32 to 512 px in the pixels of the image it runs on. In a
large image (a 4K frame, a 4000x3000 phone photo) a face filling a good part of the frame is far
larger than the 512 px anchor: it is missed, and parts of it are found as several false faces,
slowly (the cost grows with the pixel count). So by default images whose longer side exceeds
`max_dimension` = DEFAULT_MAX_DIMENSION (1024 px) are downscaled to it first (antialiased), and
the boxes come back in the original pixels: a 16:9 frame is then 576 px high, so a face as tall
as the frame about fits the 512 px anchor (measured on an upscaled astronaut: at 1280 a
1000-px face in a 1080p frame already gave two false boxes, at 1024 none; and 1024 is the
training size of the WIDER recipe). `max_dimension=None` (or 0) turns it off. For small faces
in small images, `min_dimension` upscales instead, up to MAX_UPSCALED_SIDE px on a side.

Precision: `precision='float32'` (the default) runs the graph as frozen, bit for bit.
`'bfloat16'` rewrites this detector's copy of the graph with TensorFlow's oneDNN automatic
mixed precision pass (Grappler's auto_mixed_precision_onednn_bfloat16) before loading it: the
convolutions then run in bfloat16, much faster on CPUs with bfloat16 units (Intel AMX or
AVX512_BF16) and slower on CPUs without them. Only this detector's graph is rewritten; no
process-wide switch is set. `'auto'` chooses bfloat16 when TensorFlow runs on the CPU and
the CPU has AMX-BF16 or AVX512_BF16 (read from /proc/cpuinfo on Linux), float32 otherwise;
the choice is in the `precision` attribute and logged. On CPUs without AVX-512 TensorFlow's
pass leaves the graph in float32; `'bfloat16'` then runs float32 and says so.

Every backend and precision leaves the boxes scoring at or below the call's score_threshold
out of NMS, where the graph's scores are a sigmoid of logits (this project's graphs): they
cannot change the boxes above it, which stay bit for bit the graph's (see add_score_floor).

Backend: `backend='litert'` runs the network from the `.tflite` beside the `.pb` (same name,
written by `create_pb.py --tflite` from this very `.pb`: its sha256 is in the `.tflite`'s
metadata, so a stale or foreign one is refused) with LiteRT's XNNPACK in float32, and the
frozen graph's own decoding and NMS in TensorFlow: the same API, the same boxes and scores to
float rounding, faster than TensorFlow float32 on CPUs without bfloat16 units. It needs the
`ai_edge_litert` package, imported only then. `backend='auto'` (the default) takes it only
with `precision='auto'`: bfloat16 TensorFlow on CPUs with native bfloat16, else LiteRT when
its `.tflite` is there, else TensorFlow float32; the choice is in the `backend` and
`precision` attributes and logged. `'tensorflow'` never uses LiteRT.
"""
import collections
import hashlib
import json
import logging
import os
import threading

import numpy as np
import tensorflow as tf

_LOG = logging.getLogger(__name__)

# The frozen graph's interface (the upstream's names), the one place this file spells them.
_IMPORT_SCOPE = 'import'
_INPUT_NAME = 'image_tensor'  # uint8 [batch, height, width, 3], every dimension free
_OUTPUT_NAMES = ('boxes', 'scores', 'num_boxes')  # [b, max_boxes, 4], [b, max_boxes], [b]

# The default cap on the longer side of the image the network runs on (see the module docstring).
DEFAULT_MAX_DIMENSION = 1024
# min_dimension never upscales an image to a longer side than this (a 1x1000 strip with
# min_dimension=768 would become 768x768000: minutes and gigabytes for nothing).
MAX_UPSCALED_SIDE = 4096

# Images in one graph call at most; bounds memory when detect_batch gets many equal sizes.
DEFAULT_MAX_BATCH_SIZE = 8
# Batch shapes whose shape-only values (padding, anchors: see _LiteRTGraph) are kept; a
# 4000x3000 photo's anchors take ~8 MB (2 x [262k, 4] float32), and recomputing them costs one
# small call.
_MAX_SHAPE_FEEDS = 4

PRECISIONS = ('float32', 'bfloat16', 'auto')
BACKENDS = ('auto', 'tensorflow', 'litert')
# The .tflite's metadata entry (create_pb.py --tflite, src/tflite_export.py) and its format.
_TFLITE_METADATA_NAME = 'faceboxes'
_TFLITE_FORMAT = 1
_LITERT_REQUIREMENT = 'ai-edge-litert==2.3.0'
# TensorFlow's CPU buffer alignment (EIGEN_MAX_ALIGN_BYTES); see _to_tensor.
_TENSOR_ALIGNMENT = 64
_STAGING = threading.local()
# /proc/cpuinfo flags of CPUs with native bfloat16 arithmetic (Intel AMX, AVX-512 BF16).
_BFLOAT16_CPU_FLAGS = ('amx_bf16', 'avx512_bf16')


class FaceDetector:
    """Loads a frozen face-detection graph once and runs it on numpy images.

    Public API: the constructor, `__call__` (one image), `detect_batch` (several), and the
    attributes `model_path`, `precision` and `backend` (what runs the graph, as resolved).
    The graph is imported into a tf.compat.v1.wrap_function and pruned to one concrete
    function whose input accepts any [batch, height, width, 3] uint8 tensor, so a call with a
    new image size never waits for a trace. The optional speed paths (the shape-only part of
    the graph run once per size, bfloat16, LiteRT) are at the end of this file.
    """

    def __init__(self, model_path, gpu_memory_fraction=0.25, visible_device_list='0',
                 min_dimension=None, max_dimension=DEFAULT_MAX_DIMENSION, precision='float32', *,
                 backend='auto'):
        """Loads the graph.

        Args:
            model_path: str, path to a frozen GraphDef (.pb) with input `image_tensor` and
                outputs `boxes`, `scores`, `num_boxes`.
            gpu_memory_fraction: float in (0, 1]. Honoured when a GPU exists and TensorFlow has
                not initialized it yet: TF2 can only cap GPU memory in absolute megabytes, which
                are unknown before initialization, so a fraction below 1 enables memory growth
                (memory is taken as needed instead of all at once); 1 keeps TF's default of
                reserving the whole device. Ignored on CPU.
            visible_device_list: str, comma-separated GPU indices to use, e.g. '0' or '0,1'.
                Applied when a GPU exists and is not initialized yet; ignored on CPU.
            min_dimension: int or None. When set, images whose smaller side is below it are
                upscaled (bilinear) so that side equals it before detection, and boxes are
                mapped back to the original pixels. The upstream advises 768 for small faces.
                An upscale that would make a side longer than MAX_UPSCALED_SIDE (4096) px is
                refused with a ValueError (max_dimension, which wins, avoids it).
            max_dimension: int or None (default DEFAULT_MAX_DIMENSION, 1024). Images whose
                longer side exceeds it are downscaled (antialiased, aspect ratio kept) so that
                side equals it before detection, and boxes are mapped back to the original
                pixels (see the module docstring for why). None or 0 turns it off: a huge
                image then runs at full size, slowly, and faces larger than the network's
                largest anchor (512 px) are missed. It wins over min_dimension when both apply.
            precision: 'float32' (default, the graph as frozen), 'bfloat16' (the graph's
                convolutions rewritten to bfloat16: faster on CPUs with AMX / AVX512_BF16) or
                'auto' (bfloat16 on such CPUs, else float32). The resolved choice is the
                `precision` attribute: 'float32' (with a warning) when 'bfloat16' is asked for
                on a CPU where TensorFlow's bfloat16 pass does not rewrite (no AVX-512).
            backend: 'auto' (default), 'tensorflow' or 'litert' (keyword only): what runs the
                graph. 'litert' runs the network from the `.tflite` beside the `.pb`
                (`tflite_path_for`, made by create_pb.py --tflite from this very `.pb`) with
                LiteRT's XNNPACK in float32, decoding and NMS in TensorFlow: the same boxes and
                scores to float rounding, faster on CPUs without bfloat16. 'auto' does so only
                with precision='auto' on a CPU without native bfloat16 when that `.tflite` is
                there (see `resolve_backend`). The resolved choice is the `backend` attribute.

        Raises:
            FileNotFoundError: `model_path` does not exist.
            IsADirectoryError: `model_path` is a directory.
            TypeError: an argument of the wrong type (the message names it).
            ValueError: the file is not a GraphDef, lacks the expected nodes, or an argument
                is out of range.
            LiteRTUnavailable (a ValueError): backend='litert' and no `.tflite` made from this
                `.pb` beside it.
            ImportError: backend='litert' and ai_edge_litert is not installed.
        """
        if (isinstance(gpu_memory_fraction, bool)
                or not isinstance(gpu_memory_fraction, (int, float, np.integer, np.floating))):
            raise TypeError('gpu_memory_fraction must be a number in (0, 1], got %r'
                            % (gpu_memory_fraction,))
        if not 0.0 < float(gpu_memory_fraction) <= 1.0:
            raise ValueError('gpu_memory_fraction must be in (0, 1], got %r' % gpu_memory_fraction)
        self._min_dimension = _check_dimension('min_dimension', min_dimension)
        self._max_dimension = _check_dimension('max_dimension', max_dimension)
        if precision not in PRECISIONS:
            raise ValueError('precision must be one of %s, got %r' % (', '.join(PRECISIONS), precision))
        if backend not in BACKENDS:
            raise ValueError('backend must be one of %s, got %r' % (', '.join(BACKENDS), backend))
        _configure_gpus(gpu_memory_fraction, visible_device_list)
        graph_def = _read_graph_def(model_path)
        self.model_path = model_path
        self.backend, tflite = resolve_backend(backend, precision, model_path)
        self.precision = 'float32' if tflite else resolve_precision(precision)
        if self.precision == 'bfloat16':
            graph_def, self.precision = _bfloat16_where_supported(graph_def, model_path)
        graph_def, self._floored = add_score_floor(graph_def)
        wrapped, pruned = _prune_graph(graph_def, model_path, self._floored)
        self._litert = (_LiteRTGraph(wrapped, graph_def, shape_frontier(graph_def), *tflite, model_path,
                                     self._floored) if tflite else None)
        # Wrapping the pruned function in a tf.function with an explicit signature gives it
        # a structured signature: calling the pruned function directly first fails to bind
        # and falls back, which costs about 0.6 ms per call (measured on the 2-core CPU).
        # Each takes the score floor last where the graph has one.
        images_spec, size_spec = tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([2], tf.int32)
        floor_specs = [_FLOOR_SPEC] if self._floored else []
        self._detect = _fast_call(tf.function(
            lambda images, *floor: pruned(images, *floor), input_signature=[images_spec] + floor_specs
        ).get_concrete_function())
        self._detect_upscaled = _fast_call(tf.function(
            lambda images, size, *floor: pruned(_resize_uint8(images, size), *floor),
            input_signature=[images_spec, size_spec] + floor_specs
        ).get_concrete_function())
        self._detect_downscaled = _fast_call(tf.function(
            lambda images, size, *floor: pruned(_resize_uint8(images, size, antialias=True), *floor),
            input_signature=[images_spec, size_spec] + floor_specs
        ).get_concrete_function())

    def __call__(self, image, score_threshold=0.5, min_dimension=None, max_dimension=None):
        """Detects faces in one image.

        Args:
            image: uint8 numpy array, RGB [H, W, 3]; grayscale [H, W] or [H, W, 1] and RGBA
                [H, W, 4] are converted (alpha dropped).
            score_threshold: a real number in [0, 1]; detections with score > score_threshold
                are returned (strict, as the upstream FaceDetector).
            min_dimension: int or None, overrides the constructor's min_dimension for this call;
                0 disables upscaling.
            max_dimension: int or None, overrides the constructor's max_dimension for this call;
                0 disables downscaling.

        Returns:
            boxes: float32 [N, 4], pixels of `image` (the original, also when it was resized
                for detection), [ymin, xmin, ymax, xmax].
            scores: float32 [N], in the graph's order (descending for an NMS graph).

        Raises:
            TypeError: `image` is not a numpy array, or `score_threshold` not a real number.
            ValueError: not uint8, empty, wrong number of dimensions or channels; a
                score_threshold outside [0, 1]; a negative min/max_dimension; a min_dimension
                that would upscale beyond MAX_UPSCALED_SIDE pixels on a side.
        """
        rgb = _to_rgb_uint8(image, 'image')
        score_threshold = _check_score_threshold(score_threshold)
        target = self._target_size(rgb.shape, min_dimension, max_dimension)
        boxes, scores, num_boxes = self._run(rgb[np.newaxis], target, score_threshold)  # rgb[None] is a view
        return _select(boxes.numpy()[0], scores.numpy()[0], int(num_boxes.numpy()[0]),
                       score_threshold, rgb.shape)

    def detect_batch(self, images, score_threshold=0.5, min_dimension=None,
                     max_batch_size=DEFAULT_MAX_BATCH_SIZE, max_dimension=None):
        """Detects faces in several images, batching those of equal (network input) size.

        Args:
            images: sequence of uint8 numpy images, each as accepted by __call__; sizes may
                differ.
            score_threshold: float, as for __call__.
            min_dimension: int or None, as for __call__.
            max_batch_size: int >= 1, at most this many images go through the graph at once.
            max_dimension: int or None, as for __call__.

        Returns:
            list of (boxes float32 [N_i, 4] pixels [ymin, xmin, ymax, xmax] of image i,
            scores float32 [N_i]), in the order of `images`.

        Raises:
            TypeError, ValueError: as for __call__ (an invalid image is named by its index),
                or max_batch_size < 1.
        """
        if (isinstance(max_batch_size, bool) or not isinstance(max_batch_size, (int, np.integer))
                or max_batch_size < 1):
            raise ValueError('max_batch_size must be an int >= 1, got %r' % (max_batch_size,))
        score_threshold = _check_score_threshold(score_threshold)
        rgbs = [_to_rgb_uint8(image, 'images[%d]' % i) for i, image in enumerate(images)]
        groups = {}
        for index, rgb in enumerate(rgbs):
            target = self._target_size(rgb.shape, min_dimension, max_dimension)
            key = (rgb.shape[:2], target)
            groups.setdefault(key, []).append(index)
        results = [None] * len(rgbs)
        for (_, target), indices in groups.items():
            for start in range(0, len(indices), max_batch_size):
                chunk = indices[start:start + max_batch_size]
                batch = np.stack([rgbs[i] for i in chunk])  # [b, H, W, 3]
                boxes, scores, num_boxes = self._run(batch, target, score_threshold)
                boxes, scores, num_boxes = boxes.numpy(), scores.numpy(), num_boxes.numpy()
                for row, index in enumerate(chunk):
                    results[index] = _select(boxes[row], scores[row], int(num_boxes[row]),
                                             score_threshold, rgbs[index].shape)
        return results

    def _run(self, batch, target, score_threshold):
        """Runs the graph on uint8 [b, H, W, 3], first resized to `target` unless None.

        Args:
            batch: uint8 [b, H, W, 3].
            target: None, or ((height, width), downscale): the size to resize to, bilinear
                when upscaling, antialiased bilinear when downscaling.
            score_threshold: float, the caller's; rows scoring at or below it may be missing
                from the outputs (left out of NMS, see add_score_floor).

        Returns the graph's eager outputs: boxes float32 [b, max_boxes, 4] normalized,
        scores float32 [b, max_boxes], num_boxes int32 [b].
        """
        floor = (tf.constant(_logit_bound(score_threshold), tf.float32),) if self._floored else ()
        if self._litert is not None:
            if target is not None:
                size, downscale = target
                batch = _resize_uint8(_to_tensor(batch), size, antialias=downscale).numpy()
            return self._litert(batch, floor)
        batch = _to_tensor(batch)
        if target is None:
            return self._detect(batch, *floor)
        size, downscale = target
        detect = self._detect_downscaled if downscale else self._detect_upscaled
        return detect(batch, tf.constant(size, tf.int32), *floor)

    def _target_size(self, shape, min_dimension, max_dimension=None):
        """((height, width), downscale) to resize an image of `shape` to, or None to run it as is.

        min_dimension upscales so the smaller side equals it; max_dimension then caps the
        longer side of the result (downscaling a large original), so it wins when both apply.
        """
        if min_dimension is None:
            min_dimension = self._min_dimension
        else:
            min_dimension = _check_dimension('min_dimension', min_dimension)
        if max_dimension is None:
            max_dimension = self._max_dimension
        else:
            max_dimension = _check_dimension('max_dimension', max_dimension)
        height, width = int(shape[0]), int(shape[1])
        smaller, longer = min(height, width), max(height, width)
        scale, fixed_side, fixed = 1.0, None, None
        if min_dimension and smaller < min_dimension:
            scale, fixed_side, fixed = min_dimension / smaller, smaller, min_dimension
        if max_dimension and longer * scale > max_dimension:
            scale, fixed_side, fixed = max_dimension / longer, longer, max_dimension
        if fixed is None:
            return None
        # The side that sets the scale gets exactly the wanted size; the other is rounded.
        new_height = fixed if height == fixed_side else max(1, int(round(height * scale)))
        new_width = fixed if width == fixed_side else max(1, int(round(width * scale)))
        if scale > 1.0 and max(new_height, new_width) > MAX_UPSCALED_SIDE:
            raise ValueError('min_dimension=%d would upscale this %dx%d image to %dx%d pixels; upscaling '
                             'is refused beyond %d pixels on a side (pass a smaller min_dimension, or a '
                             'max_dimension)' % (min_dimension, width, height, new_width, new_height,
                                                 MAX_UPSCALED_SIDE))
        if (new_height, new_width) == (height, width):
            return None
        return (new_height, new_width), scale < 1.0


# --- Choosing the precision and the backend ---

def cpu_has_native_bfloat16(cpuinfo_path='/proc/cpuinfo'):
    """True if the CPU reports AMX-BF16 or AVX512_BF16 in `cpuinfo_path` (Linux); else False."""
    try:
        with open(cpuinfo_path, 'r', encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[-1].split())
                    return any(flag in flags for flag in _BFLOAT16_CPU_FLAGS)
    except OSError:
        pass
    return False


def resolve_precision(precision, has_native_bfloat16=None):
    """'float32' or 'bfloat16' for a requested precision ('auto' decided here, and logged).

    Args:
        precision: one of PRECISIONS.
        has_native_bfloat16: bool or None; None asks `cpu_has_native_bfloat16()`.

    Raises:
        ValueError: `precision` is not one of PRECISIONS.
    """
    if precision not in PRECISIONS:
        raise ValueError('precision must be one of %s, got %r' % (', '.join(PRECISIONS), precision))
    if precision != 'auto':
        return precision
    if tf.config.list_physical_devices('GPU'):
        choice, reason = 'float32', 'a GPU runs the graph'
    else:
        native = cpu_has_native_bfloat16() if has_native_bfloat16 is None else has_native_bfloat16
        choice = 'bfloat16' if native else 'float32'
        reason = ('the CPU has native bfloat16 (AMX / AVX512_BF16)' if native
                  else 'the CPU has no native bfloat16 (no AMX / AVX512_BF16 flag)')
    _LOG.info('FaceDetector precision auto -> %s: %s', choice, reason)
    return choice


def resolve_backend(backend, precision, model_path, has_native_bfloat16=None):
    """Which runtime runs the detector: 'tensorflow' or 'litert' ('auto' decided here, and logged).

    backend 'auto' with precision 'auto' takes bfloat16 TensorFlow where the CPU has native
    bfloat16 (AMX / AVX512_BF16) and a GPU does not run the graph, else LiteRT float32 when the
    `.tflite` made from this `.pb` lies beside it and ai_edge_litert is installed, else
    TensorFlow float32. With an explicit precision, 'auto' keeps TensorFlow (float32 stays the
    frozen graph bit for bit).

    Args:
        backend: one of BACKENDS.
        precision: one of PRECISIONS.
        model_path: str, the frozen graph (.pb).
        has_native_bfloat16: bool or None; None asks `cpu_has_native_bfloat16()`.

    Returns:
        (backend, (tflite bytes, metadata) for 'litert' else None).

    Raises:
        ValueError: backend 'litert' with precision 'bfloat16'.
        ImportError, LiteRTUnavailable: backend 'litert' and no usable .tflite (see
            load_tflite_for).
    """
    if backend == 'tensorflow' or (backend == 'auto' and precision != 'auto'):
        return 'tensorflow', None
    if backend == 'litert':
        if precision == 'bfloat16':
            raise ValueError("backend 'litert' runs float32; precision 'bfloat16' needs backend "
                             "'tensorflow' (or 'auto')")
        return 'litert', load_tflite_for(model_path)
    tflite = None
    if tf.config.list_physical_devices('GPU'):
        choice, reason = 'tensorflow', 'a GPU runs the graph'
    elif cpu_has_native_bfloat16() if has_native_bfloat16 is None else has_native_bfloat16:
        choice, reason = 'tensorflow', 'the CPU has native bfloat16 (AMX / AVX512_BF16): bfloat16 TensorFlow'
    else:
        try:
            tflite = load_tflite_for(model_path)
            choice, reason = 'litert', ('the CPU has no native bfloat16 and %s belongs to this .pb'
                                        % tflite_path_for(model_path))
        except (ImportError, LiteRTUnavailable) as error:
            choice, reason = 'tensorflow', 'the CPU has no native bfloat16 and LiteRT cannot run: %s' % error
    _LOG.info('FaceDetector backend auto -> %s: %s', choice, reason)
    return choice, tflite


def tflite_path_for(model_path):
    """The `.tflite` that belongs beside a `.pb`: 'model/facebox.pb' -> 'model/facebox.tflite'."""
    stem, extension = os.path.splitext(os.fspath(model_path))
    return (stem if extension == '.pb' else os.fspath(model_path)) + '.tflite'


class LiteRTUnavailable(ValueError):
    """The LiteRT backend cannot run this model: no `.tflite` beside the `.pb`, or not its own."""


# --- Loading the graph ---

def _configure_gpus(gpu_memory_fraction, visible_device_list):
    """Applies the GPU options if a GPU exists and is not initialized yet; logs otherwise."""
    gpus = tf.config.list_physical_devices('GPU')
    if not gpus:
        return
    indices = [int(part) for part in str(visible_device_list).split(',') if part.strip()]
    chosen = [gpus[i] for i in indices if 0 <= i < len(gpus)]
    if not chosen:
        raise ValueError('visible_device_list %r names none of the %d GPUs'
                         % (visible_device_list, len(gpus)))
    try:
        tf.config.set_visible_devices(chosen, 'GPU')
        if gpu_memory_fraction < 1.0:
            for gpu in chosen:
                tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as error:
        _LOG.warning('GPU options not applied, TensorFlow already initialized the GPUs: %s', error)


def _read_graph_def(model_path):
    """Reads a serialized GraphDef from `model_path`."""
    if not isinstance(model_path, (str, bytes, os.PathLike)):
        raise TypeError('model_path must be a path (str), got %r (%s)'
                        % (model_path, type(model_path).__name__))
    if os.path.isdir(model_path):
        raise IsADirectoryError('model path is a directory, not a frozen graph (.pb) file: %s'
                                % model_path)
    if not os.path.isfile(model_path):
        raise FileNotFoundError('model file not found: %s' % model_path)
    graph_def = tf.compat.v1.GraphDef()
    with open(model_path, 'rb') as f:
        data = f.read()
    try:
        graph_def.ParseFromString(data)
    except Exception as error:  # protobuf raises its own DecodeError type
        raise ValueError('%s: not a frozen GraphDef (.pb): %s' % (model_path, error)) from error
    if not graph_def.node:
        raise ValueError('%s: not a frozen GraphDef (.pb): it holds no nodes' % model_path)
    return graph_def


def _prune_graph(graph_def, model_path, floored=False):
    """Imports `graph_def`; returns (the wrapped import, its pruning to image_tensor (and the score
    floor, when `floored`: see add_score_floor) -> (boxes, scores, num_boxes))."""
    node_names = {node.name for node in graph_def.node}
    missing = [name for name in (_INPUT_NAME,) + _OUTPUT_NAMES if name not in node_names]
    if missing:
        raise ValueError('%s: the graph lacks the node(s) %s' % (model_path, ', '.join(missing)))

    def import_graph():
        tf.compat.v1.import_graph_def(graph_def, name=_IMPORT_SCOPE)

    wrapped = tf.compat.v1.wrap_function(import_graph, [])
    _check_interface(wrapped, model_path)
    feeds = [_imported(wrapped, name) for name in (_INPUT_NAME, _SCORE_FLOOR_NAME)[:1 + bool(floored)]]
    return wrapped, wrapped.prune(feeds=feeds, fetches=[_imported(wrapped, name) for name in _OUTPUT_NAMES])


# The interface a graph must have, node: (allowed dtypes, rank, size of the last dimension);
# an unknown rank or dimension in the graph passes (the upstream's graphs leave some free).
_INTERFACE = {
    _INPUT_NAME: (('uint8',), 4, 3),
    'boxes': (('float32',), 3, 4),
    'scores': (('float32',), 2, None),
    'num_boxes': (('int32', 'int64', 'float32'), 1, None),
}


def _check_interface(wrapped, model_path):
    """Raises ValueError naming the file and the node when a node's dtype or shape is not _INTERFACE's."""
    for name, (dtypes, rank, last) in _INTERFACE.items():
        tensor = _imported(wrapped, name)
        shape = tensor.shape
        if tensor.dtype.name not in dtypes:
            raise ValueError('%s: node %s is %s, expected %s: not a FaceBoxes detection graph'
                             % (model_path, name, tensor.dtype.name, ' or '.join(dtypes)))
        if shape.rank is not None and (shape.rank != rank or (last is not None and shape[-1] not in (None, last))):
            expected = '[%s]' % ', '.join(['?'] * (rank - 1) + [str(last) if last else '?'])
            got = '[%s]' % ', '.join('?' if size is None else str(size) for size in shape.as_list())
            raise ValueError('%s: node %s has shape %s, expected %s: not a FaceBoxes detection graph'
                             % (model_path, name, got, expected))


def _imported(wrapped, name):
    """The tensor `name` ('node' or 'node:k') of the graph imported into `wrapped`."""
    return wrapped.graph.get_tensor_by_name(
        '%s/%s' % (_IMPORT_SCOPE, name if ':' in name else name + ':0'))


# --- Images in, boxes out ---

def _to_rgb_uint8(image, what):
    """Validates an image and returns it as uint8 [H, W, 3] (a view when already RGB).

    Args:
        image: numpy array, uint8 [H, W], [H, W, 1], [H, W, 3] or [H, W, 4].
        what: str naming the argument in error messages.

    Raises:
        TypeError: not a numpy array.
        ValueError: with a one-line message naming `what` and the problem.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError('%s must be a numpy array (uint8 RGB [H, W, 3]), got %s; convert with '
                        'np.asarray(...)' % (what, type(image).__name__))
    if image.dtype != np.uint8:
        raise ValueError('%s must be a uint8 array (0..255), got dtype %s; %s'
                         % (what, image.dtype, _uint8_advice(image.dtype)))
    if image.ndim not in (2, 3):
        raise ValueError('%s must have shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got %s'
                         % (what, image.shape))
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError('%s is empty: shape %s' % (what, image.shape))
    if image.ndim == 2:
        return np.repeat(image[:, :, np.newaxis], 3, axis=2)
    channels = image.shape[2]
    if channels == 3:
        return image
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:
        return image[:, :, :3]
    raise ValueError('%s must have 1, 3 or 4 channels, got shape %s' % (what, image.shape))


def _uint8_advice(dtype):
    """How to convert an image of `dtype` to uint8, for the error message."""
    if np.issubdtype(dtype, np.floating):
        return ('convert a float image in [0, 1] with (255 * image).round().astype(np.uint8), '
                'one in [0, 255] with image.round().astype(np.uint8)')
    if dtype == np.uint16:
        return 'convert a 16-bit image with (image >> 8).astype(np.uint8)'
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return ('convert an integer image whose values are in 0..255 with image.astype(np.uint8) '
                '(scale other ranges first)')
    return 'convert it to uint8 RGB values 0..255'


def _is_real_number(value):
    """True for Python and numpy ints and floats (bool excluded)."""
    return (not isinstance(value, (bool, np.bool_))
            and isinstance(value, (int, float, np.integer, np.floating)))


def _check_dimension(name, value):
    """Validates min_dimension / max_dimension: None or an integer >= 0 (0 and None mean off)."""
    if value is None:
        return None
    if not _is_real_number(value):
        raise TypeError('%s must be None or an integer >= 0, got %r (%s)'
                        % (name, value, type(value).__name__))
    if not np.isfinite(value) or int(value) != value or value < 0:
        raise ValueError('%s must be None or an integer >= 0, got %r' % (name, value))
    return int(value)


def _check_score_threshold(score_threshold):
    """Validates score_threshold: a real number in [0, 1]; returns it as a float."""
    if not _is_real_number(score_threshold):
        raise TypeError('score_threshold must be a real number in [0, 1], got %r (%s)'
                        % (score_threshold, type(score_threshold).__name__))
    if not 0.0 <= float(score_threshold) <= 1.0:  # also refuses NaN
        raise ValueError('score_threshold must be in [0, 1], got %r' % score_threshold)
    return float(score_threshold)


def _resize_uint8(images, size, antialias=False):
    """Bilinear resize: uint8 [b, H, W, 3], int32 [2] (height, width) -> uint8 [b, h, w, 3].

    antialias=True (for downscaling) widens the filter to the scale, so no detail aliases.
    """
    resized = tf.image.resize(tf.cast(images, tf.float32), size, method='bilinear',
                              antialias=antialias)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _select(boxes, scores, num_boxes, score_threshold, shape):
    """Keeps one image's valid detections above the threshold and scales them to pixels.

    Args:
        boxes: float32 [max_boxes, 4] normalized [ymin, xmin, ymax, xmax].
        scores: float32 [max_boxes].
        num_boxes: int, how many leading entries are valid.
        score_threshold: float, keep scores strictly above it.
        shape: the original image's shape; its first two entries (H, W) scale the boxes.

    Returns:
        (boxes float32 [N, 4] pixels, scores float32 [N]).
    """
    boxes, scores = boxes[:num_boxes], scores[:num_boxes]
    keep = scores > score_threshold
    height, width = shape[0], shape[1]
    scaler = np.array([height, width, height, width], dtype=np.float32)
    return boxes[keep] * scaler, scores[keep]


# --- Speed path: per-call overheads ---
# The image reaches TensorFlow without a copy; the concrete functions are called without re-binding
# their signatures; the bfloat16 graph casts the image once. Measured together (python
# bench/bench_speed_paths.py --runs 60, AMD EPYC with AVX512_BF16, no AMX, 2 cores), against the
# same detector without them: bfloat16 6.4% / 3.7% faster at 1024x768 / 640x480, float32 2.2% / 5.0%;
# each alone gains under 5%, but the detector without all three (and without two removed paths that
# gained nothing here) took 1.06x the time in float32 and 1.09-1.10x in bfloat16 (a one-off A/B).


def _to_tensor(batch):
    """uint8 numpy [b, H, W, 3] -> an eager uint8 tensor that shares memory rather than copying.

    tf.convert_to_tensor copies the array into a freshly allocated buffer; for a 1024x768
    frame that costs ~1 ms on a 2-core CPU (mostly page faults of the new 2.4 MB buffer),
    close to a tenth of a bfloat16 detection. A C-contiguous, writeable array aligned to
    TensorFlow's 64 bytes is handed over through DLPack without a copy; any other array is
    first copied into this thread's reused, aligned staging buffer. The graph only reads its
    input, and the tensor is dropped when the call returns.
    """
    if not (batch.flags.c_contiguous and batch.flags.writeable
            and batch.ctypes.data % _TENSOR_ALIGNMENT == 0):
        staging = getattr(_STAGING, 'buffer', None)
        if staging is None or staging.size < batch.size + _TENSOR_ALIGNMENT:
            staging = np.empty(batch.size + _TENSOR_ALIGNMENT, np.uint8)
            _STAGING.buffer = staging
        offset = (-staging.ctypes.data) % _TENSOR_ALIGNMENT
        aligned = staging[offset:offset + batch.size].reshape(batch.shape)
        np.copyto(aligned, batch)
        batch = aligned
    return tf.experimental.dlpack.from_dlpack(batch.__dlpack__())


def _fast_call(concrete):
    """A callable running `concrete` (a ConcreteFunction of tensors only) on positional tensors.

    It calls the function's AtomicFunction (tf.types.experimental.AtomicFunction) with the
    inputs as they are: the ConcreteFunction's own __call__ first binds them to its structured
    signature, which cost 0.1-0.3 ms per call here (640x480, bfloat16, a one-off A/B script).
    The outputs are the same tensors. Falls back to `concrete` itself where the attribute is
    missing (another TensorFlow version).
    """
    atomic = getattr(concrete, 'inference_fn', None)
    if atomic is None or not hasattr(atomic, 'call_with_captures'):
        return concrete
    captures = concrete.captured_inputs
    return lambda *tensors: atomic.call_with_captures(tensors, {}, captures)


# Ops that read only their input's shape (any dtype).
_SHAPE_QUERY_OPS = ('Shape', 'Size', 'Rank')


def _merge_uint8_casts(graph_def):
    """Turns Cast(uint8 -> float32) -> Cast(float32 -> bfloat16) chains into one Cast(uint8 -> bfloat16).

    The mixed precision pass keeps a float32 graph's own casts and adds its casts after them,
    so the image goes through two full-size casts. Every uint8 value (0..255) is exact in
    bfloat16, so the direct cast gives the same values. Only a Cast whose consumers are all
    such casts or shape queries (Shape, Size, Rank: their input type follows) is changed; the
    casts become Identity ops (removed at run time).
    """
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.lstrip('^').split(':')[0], []).append(node)
    uint8, float32, bfloat16 = (tf.uint8.as_datatype_enum, tf.float32.as_datatype_enum,
                                tf.bfloat16.as_datatype_enum)
    for node in graph_def.node:
        if node.op != 'Cast' or node.attr['SrcT'].type != uint8 or node.attr['DstT'].type != float32:
            continue
        users = consumers.get(node.name, [])
        casts = [user for user in users if user.op == 'Cast' and user.attr['SrcT'].type == float32
                 and user.attr['DstT'].type == bfloat16 and len(user.input) == 1]
        queries = [user for user in users if user.op in _SHAPE_QUERY_OPS]
        if not casts or len(casts) + len(queries) != len(users):
            continue
        node.attr['DstT'].type = bfloat16
        for user in queries:
            user.attr['T'].type = bfloat16
        for user in casts:
            user.op = 'Identity'
            for key in ('SrcT', 'DstT', 'Truncate'):
                if key in user.attr:
                    del user.attr[key]
            user.attr['T'].type = bfloat16
    return graph_def


# --- Speed path: bfloat16 on CPUs with bfloat16 units ---
# Measured gain (bench/bench_model.py, AMD EPYC with AVX512_BF16, no AMX, 2 cores): 'auto' (bfloat16)
# took 0.68x of the upstream graph's time at 1024x768 and 0.51x at 640x480, float32 0.98x and 0.86x.

def _bfloat16_where_supported(graph_def, model_path):
    """(graph_def, precision): the bfloat16 rewrite and 'bfloat16', or the graph unchanged and 'float32'.

    TensorFlow's oneDNN bfloat16 pass rewrites only on CPUs with AVX-512 (or AVX-NE-CONVERT);
    elsewhere (e.g. AVX2-only CPUs) it returns the graph in float32, so 'bfloat16' would be a
    name for float32. That case is logged and reported as 'float32'.
    """
    rewritten = _rewrite_to_bfloat16(graph_def)
    if _computes_in_bfloat16(rewritten):
        return rewritten, 'bfloat16'
    _LOG.warning("%s: bfloat16 requested, but TensorFlow's oneDNN bfloat16 pass does not rewrite graphs "
                 "on this CPU (it needs AVX-512); running float32", model_path)
    return graph_def, 'float32'


def _rewrite_to_bfloat16(graph_def):
    """This graph with Grappler's oneDNN bfloat16 auto mixed precision pass applied (only it)."""
    from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: PLC0415

    def configure(rewriter):
        rewriter.min_graph_nodes = -1
        rewriter.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
        rewriter.optimizers.extend(['auto_mixed_precision_onednn_bfloat16'])
    return _merge_uint8_casts(run_grappler(graph_def, _OUTPUT_NAMES, configure))


def run_grappler(graph_def, output_names, configure):
    """`graph_def` (tf.compat.v1.GraphDef) optimized by Grappler for fetching `output_names`.

    `configure(rewrite_options)` picks the passes (a RewriterConfig to fill in). src/export.py
    uses it too, for the constant folding that folds batch norm at freezing time.
    """
    from tensorflow.python.grappler import tf_optimizer  # noqa: PLC0415
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name='')
        meta_graph = tf.compat.v1.train.export_meta_graph(graph_def=graph.as_graph_def(), graph=graph)
    fetch = meta_graph.collection_def['train_op'].node_list.value
    for name in output_names:
        fetch.append(name)
    config = tf.compat.v1.ConfigProto()
    configure(config.graph_options.rewrite_options)
    return tf_optimizer.OptimizeGraph(config, meta_graph)


def _computes_in_bfloat16(graph_def):
    """True if any node of `graph_def` (tf.compat.v1.GraphDef) has a bfloat16 type attribute."""
    bfloat16 = tf.bfloat16.as_datatype_enum
    return any(value.type == bfloat16 for node in graph_def.node for value in node.attr.values())


# --- Speed path: the boxes a caller drops stay out of NMS ---
# Greedy NMS lets a box suppress only lower-scoring ones and counts max_boxes in score order, so the
# rows scoring above a threshold t are the same, bit for bit, whether or not the boxes scoring at or
# below t took part. The network's background anchors score ~0.1, above the graph's NMS threshold
# (0.05): without this, NMS sorts and walks ~16,000 candidates at 1024x768 for a handful of faces.
# Measured gain at score_threshold 0.5 (python bench/bench_speed_paths.py --runs 40, AMD EPYC, 2 cores),
# 1024x768 / 640x480: with AVX512_BF16, float32 2.5% / 11.4%, bfloat16 11.6% / 14.8%, LiteRT 8.2% / 13.0%;
# through bench/as_avx2_cpu.sh (as on an AVX2-only CPU), float32 4.5% / 9.9%, LiteRT 6.0% / 12.2%.
_SCORE_FLOOR_NAME = 'faceboxes_score_floor'
_FLOOR_SPEC = tf.TensorSpec([], tf.float32)
# A logit whose sigmoid (~4e-44) no NMS score threshold above 0 keeps.
_DROPPED_LOGIT = -100.0
# Margin (in logits) between a dropped logit and logit(score_threshold): far above the float32
# rounding of the sigmoid and of the threshold (d sigmoid / d logit >= ~1e-3 up to a threshold of
# _LARGEST_FLOORED_THRESHOLD).
_LOGIT_MARGIN = 0.01
_LARGEST_FLOORED_THRESHOLD = 0.999


def add_score_floor(graph_def):
    """Lets a call leave the boxes it will drop out of NMS: logits below a fed floor become _DROPPED_LOGIT.

    Where the graph's `scores` come from one float32 `Sigmoid` outside any loop (this project's
    graphs: sigmoid of the face - background logit difference), a scalar float32 input
    _SCORE_FLOOR_NAME (PlaceholderWithDefault, default -inf: nothing dropped) is added, and the
    sigmoid's input x becomes where(x < floor, _DROPPED_LOGIT, x). Feeding _logit_bound(t) then
    gives the graph's rows above t unchanged (see the comment above) and fewer rows below it.
    Other graphs (the upstream's softmax over two logits) are returned as they are.

    Args:
        graph_def: tf.compat.v1.GraphDef, a frozen detection graph.

    Returns:
        (graph_def, True) with the floor added (a new GraphDef), or (graph_def, False).
    """
    nodes = {node.name: node for node in graph_def.node}
    if _SCORE_FLOOR_NAME in nodes:
        return graph_def, True  # added before
    reaching = _reaches(graph_def, _OUTPUT_NAMES[1])
    sigmoids = [node for node in graph_def.node if node.op == 'Sigmoid' and node.name in reaching]
    if len(sigmoids) != 1 or sigmoids[0].attr['T'].type != tf.float32.as_datatype_enum:
        return graph_def, False
    logits = sigmoids[0].input[0]
    if any(nodes[name].op in _CONTROL_FLOW_OPS for name in _reaches(graph_def, logits.split(':')[0])):
        return graph_def, False  # inside a loop frame: an outside input cannot reach it
    floored = tf.compat.v1.GraphDef()
    floored.CopyFrom(graph_def)
    name = _SCORE_FLOOR_NAME
    float32 = tf.float32.as_datatype_enum

    def node(op, suffix, inputs=(), **attrs):
        new = floored.node.add(name=name + suffix, op=op, input=list(inputs))
        for key, value in attrs.items():
            new.attr[key].CopyFrom(value)
        return new

    def constant(value):
        return tf.compat.v1.AttrValue(tensor=tf.make_tensor_proto(value, tf.float32, []))

    dtype = tf.compat.v1.AttrValue(type=float32)
    node('Const', '/default', dtype=dtype, value=constant(-np.inf))
    node('PlaceholderWithDefault', '', [name + '/default'], dtype=dtype,
         shape=tf.compat.v1.AttrValue(shape=tf.TensorShape([]).as_proto()))
    node('Const', '/dropped', dtype=dtype, value=constant(_DROPPED_LOGIT))
    node('Less', '/below', [logits, name], T=dtype)
    node('SelectV2', '/logits', [name + '/below', name + '/dropped', logits], T=dtype)
    next(n for n in floored.node if n.name == sigmoids[0].name).input[0] = name + '/logits'
    return floored, True


def _logit_bound(score_threshold):
    """The floor for a call keeping scores > score_threshold: logits below it have a sigmoid at or
    below the threshold (-inf: drop nothing)."""
    if not 0.0 < score_threshold <= _LARGEST_FLOORED_THRESHOLD:
        return -np.inf
    return np.log(score_threshold / (1.0 - score_threshold)) - _LOGIT_MARGIN


def _reaches(graph_def, output):
    """Names of the nodes from which node `output` is reached (itself included)."""
    inputs = {node.name: [name.lstrip('^').split(':')[0] for name in node.input] for node in graph_def.node}
    found, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name not in found and name in inputs:
            found.add(name)
            stack.extend(inputs[name])
    return found


# --- Speed path: LiteRT (XNNPACK) on CPUs without bfloat16 units ---
# Measured (python bench/report.py: bench/bench_model.py --runs 25 through bench/as_avx2_cpu.sh, AMD EPYC
# seen as AVX2-only, 2 cores): LiteRT took 0.60x / 0.59x of the upstream graph's time at 1024x768 /
# 640x480, TensorFlow float32 0.93x / 0.93x.

def _import_litert():
    """ai_edge_litert's Interpreter class and flatbuffer schema; ImportError with the fix if missing."""
    try:
        from ai_edge_litert import schema_py_generated  # noqa: PLC0415
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    except ImportError as error:
        raise ImportError('the LiteRT backend needs the ai_edge_litert package: pip install %s (%s)'
                          % (_LITERT_REQUIREMENT, error)) from error
    return Interpreter, schema_py_generated


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_tflite_for(model_path):
    """The `.tflite` beside `model_path` that was made from that very `.pb`, with its metadata.

    create_pb.py --tflite records the sha256 of the `.pb` it converted in the `.tflite`'s
    metadata (src/tflite_export.py); a `.tflite` from another `.pb` (stale after the `.pb` was
    replaced, or foreign) is refused.

    Args:
        model_path: str, the frozen graph (.pb).

    Returns:
        (bytes of the .tflite, dict of its metadata: 'outputs' {tflite output name: graph
        tensor name}, 'pad_multiple', 'input', 'source_pb_sha256', 'format').

    Raises:
        ImportError: ai_edge_litert is not installed.
        LiteRTUnavailable: one line naming the .tflite and what is wrong with it.
    """
    _, schema = _import_litert()
    path = tflite_path_for(model_path)
    remake = 'make it with: python create_pb.py --tflite -o %s' % model_path
    if not os.path.isfile(path):
        raise LiteRTUnavailable('%s: not found (the LiteRT backend runs the .tflite beside the .pb); %s'
                                % (path, remake))
    with open(path, 'rb') as f:
        content = f.read()
    metadata = None
    try:
        model = schema.Model.GetRootAs(content, 0)
        for k in range(model.MetadataLength()):
            if model.Metadata(k).Name() == _TFLITE_METADATA_NAME.encode():
                data = model.Buffers(model.Metadata(k).Buffer()).DataAsNumpy()
                metadata = json.loads(data.tobytes().decode('utf-8'))
    except Exception as error:  # flatbuffers raises assorted errors on foreign bytes
        raise LiteRTUnavailable('%s: not a readable .tflite (%s); %s' % (path, error, remake)) from error
    if not isinstance(metadata, dict) or metadata.get('format') != _TFLITE_FORMAT:
        raise LiteRTUnavailable('%s: has no FaceBoxes metadata of format %d (not written by create_pb.py '
                                '--tflite); %s' % (path, _TFLITE_FORMAT, remake))
    if metadata.get('source_pb_sha256') != _file_sha256(model_path):
        raise LiteRTUnavailable('%s: made from another .pb than %s (stale or foreign); re%s'
                                % (path, model_path, remake))
    return content, metadata


def _usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


class _LiteRTGraph:
    """The network run by LiteRT (XNNPACK) from a `.tflite`, decoding and NMS by the frozen graph.

    The `.tflite` (create_pb.py --tflite) holds the network up to the prediction heads, for
    inputs zero-padded to multiples of its `pad_multiple` (the padding the graph does itself).
    Each image is written into the interpreter's input buffer with that padding (one copy),
    the interpreter runs, and the heads' values go into the rest of the frozen graph (anchors,
    decoding, scores, NMS: its own ops, pruned at the heads), whose shape-only values are
    computed once per batch shape (see shape_frontier). So the boxes and scores are the frozen
    graph's up to float rounding of the network (tested). One interpreter per padded size (a
    new size costs a resize of ~0.1 s); the last _MAX_SHAPE_FEEDS are kept. The interpreters
    use every usable core.

    The score floor (see add_score_floor), where the graph has one, is fed to the rest.
    """

    def __init__(self, wrapped, graph_def, frontier, content, metadata, model_path, floored):
        interpreter_class, _ = _import_litert()
        self._new_interpreter = lambda: interpreter_class(model_content=content, num_threads=_usable_cores())
        outputs = metadata['outputs']  # .tflite output name -> the graph's tensor
        self._output_names = sorted(outputs)
        heads = [outputs[name] for name in self._output_names]
        self._pad_multiple = int(metadata['pad_multiple'])
        shape_values = _rest_inputs(graph_def, heads, frontier, tflite_path_for(model_path))
        head_tensors = [_imported(wrapped, name) for name in heads]
        values = [_imported(wrapped, name) for name in shape_values]
        image = _imported(wrapped, _INPUT_NAME)
        head_specs = [tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in head_tensors]
        value_specs = [tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in values]
        floors = [_imported(wrapped, _SCORE_FLOOR_NAME)] if floored else []
        rest = wrapped.prune(feeds=head_tensors + values + floors,
                             fetches=[_imported(wrapped, name) for name in _OUTPUT_NAMES])
        self._rest = _fast_call(tf.function(
            lambda *tensors: rest(*tensors), input_signature=head_specs + value_specs + [_FLOOR_SPEC] * len(floors),
            autograph=False
        ).get_concrete_function())
        self._shape_part = None
        if values:
            shape_part = wrapped.prune(feeds=[image] + head_tensors, fetches=values)
            self._shape_part = _fast_call(tf.function(
                lambda *tensors: shape_part(*tensors),
                input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)] + head_specs, autograph=False
            ).get_concrete_function())
        self._values = collections.OrderedDict()  # batch shape -> the shape-only values
        self._interpreters = collections.OrderedDict()  # padded (H, W) -> (interpreter, input, outputs)
        self._lock = threading.Lock()

    def __call__(self, batch, floor=()):
        """uint8 numpy [b, H, W, 3] -> the graph's outputs (boxes, scores, num_boxes), eager tensors.

        `floor`: () or (the score floor, a float32 scalar tensor), as the graph takes it.
        """
        with self._lock:
            per_image = [self._network(image) for image in batch]
            heads = [tf.constant(values[0] if len(values) == 1 else np.concatenate(values))
                     for values in zip(*per_image)]
            values = ()
            if self._shape_part is not None:
                values = self._values.get(batch.shape)
                if values is None:
                    values = self._shape_part(_to_tensor(batch), *heads)  # reads shapes only
                    self._values[batch.shape] = values
                    while len(self._values) > _MAX_SHAPE_FEEDS:
                        self._values.popitem(last=False)
                else:
                    self._values.move_to_end(batch.shape)
        return self._rest(*heads, *values, *floor)

    def _network(self, image):
        """uint8 [H, W, 3] -> the heads' values, float32 numpy [1, h, w, c] each."""
        height, width = image.shape[:2]
        multiple = self._pad_multiple
        padded = (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
        entry = self._interpreters.get(padded)
        if entry is None:
            interpreter = self._new_interpreter()
            index = interpreter.get_input_details()[0]['index']
            interpreter.resize_tensor_input(index, [1, padded[0], padded[1], 3])
            interpreter.allocate_tensors()
            by_name = {detail['name']: detail['index'] for detail in interpreter.get_output_details()}
            entry = self._interpreters[padded] = (interpreter, index, [by_name[n] for n in self._output_names])
            while len(self._interpreters) > _MAX_SHAPE_FEEDS:
                self._interpreters.popitem(last=False)
        else:
            self._interpreters.move_to_end(padded)
        interpreter, index, output_indices = entry
        buffer = interpreter.tensor(index)()  # a view of the input; released before invoke
        buffer[0, :height, :width] = image
        buffer[0, :height, width:] = 0  # the padding (bottom and right, as the graph pads)
        buffer[0, height:] = 0
        del buffer
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in output_indices]


def _rest_inputs(graph_def, heads, frontier, tflite_path):
    """The shape-only tensors (of `frontier`) that the graph needs from the heads to its outputs.

    Raises:
        LiteRTUnavailable: the heads do not separate the image from the outputs (a .tflite
            whose outputs are not this graph's network).
    """
    nodes = {node.name: node for node in graph_def.node}
    heads, frontier = set(heads), set(frontier)
    missing = sorted(name for name in heads if name.split(':')[0] not in nodes)
    if missing:
        raise LiteRTUnavailable('%s: its outputs name tensors this graph lacks: %s'
                                % (tflite_path, ', '.join(missing)))
    needed, seen, stack = set(), set(), list(_OUTPUT_NAMES)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name == _INPUT_NAME:
            raise LiteRTUnavailable('%s: its outputs do not cut this graph between the image and '
                                    'the boxes' % tflite_path)
        for tensor in nodes[name].input:
            tensor = tensor if ':' in tensor or tensor.startswith('^') else tensor + ':0'
            if tensor in heads:
                continue
            if tensor in frontier:
                needed.add(tensor)
                continue
            stack.append(tensor.lstrip('^').split(':')[0])
    return sorted(needed)


# Ops whose output depends on their input's shape only (any dtype), and the control-flow ops
# (a shape-only value is never taken from inside a loop frame).
_SHAPE_SOURCE_OPS = ('Shape', 'ShapeN', 'Size', 'Rank')
_CONTROL_FLOW_OPS = ('Enter', 'Exit', 'Merge', 'Switch', 'NextIteration', 'LoopCond')


def shape_frontier(graph_def, output_names=_OUTPUT_NAMES):
    """The tensors of `graph_def` whose values depend only on the input image's shape, at the
    edge where they flow into the image-dependent rest of the graph.

    A node is shape-only when it is stateless, outside any while-loop frame, has no control
    input, yields no variant (TensorList) value, and every input is a constant, a Shape /
    ShapeN / Size / Rank of anything, or another shape-only node; those that depend on some
    shape query (not on constants alone, which TensorFlow folds anyway) and feed a node that
    is not shape-only form the frontier: padding amounts, reshape targets, the anchors.

    Args:
        graph_def: tf.compat.v1.GraphDef with node `image_tensor` and the outputs.
        output_names: the fetched nodes; only what they depend on is looked at.

    Returns:
        sorted list of tensor names 'node:k'.
    """
    from tensorflow.python.framework import op_def_registry  # noqa: PLC0415
    nodes = {node.name: node for node in graph_def.node}
    source = lambda name: name.lstrip('^').split(':')[0]
    consumers = {}
    for node in graph_def.node:
        for tensor in node.input:
            consumers.setdefault(source(tensor), []).append(node.name)
    # Loop frames: everything reachable from an Enter without passing an Exit (loops are cycles,
    # so this walks forward with a visited set).
    in_loop, stack = set(), [node.name for node in graph_def.node if node.op == 'Enter']
    while stack:
        name = stack.pop()
        if name not in in_loop:
            in_loop.add(name)
            if nodes[name].op != 'Exit':
                stack.extend(consumers.get(name, ()))
    kind = {}  # 'shape', 'const' or None (depends on the image's values)

    def classify(name):
        stack, visiting = [name], set()  # visiting: waiting for its inputs (a cycle guard)
        while stack:
            top = stack[-1]
            if top in kind:
                stack.pop()
                continue
            node = nodes[top]
            op_def = op_def_registry.get(node.op)
            data_inputs = [source(i) for i in node.input if not i.startswith('^')]
            if (op_def is None or op_def.is_stateful or node.op in _CONTROL_FLOW_OPS
                    or node.op.startswith('TensorList') or node.op.startswith('Placeholder')
                    or len(data_inputs) != len(node.input) or top in in_loop):
                kind[top] = None
            elif node.op == 'Const':
                kind[top] = 'const'
            elif node.op in _SHAPE_SOURCE_OPS:
                kind[top] = 'shape'
            else:
                pending = [i for i in data_inputs if i not in kind]
                if pending and not visiting.intersection(pending):
                    visiting.add(top)
                    stack.extend(pending)
                    continue
                if pending:  # a cycle outside any loop frame: not a graph TensorFlow runs
                    kind.update(dict.fromkeys(pending, None))
                kinds = [kind[i] for i in data_inputs]
                kind[top] = (None if not kinds or None in kinds
                             else 'shape' if 'shape' in kinds else 'const')
            visiting.discard(top)
            stack.pop()
        return kind[name]

    needed, stack = set(), list(output_names)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(source(i) for i in nodes[name].input)
    frontier = set()
    for name in needed:
        if classify(name) is not None:
            continue
        for tensor in nodes[name].input:
            if not tensor.startswith('^') and classify(source(tensor)) == 'shape':
                frontier.add(tensor if ':' in tensor else tensor + ':0')
    return sorted(frontier)
