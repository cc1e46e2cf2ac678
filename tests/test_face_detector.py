"""Tests for face_detector.FaceDetector against TF1-style frozen graphs (tests/tf1_graph.py).

Boxes from FaceDetector are pixels [ymin, xmin, ymax, xmax]; the graphs output the same
order normalized to [0, 1].
"""
import ast
import os

import numpy as np
import pytest
import tensorflow as tf

import face_detector
from face_detector import FaceDetector
from tests import tf1_graph
from tests.cpu_features import REWRITES_BFLOAT16, knows_cpu_flags, needs_bfloat16_rewrite

MAX_BOXES = 20


@pytest.fixture(scope='module')
def tf1_model(tmp_path_factory):
    """(path, session reference) of the TF1-style graph."""
    path = str(tmp_path_factory.mktemp('tf1') / 'tf1_style.pb')
    reference = tf1_graph.build_tf1_style_graph(path, seed=0, max_boxes=MAX_BOXES)
    return path, reference


@pytest.fixture(scope='module')
def detector(tf1_model):
    return FaceDetector(tf1_model[0])


@pytest.fixture(scope='module')
def bright_detector(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('bright') / 'bright.pb')
    tf1_graph.build_bright_region_graph(path)
    return FaceDetector(path)


def _random_image(height, width, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3)).astype(np.uint8)


def _reference_pixels(reference, image):
    """Session reference for one image: (boxes float32 [n, 4] pixels, scores float32 [n])."""
    boxes, scores, num_boxes = reference(image[np.newaxis])
    n = int(num_boxes[0])
    height, width = image.shape[:2]
    scaler = np.array([height, width, height, width], dtype=np.float32)
    return boxes[0, :n] * scaler, scores[0, :n]


def test_graph_uses_tf1_control_flow_and_nms_v3(tf1_model):
    ops = tf1_graph.graph_op_types(tf1_model[0])
    assert {'Switch', 'Merge', 'Enter', 'Exit', 'NextIteration', 'LoopCond'} <= ops
    assert {'TensorArrayV3', 'TensorArrayScatterV3', 'TensorArrayWriteV3'} <= ops
    assert 'NonMaxSuppressionV3' in ops
    assert 'While' not in ops and 'StatelessWhile' not in ops  # no v2 control flow


@pytest.mark.parametrize('height, width', [(96, 128), (75, 131)])
def test_matches_session_reference(tf1_model, detector, height, width):
    image = _random_image(height, width, seed=height)
    expected_boxes, expected_scores = _reference_pixels(tf1_model[1], image)
    assert len(expected_scores) >= 5
    assert expected_scores.min() < 0.5 < expected_scores.max()  # scores spread over (0, 1)
    boxes, scores = detector(image, score_threshold=0.0)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.shape == (len(expected_scores), 4)
    np.testing.assert_allclose(boxes, expected_boxes, rtol=0, atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-6)
    assert boxes[:, 2].max() <= height and boxes[:, 3].max() <= width


def test_score_threshold_is_strict(detector):
    image = _random_image(96, 128, seed=96)
    _, all_scores = detector(image, score_threshold=0.0)
    k = 3
    threshold = float(all_scores[k])
    boxes, scores = detector(image, score_threshold=threshold)
    # NMS output is sorted by descending score: exactly the k higher ones survive.
    assert len(scores) == k and boxes.shape == (k, 4)
    np.testing.assert_array_equal(scores, all_scores[:k])
    boxes, scores = detector(image, score_threshold=1.0)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_batch_equals_single_calls(detector):
    images = [_random_image(64, 96, 1), _random_image(80, 80, 2), _random_image(64, 96, 3),
              _random_image(64, 96, 4), _random_image(33, 47, 5)]
    results = detector.detect_batch(images, score_threshold=0.3, max_batch_size=2)
    for bad in (0, 2.5, True, '8'):
        with pytest.raises(ValueError, match='max_batch_size must be an int >= 1, got'):
            detector.detect_batch(images, max_batch_size=bad)
    assert len(results) == len(images)
    for image, (boxes, scores) in zip(images, results):
        single_boxes, single_scores = detector(image, score_threshold=0.3)
        assert boxes.shape == single_boxes.shape
        np.testing.assert_allclose(boxes, single_boxes, rtol=0, atol=1e-3)
        np.testing.assert_allclose(scores, single_scores, rtol=0, atol=1e-5)
    assert detector.detect_batch([]) == []


