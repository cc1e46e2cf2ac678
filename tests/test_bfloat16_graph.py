"""The bfloat16 rewrite (face_detector.py, its one home, which src/frozen_graph.py imports) and
FrozenGraphDetector's precision: the rewrite happens where TensorFlow's oneDNN pass rewrites on
this CPU and falls back to float32 elsewhere, both detectors answer alike, and 'auto' follows the
CPU (faked both ways)."""
import os

import numpy as np
import pytest

import face_detector
from face_detector import FaceDetector
from src.frozen_graph import FrozenGraphDetector, read_graph_def
from tests.cpu_features import REWRITES_BFLOAT16, knows_cpu_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(ROOT, "model", "facebox.pb")


def test_the_rewrite_happens_where_the_cpu_allows_it():
    rewritten = face_detector._rewrite_to_bfloat16(read_graph_def(SHIPPED_MODEL))
    bf16 = 14  # DataType enum of bfloat16
    convolutions = any(node.op.endswith("Conv2D") and node.attr["T"].type == bf16 for node in rewritten.node)
    # Where the CPU lets the pass rewrite: bfloat16 convolutions; elsewhere no node at all in
    # bfloat16 (the fallback then runs float32).
    if REWRITES_BFLOAT16:
        assert convolutions and face_detector._computes_in_bfloat16(rewritten)
    elif REWRITES_BFLOAT16 is False:
        assert not face_detector._computes_in_bfloat16(rewritten)
    assert not face_detector._computes_in_bfloat16(read_graph_def(SHIPPED_MODEL))


def test_capability_check_and_auto(tmp_path):
    cases = {"amx": "flags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n",
             "avx512": "processor : 0\nflags : fpu avx512_bf16\n",
             "neither": "flags : fpu sse2 avx2 avx512f\n"}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert face_detector.cpu_has_native_bfloat16(str(path)) == (name != "neither")
    assert not face_detector.cpu_has_native_bfloat16(str(tmp_path / "missing"))
    for native in (False, True):
        assert face_detector.resolve_precision("auto", has_native_bfloat16=native) == (
            "bfloat16" if native else "float32")
    assert face_detector.resolve_precision("float32", has_native_bfloat16=True) == "float32"
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, auto, got 'half'"):
        face_detector.resolve_precision("half")


@knows_cpu_flags
def test_frozen_graph_detector_bfloat16_answers_like_face_detector(monkeypatch):
    skimage_data = pytest.importorskip("skimage.data")
    image = skimage_data.astronaut()
    ours = FrozenGraphDetector(SHIPPED_MODEL, precision="bfloat16")
    want = FaceDetector(SHIPPED_MODEL, precision="bfloat16")
    assert ours.precision == want.precision == ("bfloat16" if REWRITES_BFLOAT16 else "float32")
    boxes, scores = ours(image, score_threshold=0.0)
    want_boxes, want_scores = want(image, score_threshold=0.0)
    np.testing.assert_array_equal(boxes, want_boxes)
    np.testing.assert_array_equal(scores, want_scores)
    float32_scores = FrozenGraphDetector(SHIPPED_MODEL)(image, score_threshold=0.0)[1]
    # It really ran in another precision where the CPU allows it; elsewhere it ran float32, bit for bit.
    assert np.array_equal(scores, float32_scores) == (not REWRITES_BFLOAT16)
    monkeypatch.setattr(face_detector, "cpu_has_native_bfloat16", lambda *args: False)
    assert FrozenGraphDetector(SHIPPED_MODEL, precision="auto").precision == "float32"
    with pytest.raises(ValueError, match="got 'half'"):
        FrozenGraphDetector(SHIPPED_MODEL, precision="half")


def test_bfloat16_falls_back_to_float32_where_the_pass_does_not_rewrite(monkeypatch, caplog):
    # The pass faked to do what it does on CPUs without AVX-512 (return the graph unchanged):
    # both detectors then report float32 and answer bit for bit like float32, with a warning.
    skimage_data = pytest.importorskip("skimage.data")
    image = skimage_data.astronaut()
    want = FrozenGraphDetector(SHIPPED_MODEL)(image, score_threshold=0.0)
    monkeypatch.setattr(face_detector, "_rewrite_to_bfloat16", lambda graph_def: graph_def)
    caplog.set_level("WARNING")
    for detector in (FrozenGraphDetector(SHIPPED_MODEL, precision="bfloat16"),
                     FaceDetector(SHIPPED_MODEL, precision="bfloat16")):
        assert detector.precision == "float32"
        got = detector(image, score_threshold=0.0)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert caplog.text.count("bfloat16 requested, but TensorFlow's oneDNN bfloat16 pass does not rewrite") == 2
    # 'auto' on a CPU faked to have bfloat16 units takes the same path, and on one faked
    # without them never tries the rewrite.
    monkeypatch.setattr(face_detector, "cpu_has_native_bfloat16", lambda *args: True)
    assert FaceDetector(SHIPPED_MODEL, precision="auto").precision == "float32"
    monkeypatch.setattr(face_detector, "cpu_has_native_bfloat16", lambda *args: False)
    monkeypatch.setattr(face_detector, "_rewrite_to_bfloat16", None)  # would raise if called
    assert FaceDetector(SHIPPED_MODEL, precision="auto").precision == "float32"


def test_the_tests_own_reading_of_the_cpu_flags(tmp_path):
    # tests/cpu_features.py decides which branch the CPU-dependent tests expect: faked both ways.
    from tests.cpu_features import onednn_rewrites_bfloat16
    cases = {"avx2_only": ("flags : fpu sse2 avx avx2 fma\n", False),
             "avx512": ("flags : fpu avx2 avx512f avx512bw\n", True),
             "avx_ne_convert": ("flags : fpu avx2 avx_ne_convert\n", True)}
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        assert onednn_rewrites_bfloat16(str(tmp_path / name)) is expected, name
    assert onednn_rewrites_bfloat16(str(tmp_path / "missing")) is None
