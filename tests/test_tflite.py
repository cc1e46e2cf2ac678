"""Tests for the LiteRT path: src/tflite_export.py (create_pb.py --tflite) and FaceDetector's
backend='litert' / 'auto'.

Boxes from FaceDetector are pixels [ymin, xmin, ymax, xmax]. Expectations are computed at test
time from the frozen graph run by TensorFlow (float32, bit for bit the graph), never stored.
"""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip('ai_edge_litert')

import create_pb  # noqa: E402
import face_detector  # noqa: E402
from face_detector import FaceDetector, LiteRTUnavailable  # noqa: E402
from src import tflite_export  # noqa: E402
from tests import tf1_graph  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(ROOT, 'model', 'facebox.pb')
MAX_BOXES = 20
# Float rounding between XNNPACK's and oneDNN's summation orders: the shipped model's boxes
# moved by < 2e-4 px and its scores by < 3e-6 on the photos below (measured).
BOX_TOLERANCE_PX = 2e-3
SCORE_TOLERANCE = 2e-5


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """(.pb, its .tflite) from this project's export path: random weights, some anchors firing."""
    from src import export
    from src.detector import FaceBoxes
    model = FaceBoxes(seed=0)
    for head in model.class_heads:
        head.bias.assign(head.bias + np.random.default_rng(0).normal(0, 2.0, head.bias.shape))
    folder = tmp_path_factory.mktemp('export')
    export.save_saved_model(model, str(folder / 'saved_model'), 0.05, 0.3, MAX_BOXES)
    pb_path = str(folder / 'model.pb')
    export.write_graph_def(export.freeze_saved_model(str(folder / 'saved_model')), pb_path)
    assert create_pb.main(['--tflite', '-o', pb_path]) == 0
    return pb_path, str(folder / 'model.tflite')


@pytest.fixture(scope='module')
def shipped(tmp_path_factory):
    """(TensorFlow float32 detector, LiteRT detector) of the shipped .pb, exported here."""
    folder = tmp_path_factory.mktemp('shipped')
    pb_path = str(folder / 'facebox.pb')
    shutil.copyfile(SHIPPED_MODEL, pb_path)
    tflite_export.export_tflite(pb_path)
    return FaceDetector(pb_path, backend='tensorflow'), FaceDetector(pb_path, backend='litert')


def _assert_same_detections(want, got):
    """The same (box, score) rows up to float rounding; rows whose scores tie to rounding may swap."""
    assert len(got[1]) == len(want[1])
    unmatched = list(range(len(want[1])))
    for box, score in zip(*got):
        close = [k for k in unmatched if abs(want[1][k] - score) <= SCORE_TOLERANCE
                 and np.abs(want[0][k] - box).max() <= BOX_TOLERANCE_PX]
        assert close, f'no detection of the frozen graph matches {box} scoring {score}'
        unmatched.remove(close[0])


def _random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_export_writes_a_tflite_that_names_its_pb_and_runs_in_one_xnnpack_partition(exported):
    pb_path, tflite_path = exported
    with open(tflite_path, 'rb') as f:
        content = f.read()
    metadata = tflite_export.read_metadata(content)
    assert metadata['source_pb_sha256'] == tflite_export.sha256_of_file(pb_path)
    assert metadata['pad_multiple'] == 128 and metadata['input'] == 'image_tensor'
    assert len(metadata['outputs']) == 6  # box and class heads of three feature maps
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=content)
    interpreter.resize_tensor_input(0, [1, 256, 384, 3])
    interpreter.allocate_tensors()
    ops = {op['op_name'] for op in interpreter._get_ops_details()}
    # conv1 undoubled (a negation), its 127.5 border a subtraction, no ops XNNPACK leaves out.
    assert {'NEG', 'SUB', 'CONV_2D'} <= ops
    assert not ops & {'PADV2', 'SPLIT_V', 'SHAPE'}


@pytest.mark.parametrize('height, width', [(256, 384), (200, 300), (97, 130)])
def test_litert_gives_the_frozen_graphs_detections(exported, height, width):
    pb_path, _ = exported
    image = _random_image(height, width, seed=height)
    want = FaceDetector(pb_path)(image, score_threshold=0.05)
    detector = FaceDetector(pb_path, backend='litert')
    assert (detector.backend, detector.precision) == ('litert', 'float32')
    got = detector(image, score_threshold=0.05)
    assert len(want[1]) > 5
    _assert_same_detections(want, got)