def test_min_dimension_maps_boxes_back_to_original_pixels(bright_detector):
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:21, 15:46] = 255  # rows 10..20, columns 15..45 -> box [10, 15, 21, 46]
    expected = np.array([[10, 15, 21, 46]], np.float32)
    plain_boxes, plain_scores = bright_detector(image)
    np.testing.assert_allclose(plain_boxes, expected, atol=1e-4)
    np.testing.assert_allclose(plain_scores, [tf1_graph.BRIGHT_SCORE])
    # Upscaled x3 (smaller side 40 -> 120): the graph sees a 120x180 image and the box comes
    # back in the original 40x60 frame, up to the blur of the bilinear edge (< 1/3 px).
    boxes, scores = bright_detector(image, min_dimension=120)
    np.testing.assert_allclose(boxes, expected, atol=0.34)
    boxes_batch = bright_detector.detect_batch([image, image], min_dimension=120)
    for boxes_b, _ in boxes_batch:
        np.testing.assert_allclose(boxes_b, boxes, atol=1e-5)


def test_min_dimension_equals_detecting_the_upscaled_image(tf1_model, detector):
    image = _random_image(50, 70, seed=7)
    upscaled = tf.cast(tf.round(tf.image.resize(image.astype(np.float32), (100, 140))),
                       tf.uint8).numpy()
    up_boxes, up_scores = detector(upscaled, score_threshold=0.0)
    boxes, scores = detector(image, score_threshold=0.0, min_dimension=100)
    np.testing.assert_allclose(scores, up_scores, atol=1e-5)
    np.testing.assert_allclose(boxes, up_boxes / 2.0, atol=1e-3)
    # An image already large enough is not resized.
    plain_boxes, _ = detector(image, score_threshold=0.0)
    small_min_boxes, _ = detector(image, score_threshold=0.0, min_dimension=50)
    np.testing.assert_array_equal(plain_boxes, small_min_boxes)


def test_constructor_min_dimension_and_call_override(tf1_model, detector):
    image = _random_image(50, 70, seed=7)
    upscaling = FaceDetector(tf1_model[0], min_dimension=100)
    boxes, _ = upscaling(image, score_threshold=0.0)
    expected, _ = detector(image, score_threshold=0.0, min_dimension=100)
    np.testing.assert_allclose(boxes, expected, atol=1e-5)
    off_boxes, _ = upscaling(image, score_threshold=0.0, min_dimension=0)
    plain_boxes, _ = detector(image, score_threshold=0.0)
    np.testing.assert_allclose(off_boxes, plain_boxes, atol=1e-5)
    with pytest.raises(ValueError, match='min_dimension'):
        FaceDetector(tf1_model[0], min_dimension=-5)


def test_grayscale_and_rgba_are_converted(detector):
    gray = _random_image(64, 64, seed=11)[:, :, 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    expected_boxes, expected_scores = detector(rgb, score_threshold=0.0)
    for variant in (gray, gray[:, :, None]):
        boxes, scores = detector(variant, score_threshold=0.0)
        np.testing.assert_array_equal(boxes, expected_boxes)
        np.testing.assert_array_equal(scores, expected_scores)
    color = _random_image(64, 64, seed=12)
    rgba = np.concatenate([color, np.full((64, 64, 1), 7, np.uint8)], axis=2)
    boxes, scores = detector(rgba, score_threshold=0.0)
    color_boxes, color_scores = detector(color, score_threshold=0.0)
    np.testing.assert_array_equal(boxes, color_boxes)
    np.testing.assert_array_equal(scores, color_scores)


@pytest.mark.parametrize('image, message', [
    (np.zeros((32, 32, 3), np.float32), 'uint8'),
    (np.zeros((0, 32, 3), np.uint8), 'empty'),
    (np.zeros((32, 0), np.uint8), 'empty'),
    (np.zeros((1, 32, 32, 3), np.uint8), 'shape'),
    (np.zeros((32,), np.uint8), 'shape'),
    (np.zeros((32, 32, 2), np.uint8), 'channels'),
    (np.zeros((32, 32, 5), np.uint8), 'channels'),
])
def test_bad_images_raise_value_error(detector, image, message):
    with pytest.raises(ValueError, match=message):
        detector(image)


def test_bad_batch_item_is_named(detector):
    good = _random_image(32, 32)
    with pytest.raises(ValueError, match=r'images\[1\]'):
        detector.detect_batch([good, good.astype(np.float64)])


def test_model_file_errors(tmp_path):
    missing = str(tmp_path / 'nope.pb')
    with pytest.raises(FileNotFoundError, match='nope.pb'):
        FaceDetector(missing)
    garbage = tmp_path / 'garbage.pb'
    garbage.write_bytes(b'\xff\x00 definitely not a protobuf \x13\x37' * 10)
    with pytest.raises(ValueError, match='garbage.pb'):
        FaceDetector(str(garbage))
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name='image_tensor')
    wrong = tmp_path / 'wrong.pb'
    wrong.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ValueError, match='boxes, scores, num_boxes'):
        FaceDetector(str(wrong))


