"""Tests for src/bfloat16_graph.py and FrozenGraphDetector's precision: the library's copy of
FaceDetector's bfloat16 rewrite must stay in step with face_detector.py's own (same graph, same
answers), and 'auto' must follow the CPU."""
import os

import numpy as np
import pytest

import face_detector
from face_detector import FaceDetector
from src import bfloat16_graph
from src.frozen_graph import FrozenGraphDetector, read_graph_def

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(ROOT, "model", "facebox.pb")


def test_same_rewritten_graph_as_face_detector():
    ours = bfloat16_graph.rewrite_to_bfloat16(read_graph_def(SHIPPED_MODEL))
    theirs = face_detector._rewrite_to_bfloat16(face_detector._read_graph_def(SHIPPED_MODEL))
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    # The rewrite really happened: bfloat16 convolutions and a single uint8 -> bfloat16 cast.
    bf16 = 14  # DataType enum of bfloat16
    assert any(node.op.endswith("Conv2D") and node.attr["T"].type == bf16 for node in ours.node)
    assert any(node.op == "Cast" and node.attr["DstT"].type == bf16 and node.attr["SrcT"].type == 4
               for node in ours.node)


def test_capability_check_and_auto_agree_with_face_detector(tmp_path):
    cases = {"amx": "flags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n",
             "avx512": "processor : 0\nflags : fpu avx512_bf16\n",
             "neither": "flags : fpu sse2 avx2 avx512f\n"}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert bfloat16_graph.cpu_has_native_bfloat16(str(path)) == (name != "neither")
        assert face_detector.cpu_has_native_bfloat16(str(path)) == (name != "neither")
    assert not bfloat16_graph.cpu_has_native_bfloat16(str(tmp_path / "missing"))
    for native in (False, True):
        assert (bfloat16_graph.resolve_precision("auto", has_native_bfloat16=native)
                == face_detector.resolve_precision("auto", has_native_bfloat16=native)
                == ("bfloat16" if native else "float32"))
    assert bfloat16_graph.resolve_precision("float32", has_native_bfloat16=True) == "float32"
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, auto, got 'half'"):
        bfloat16_graph.resolve_precision("half")


def test_frozen_graph_detector_bfloat16_answers_like_face_detector(monkeypatch):
    skimage_data = pytest.importorskip("skimage.data")
    image = skimage_data.astronaut()
    ours = FrozenGraphDetector(SHIPPED_MODEL, precision="bfloat16")
    assert ours.precision == "bfloat16"
    boxes, scores = ours(image, score_threshold=0.0)
    want_boxes, want_scores = FaceDetector(SHIPPED_MODEL, precision="bfloat16")(image, score_threshold=0.0)
    np.testing.assert_array_equal(boxes, want_boxes)
    np.testing.assert_array_equal(scores, want_scores)
    float32_scores = FrozenGraphDetector(SHIPPED_MODEL)(image, score_threshold=0.0)[1]
    assert not np.array_equal(scores, float32_scores)  # it really ran in another precision
    monkeypatch.setattr(bfloat16_graph, "cpu_has_native_bfloat16", lambda *args: False)
    assert FrozenGraphDetector(SHIPPED_MODEL, precision="auto").precision == "float32"
    with pytest.raises(ValueError, match="got 'half'"):
        FrozenGraphDetector(SHIPPED_MODEL, precision="half")