def test_litert_batches_and_resizes_like_tensorflow(exported):
    pb_path, _ = exported
    reference, detector = FaceDetector(pb_path), FaceDetector(pb_path, backend='litert')
    images = [_random_image(150, 211, seed=1), _random_image(150, 211, seed=2), _random_image(90, 120, seed=3)]
    for want, got in zip(reference.detect_batch(images, 0.05), detector.detect_batch(images, 0.05)):
        _assert_same_detections(want, got)
    for options in ({'min_dimension': 200}, {'max_dimension': 100}):
        _assert_same_detections(reference(images[2], 0.05, **options), detector(images[2], 0.05, **options))


def _real_photos():
    import cv2
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
    with Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)) as image:
        photos = [skimage.data.astronaut(), skimage.data.camera(), np.array(image.convert('RGB'))]
    capture = cv2.VideoCapture(os.path.join(ROOT, 'media', 'sample.mp4'))
    for index in (0, 60, 120):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        assert ok, f'media/sample.mp4: no frame {index}'
        photos.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return photos


def test_shipped_model_in_litert_finds_the_same_faces_on_real_photos(shipped):
    # Above 0.3: at 0.05 a real photo can fill all 200 rows with near-tied low scores, whose
    # order (and so NMS) float rounding may change.
    reference, detector = shipped
    for photo in _real_photos():
        want = reference(photo, score_threshold=0.3)
        assert len(want[1]) > 0
        _assert_same_detections(want, detector(photo, score_threshold=0.3))


def test_a_tflite_of_another_pb_is_refused(exported, tmp_path):
    pb_path, tflite_path = exported
    other = str(tmp_path / 'other.pb')
    shutil.copyfile(SHIPPED_MODEL, other)
    with pytest.raises(LiteRTUnavailable, match=r'other\.tflite: not found .*create_pb\.py --tflite'):
        FaceDetector(other, backend='litert')
    shutil.copyfile(tflite_path, str(tmp_path / 'other.tflite'))
    with pytest.raises(LiteRTUnavailable, match=r'other\.tflite: made from another \.pb than .*other\.pb'):
        FaceDetector(other, backend='litert')
    (tmp_path / 'other.tflite').write_bytes(b'not a flatbuffer at all')
    with pytest.raises(LiteRTUnavailable, match=r'other\.tflite: (not a readable|has no FaceBoxes metadata)'):
        FaceDetector(other, backend='litert')


def test_backend_arguments_are_checked(exported):
    pb_path, _ = exported
    with pytest.raises(ValueError, match="backend must be one of auto, tensorflow, litert, got 'tflite'"):
        FaceDetector(pb_path, backend='tflite')
    with pytest.raises(ValueError, match="backend 'litert' runs float32"):
        FaceDetector(pb_path, backend='litert', precision='bfloat16')


def test_auto_chooses_by_cpu_and_tflite(exported, tmp_path, monkeypatch, caplog):
    pb_path, _ = exported
    caplog.set_level('INFO')
    monkeypatch.setattr(face_detector, 'cpu_has_native_bfloat16', lambda *args: True)
    assert FaceDetector(pb_path, precision='auto').backend == 'tensorflow'
    assert 'backend auto -> tensorflow: the CPU has native bfloat16' in caplog.text
    monkeypatch.setattr(face_detector, 'cpu_has_native_bfloat16', lambda *args: False)
    detector = FaceDetector(pb_path, precision='auto')
    assert (detector.backend, detector.precision) == ('litert', 'float32')
    assert 'backend auto -> litert: the CPU has no native bfloat16 and' in caplog.text
    # An explicit precision keeps TensorFlow: float32 stays the frozen graph bit for bit.
    assert FaceDetector(pb_path).backend == 'tensorflow'
    # No .tflite beside the .pb: TensorFlow float32, and the log says why.
    alone = str(tmp_path / 'alone.pb')
    shutil.copyfile(pb_path, alone)
    caplog.clear()
    detector = FaceDetector(alone, precision='auto')
    assert (detector.backend, detector.precision) == ('tensorflow', 'float32')
    assert 'alone.tflite: not found' in caplog.text
    # ai_edge_litert not installed: the same fallback; forcing LiteRT says how to install it.

    def no_litert():
        raise ImportError('the LiteRT backend needs the ai_edge_litert package: pip install ai-edge-litert==2.3.0')

    monkeypatch.setattr(face_detector, '_import_litert', no_litert)
    assert FaceDetector(pb_path, precision='auto').backend == 'tensorflow'
    with pytest.raises(ImportError, match='pip install ai-edge-litert'):
        FaceDetector(pb_path, backend='litert')