def test_gpu_memory_fraction_is_validated(tf1_model):
    with pytest.raises(ValueError, match='gpu_memory_fraction'):
        FaceDetector(tf1_model[0], gpu_memory_fraction=1.5)


def test_face_detector_imports_only_numpy_and_tensorflow():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        'face_detector.py')
    with open(path) as f:
        tree = ast.parse(f.read())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or '.').split('.')[0])
    # ai_edge_litert only inside the LiteRT backend's functions (imported when it is used).
    assert modules <= {'numpy', 'tensorflow', 'collections', 'hashlib', 'json', 'logging', 'os', 'threading',
                       'ai_edge_litert'}


def test_non_contiguous_views_are_accepted(detector):
    image = _random_image(64, 80, seed=13)
    flipped = image[:, :, ::-1]  # e.g. an OpenCV BGR frame reversed without a copy
    boxes, scores = detector(flipped, score_threshold=0.0)
    expected_boxes, expected_scores = detector(np.ascontiguousarray(flipped), score_threshold=0.0)
    np.testing.assert_array_equal(boxes, expected_boxes)
    np.testing.assert_array_equal(scores, expected_scores)


class _FakeGpuConfig:
    """Records the tf.config calls FaceDetector makes when GPUs are (pretend) present."""

    def __init__(self, num_gpus, initialized=False):
        self.gpus = ['GPU:%d' % i for i in range(num_gpus)]
        self.initialized = initialized
        self.visible = None
        self.growth = []

    def list_physical_devices(self, kind):
        return list(self.gpus) if kind == 'GPU' else []

    def set_visible_devices(self, devices, kind):
        if self.initialized:
            raise RuntimeError('Visible devices cannot be modified after being initialized')
        self.visible = (list(devices), kind)

    def set_memory_growth(self, device, enable):
        self.growth.append((device, enable))


def _patch_gpus(monkeypatch, fake):
    monkeypatch.setattr(tf.config, 'list_physical_devices', fake.list_physical_devices)
    monkeypatch.setattr(tf.config, 'set_visible_devices', fake.set_visible_devices)
    monkeypatch.setattr(tf.config.experimental, 'set_memory_growth', fake.set_memory_growth)


def test_gpu_options_are_applied_when_gpus_exist(tf1_model, monkeypatch):
    fake = _FakeGpuConfig(num_gpus=3)
    _patch_gpus(monkeypatch, fake)
    FaceDetector(tf1_model[0], gpu_memory_fraction=0.25, visible_device_list='2,0')
    assert fake.visible == (['GPU:2', 'GPU:0'], 'GPU')
    assert fake.growth == [('GPU:2', True), ('GPU:0', True)]
    fake = _FakeGpuConfig(num_gpus=1)
    _patch_gpus(monkeypatch, fake)
    FaceDetector(tf1_model[0], gpu_memory_fraction=1.0, visible_device_list='0')
    assert fake.visible == (['GPU:0'], 'GPU') and fake.growth == []
    with pytest.raises(ValueError, match='visible_device_list'):
        FaceDetector(tf1_model[0], visible_device_list='4')


def test_gpu_options_after_initialization_are_logged_not_raised(tf1_model, monkeypatch, caplog):
    fake = _FakeGpuConfig(num_gpus=1, initialized=True)
    _patch_gpus(monkeypatch, fake)
    with caplog.at_level('WARNING'):
        detector = FaceDetector(tf1_model[0])
    assert 'GPU options not applied' in caplog.text
    boxes, _ = detector(_random_image(32, 32))
    assert boxes.shape[1] == 4


# --- argument checks and max_dimension ----------------------------------------------------

SHIPPED_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             'model', 'facebox.pb')


@pytest.mark.parametrize('threshold, error, message', [
    ('0.5', TypeError, 'score_threshold'),        # numpy raised a UFuncTypeError on '>' before
    (None, TypeError, 'score_threshold'),
    ([0.5], TypeError, 'score_threshold'),
    (True, TypeError, 'score_threshold'),
    (1.5, ValueError, r'score_threshold must be in \[0, 1\]'),
    (-0.1, ValueError, r'score_threshold must be in \[0, 1\]'),
    (float('nan'), ValueError, r'score_threshold must be in \[0, 1\]'),
])
def test_bad_score_threshold_is_named(detector, threshold, error, message):
    image = _random_image(32, 32)
    with pytest.raises(error, match=message):
        detector(image, score_threshold=threshold)
    with pytest.raises(error, match=message):
        detector.detect_batch([image], score_threshold=threshold)


def test_numpy_scalar_thresholds_are_accepted(detector):
    image = _random_image(48, 48, seed=3)
    expected, _ = detector(image, score_threshold=0.25)
    for threshold in (np.float32(0.25), np.float64(0.25)):
        boxes, _ = detector(image, score_threshold=threshold)
        np.testing.assert_array_equal(boxes, expected)
    boxes, _ = detector(image, score_threshold=0)  # an int is a real number too
    assert len(boxes) >= len(expected)


def test_image_must_be_a_numpy_array(detector):
    as_list = _random_image(8, 8).tolist()
    with pytest.raises(TypeError, match='image must be a numpy array'):
        detector(as_list)
    with pytest.raises(TypeError, match=r'images\[0\] must be a numpy array'):
        detector.detect_batch([as_list])


def test_model_path_that_is_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match='is a directory'):
        FaceDetector(str(tmp_path))


@pytest.mark.parametrize('value, error', [(-1, ValueError), (10.5, ValueError), ('1024', TypeError)])
def test_max_dimension_is_validated(tf1_model, detector, value, error):
    with pytest.raises(error, match='max_dimension must be None or an integer >= 0'):
        FaceDetector(tf1_model[0], max_dimension=value)
    with pytest.raises(error, match='max_dimension must be None or an integer >= 0'):
        detector(_random_image(32, 32), max_dimension=value)


def test_max_dimension_downscales_and_maps_boxes_back(bright_detector):
    image = np.zeros((300, 500, 3), np.uint8)
    image[100:200, 150:350] = 255  # box [100, 150, 200, 350]
    expected = np.array([[100, 150, 200, 350]], np.float32)
    boxes, _ = bright_detector(image)
    np.testing.assert_allclose(boxes, expected, atol=1e-3)
    # Longer side 500 -> 100: the graph sees 60x100 and the box comes back in 300x500 pixels,
    # up to one downscaled pixel (5 original pixels) of antialiasing blur at the edges.
    for detector_boxes in (bright_detector(image, max_dimension=100)[0],
                           bright_detector.detect_batch([image], max_dimension=100)[0][0]):
        np.testing.assert_allclose(detector_boxes, expected, atol=5.0)
    # An image within the limit is not resized; 0 switches the limit off.
    np.testing.assert_array_equal(bright_detector(image, max_dimension=500)[0], boxes)
    np.testing.assert_array_equal(bright_detector(image, max_dimension=0)[0], boxes)


def test_max_dimension_wins_over_min_dimension(detector):
    # 40x200: min_dimension 100 would upscale to 100x500; max_dimension 250 caps it at 50x250.
    image = _random_image(40, 200, seed=21)
    assert detector._target_size(image.shape, 100, 250) == ((50, 250), False)
    assert detector._target_size(image.shape, 0, 100) == ((20, 100), True)
    assert detector._target_size(image.shape, 0, 200) is None
    assert detector._target_size(image.shape, 100, 500) == ((100, 500), False)  # as before


@pytest.fixture(scope='module')
def huge_astronaut():
    """skimage's astronaut (512x512, face near x1, y1, x2, y2 = 172, 58, 272, 178) at 4000x3000."""
    skimage_data = pytest.importorskip('skimage.data')
    small = skimage_data.astronaut()
    return _tf_resize_uint8(small, (3000, 4000), antialias=False)