def test_a_graph_whose_network_does_not_pad_is_refused(tmp_path):
    # The TF1-style test graph runs its network on the image as given (no padding to 128):
    # padded, its heads have other shapes, so the export refuses it instead of writing a
    # .tflite that would give other boxes.
    path = str(tmp_path / 'tf1.pb')
    tf1_graph.build_tf1_style_graph(path, seed=0, max_boxes=MAX_BOXES)
    with pytest.raises(tflite_export.TfliteExportError, match='do not reproduce the graph'):
        tflite_export.export_tflite(path)
    assert not os.path.exists(str(tmp_path / 'tf1.tflite'))


def test_undouble_conv1_keeps_the_values():
    # A doubled CReLU convolution [W, -W] -> relu -> max pool, rewritten to W and a negation.
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.1, (7, 7, 3, 4)).astype(np.float32)
    bias = rng.normal(0, 0.5, (4,)).astype(np.float32)

    def doubled(x):
        y = tf.nn.bias_add(tf.nn.conv2d(x, np.concatenate([kernel, -kernel], -1), 4, 'VALID'),
                           np.concatenate([bias, -bias]))
        return tf.identity(tf.nn.max_pool2d(tf.nn.relu(y), 3, 2, 'SAME'), name='out')

    function = tf.function(doubled, input_signature=[tf.TensorSpec([1, 35, 35, 3], tf.float32)])
    graph_def = function.get_concrete_function().graph.as_graph_def()
    part = {node.name for node in graph_def.node}
    rewritten, count = tflite_export.undouble_conv1(graph_def, part)
    assert count == 1
    assert 'Neg' in {node.op for node in rewritten.node}
    image = rng.uniform(0, 255, (1, 35, 35, 3)).astype(np.float32)

    def run(graph):
        wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph, name=''), [])
        placeholder = [node.name for node in graph.node if node.op == 'Placeholder'][0]
        return wrapped.prune(wrapped.graph.get_tensor_by_name(placeholder + ':0'),
                             wrapped.graph.get_tensor_by_name('out:0'))(tf.constant(image)).numpy()

    np.testing.assert_allclose(run(rewritten), run(graph_def), rtol=0, atol=1e-4)


@pytest.mark.parametrize('backend', ['tensorflow', 'litert'])
def test_scores_the_caller_drops_stay_out_of_nms_without_changing_the_rest(exported, backend, monkeypatch):
    # Greedy NMS lets a box suppress only lower-scoring ones: the rows above the threshold are
    # the same, bit for bit, with and without the boxes at or below it. Noise images with
    # boosted class biases fill all MAX_BOXES rows, so the cap is exercised too.
    pb_path, _ = exported
    detector = FaceDetector(pb_path, backend=backend, precision='float32')
    monkeypatch.setattr(face_detector, 'add_score_floor', lambda graph_def: (graph_def, False))
    unfloored = FaceDetector(pb_path, backend=backend, precision='float32')
    assert detector._floored and not unfloored._floored
    for seed, (height, width) in enumerate([(256, 384), (200, 300), (97, 130)]):
        image = _random_image(height, width, seed=seed)
        for threshold in (0.05, 0.3, 0.6, 0.95, 0.9995):
            want, got = unfloored(image, threshold), detector(image, threshold)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        batch = [image, _random_image(height, width, seed=seed + 10)]
        for want, got in zip(unfloored.detect_batch(batch, 0.3), detector.detect_batch(batch, 0.3)):
            np.testing.assert_array_equal(got[1], want[1])
        options = {'min_dimension': 300} if height < 150 else {'max_dimension': 128}
        np.testing.assert_array_equal(detector(image, 0.3, **options)[1], unfloored(image, 0.3, **options)[1])
    assert len(unfloored(_random_image(256, 384), 0.05)[1]) == MAX_BOXES
    # NMS saw fewer boxes: the graph's own outputs are no longer full.
    batch = _random_image(256, 384)[np.newaxis]
    counts = [int(detector._run(batch, None, threshold)[2].numpy()[0]) for threshold in (0.0, 0.6)]
    assert counts[0] == MAX_BOXES > counts[1] > 0