def _tf_resize_uint8(image, size, antialias):
    """The resize FaceDetector applies: float bilinear (antialiased when asked), rounded."""
    resized = tf.image.resize(image.astype(np.float32), size, method='bilinear', antialias=antialias)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8).numpy()


def test_huge_photo_with_max_dimension_gives_original_pixel_boxes(huge_astronaut):
    assert huge_astronaut.shape == (3000, 4000, 3)
    detector = FaceDetector(SHIPPED_MODEL, max_dimension=1024)
    boxes, scores = detector(huge_astronaut, score_threshold=0.05)
    # The same model on the photo downscaled to 768x1024 by hand, its boxes scaled back.
    small = _tf_resize_uint8(huge_astronaut, (768, 1024), antialias=True)
    plain = FaceDetector(SHIPPED_MODEL)
    small_boxes, small_scores = plain(small, score_threshold=0.05)
    assert len(small_scores) > 0  # the shipped model fires somewhere; which boxes does not matter
    scale = np.array([3000 / 768, 4000 / 1024, 3000 / 768, 4000 / 1024], np.float32)
    assert boxes.shape == small_boxes.shape
    np.testing.assert_allclose(scores, small_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(boxes, small_boxes * scale, rtol=1e-5, atol=1e-2)
    assert boxes[:, 2].max() <= 3000 + 1e-2 and boxes[:, 3].max() <= 4000 + 1e-2
    # The per-call value overrides the constructor's; detect_batch agrees.
    same_boxes, _ = plain(huge_astronaut, score_threshold=0.05, max_dimension=1024)
    np.testing.assert_allclose(same_boxes, boxes, rtol=0, atol=1e-3)
    (batch_boxes, _), = detector.detect_batch([huge_astronaut], score_threshold=0.05)
    np.testing.assert_allclose(batch_boxes, boxes, rtol=0, atol=1e-3)


SHIPPED_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'model', 'facebox.pb')


def test_auto_precision_follows_the_cpu(tmp_path, monkeypatch, caplog):
    import face_detector
    with_flags = tmp_path / 'cpuinfo_bf16'
    with_flags.write_text('processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n')
    without = tmp_path / 'cpuinfo_plain'
    without.write_text('processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n')
    assert face_detector.cpu_has_native_bfloat16(str(with_flags))
    assert not face_detector.cpu_has_native_bfloat16(str(without))
    assert not face_detector.cpu_has_native_bfloat16(str(tmp_path / 'missing'))
    caplog.set_level('INFO')
    assert face_detector.resolve_precision('auto', has_native_bfloat16=False) == 'float32'
    assert 'auto -> float32' in caplog.text
    assert face_detector.resolve_precision('auto', has_native_bfloat16=True) == 'bfloat16'
    assert face_detector.resolve_precision('float32', has_native_bfloat16=True) == 'float32'
    # The detector asks the capability check: simulate a CPU without bfloat16 units.
    monkeypatch.setattr(face_detector, 'cpu_has_native_bfloat16', lambda *args: False)
    assert FaceDetector(SHIPPED_MODEL, precision='auto').precision == 'float32'
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, auto, got 'half'"):
        FaceDetector(SHIPPED_MODEL, precision='half')


@needs_bfloat16_rewrite
def test_bfloat16_rewrites_only_its_own_graph_and_agrees():
    import skimage.data
    image = skimage.data.astronaut()
    float32 = FaceDetector(SHIPPED_MODEL)
    before = float32(image, score_threshold=0.05)
    bfloat16 = FaceDetector(SHIPPED_MODEL, precision='bfloat16')
    assert bfloat16.precision == 'bfloat16'
    low = bfloat16(image, score_threshold=0.05)
    # The float32 detector is unchanged, bit for bit, after the other one was built.
    after = float32(image, score_threshold=0.05)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    # bfloat16 keeps 8 bits of mantissa: the confident detections agree closely.
    confident = before[1] > 0.5
    assert np.sum(low[1] > 0.5) == np.sum(confident) > 0
    np.testing.assert_allclose(low[1][:confident.sum()], before[1][confident], atol=0.02)
    np.testing.assert_allclose(low[0][:confident.sum()], before[0][confident], atol=4.0)
    assert not np.array_equal(low[1], before[1])  # it really ran in another precision


@knows_cpu_flags
def test_bfloat16_on_this_cpu_is_real_or_reported_as_float32():
    # Where the pass cannot rewrite (no AVX-512), 'bfloat16' is float32 bit for bit and says so;
    # where it can, the detections really differ in the last bits.
    import skimage.data
    image = skimage.data.astronaut()
    asked = FaceDetector(SHIPPED_MODEL, precision='bfloat16')
    assert asked.precision == ('bfloat16' if REWRITES_BFLOAT16 else 'float32')
    got = asked(image, score_threshold=0.05)
    want = FaceDetector(SHIPPED_MODEL)(image, score_threshold=0.05)
    assert len(want[1]) > 0
    assert (len(got[1]) == len(want[1]) and np.array_equal(got[1], want[1])) == (not REWRITES_BFLOAT16)


def test_shape_frontier_of_a_small_graph():
    # Two values depend on the input's shape only and flow into value ops: the reshape
    # target and the scale. A constant-only product and a shape-only output are not cut.
    from face_detector import shape_frontier
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name='image_tensor')
        x = tf.cast(image, tf.float32)
        shape = tf.shape(x)
        target = tf.stack([shape[0], -1])
        flat = tf.reshape(x, target)
        scale = tf.cast(shape[1], tf.float32) * 2.0
        constant = tf.constant(3.0) * 2.0
        tf.identity(flat * scale * constant, name='boxes')
        tf.identity(tf.reduce_sum(flat, axis=1), name='scores')
        tf.identity(shape[0], name='num_boxes')
    assert shape_frontier(graph.as_graph_def()) == sorted([target.name, scale.name])


@pytest.fixture(scope='module')
def exported_model(tmp_path_factory):
    """A frozen graph from this project's export path (random weights, some anchors firing)."""
    from src import export
    from src.detector import FaceBoxes
    model = FaceBoxes(seed=0)
    for head in model.class_heads:
        head.bias.assign(head.bias + np.random.default_rng(0).normal(0, 2.0, head.bias.shape))
    folder = str(tmp_path_factory.mktemp('export') / 'saved_model')
    export.save_saved_model(model, folder, 0.05, 0.3, MAX_BOXES)
    path = os.path.join(os.path.dirname(folder), 'model.pb')
    export.write_graph_def(export.freeze_saved_model(folder), path)
    return path


@needs_bfloat16_rewrite
def test_bfloat16_rewrite_casts_the_image_once(exported_model, monkeypatch):
    # The mixed precision pass leaves Cast(uint8 -> float32) -> Cast(float32 -> bfloat16) on the
    # full-size image; the detector merges them into one Cast(uint8 -> bfloat16), same values.
    import face_detector
    merged = face_detector._rewrite_to_bfloat16(face_detector._read_graph_def(exported_model))
    casts = [(n.attr['SrcT'].type, n.attr['DstT'].type) for n in merged.node if n.op == 'Cast']
    assert (tf.uint8.as_datatype_enum, tf.bfloat16.as_datatype_enum) in casts
    assert (tf.uint8.as_datatype_enum, tf.float32.as_datatype_enum) not in casts
    image = _random_image(150, 211)
    got = FaceDetector(exported_model, precision='bfloat16')(image, score_threshold=0.0)
    monkeypatch.setattr(face_detector, '_merge_uint8_casts', lambda graph: graph)
    want = FaceDetector(exported_model, precision='bfloat16')(image, score_threshold=0.0)
    assert len(want[1]) > 5
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def _aligned_array(shape, offset=0):
    size = int(np.prod(shape))
    buffer = np.empty(size + 128, np.uint8)
    start = (-buffer.ctypes.data) % 64 + offset
    return buffer[start:start + size].reshape(shape)


def test_input_is_shared_when_aligned_and_copied_otherwise(detector):
    from face_detector import _to_tensor
    image = _random_image(61, 83)
    aligned = _aligned_array((1,) + image.shape)
    aligned[0] = image
    shared = _to_tensor(aligned)
    aligned[0, 0, 0, 0] ^= 0xFF  # the tensor sees the change: no copy was made
    assert shared.numpy()[0, 0, 0, 0] == aligned[0, 0, 0, 0]
    unaligned = _aligned_array((1,) + image.shape, offset=1)
    unaligned[0] = image
    copied = _to_tensor(unaligned)
    unaligned[0, 0, 0, 0] ^= 0xFF
    assert copied.numpy()[0, 0, 0, 0] == image[0, 0, 0]
    read_only = image[None].copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(_to_tensor(read_only).numpy(), image[None])
    # Every kind of input gives the same detections.
    results = [detector(array[0] if array.ndim == 4 else array, score_threshold=0.0)
               for array in (image, _place(image, 0), _place(image, 3), read_only)]
    for boxes, scores in results[1:]:
        np.testing.assert_array_equal(boxes, results[0][0])
        np.testing.assert_array_equal(scores, results[0][1])


def _place(image, offset):
    out = _aligned_array(image.shape, offset)
    out[...] = image
    return out


def test_fast_call_gives_the_concrete_functions_outputs_and_falls_back():
    # FaceDetector calls its concrete functions through their AtomicFunction (no signature
    # binding); the outputs must be the very values of the ConcreteFunction's own call.
    import face_detector
    concrete = tf.function(lambda x, y: (x * 2, tf.reduce_sum(x) + y),
                           input_signature=[tf.TensorSpec([None, 3], tf.float32),
                                            tf.TensorSpec([], tf.float32)]).get_concrete_function()
    x, y = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3)), tf.constant(0.5)
    fast = face_detector._fast_call(concrete)
    assert fast is not concrete  # the fast path exists in this TensorFlow
    for got, want in zip(fast(x, y), concrete(x, y)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())

    class NoAtomic:  # another TensorFlow version: the function itself is used
        captured_inputs = ()
    plain = NoAtomic()
    assert face_detector._fast_call(plain) is plain


def test_logit_bound_keeps_every_score_above_the_threshold():
    logits = tf.constant(np.linspace(-20, 20, 400001), tf.float32)
    scores = tf.sigmoid(logits).numpy()
    for threshold in (1e-6, 0.05, 0.5, 0.7, 0.999):
        bound = face_detector._logit_bound(threshold)
        assert scores[logits.numpy() < bound].max() <= threshold
        assert bound > np.log(threshold / (1 - threshold)) - 0.02  # drops nearly all it can
    for threshold in (0.0, 0.9995, 1.0):
        assert face_detector._logit_bound(threshold) == -np.inf


def _scores_graph(scores_from):
    """A GraphDef: image_tensor -> logits [1, 4]; scores = scores_from(logits); boxes from the scores."""
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name='image_tensor')
        logits = tf.reshape(tf.reduce_mean(tf.cast(image, tf.float32)) * [-1.0, -0.01, 0.01, 1.0], [1, 4])
        scores = tf.identity(scores_from(logits), name='scores')
        tf.identity(tf.stack([scores] * 4, axis=-1), name='boxes')
    return graph.as_graph_def()


@pytest.mark.parametrize('scores_from, floored', [
    (tf.sigmoid, True),
    (lambda x: tf.nn.softmax(tf.stack([-x, x], -1))[..., 1], False),  # the upstream's kind
    (lambda x: tf.sigmoid(x) * tf.sigmoid(2.0 * x), False),  # two sigmoids
    (lambda x: tf.cast(tf.sigmoid(tf.cast(x, tf.bfloat16)), tf.float32), False),  # not float32
])
def test_score_floor_is_added_only_before_a_single_float32_sigmoid(scores_from, floored):
    graph_def = _scores_graph(scores_from)
    rewritten, added = face_detector.add_score_floor(graph_def)
    assert added == floored
    if not floored:
        assert rewritten is graph_def
        return
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(rewritten, name=''), [])
    get = wrapped.graph.get_tensor_by_name
    run = wrapped.prune([get('image_tensor:0'), get(face_detector._SCORE_FLOOR_NAME + ':0')], get('scores:0'))
    image = tf.fill([1, 2, 2, 3], tf.constant(100, tf.uint8))  # logits -100, -1, 1, 100
    everything = run(image, tf.constant(-np.inf)).numpy()
    np.testing.assert_array_equal(everything, tf.sigmoid([[-100.0, -1.0, 1.0, 100.0]]).numpy())
    floored_scores = run(image, tf.constant(0.0)).numpy()
    np.testing.assert_array_equal(floored_scores[0, 2:], everything[0, 2:])  # above the floor: the same
    assert floored_scores[0, :2].max() < 1e-40
