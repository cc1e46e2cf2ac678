"""Tests for src/atomic_io.py (temporary sibling, then rename) and the writers that use it."""
import importlib.util
import os
import types

import numpy as np
import pytest

from src import atomic_io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_write_with_hands_a_hidden_sibling_with_the_extension_and_renames(tmp_path):
    destination = tmp_path / "sub" / "plot.png"  # the folder does not exist yet
    seen = []

    def writer(tmp):
        seen.append(tmp)
        with open(tmp, "wb") as f:
            f.write(b"complete")
        return 42

    assert atomic_io.write_with(str(destination), writer) == 42
    assert destination.read_bytes() == b"complete"
    (tmp,) = seen
    assert os.path.dirname(tmp) == str(destination.parent)
    assert os.path.basename(tmp).startswith(".") and tmp.endswith(".png")
    assert sorted(os.listdir(destination.parent)) == ["plot.png"]


def test_write_with_failure_removes_the_temporary_and_keeps_the_old_file(tmp_path):
    destination = tmp_path / "plot.png"
    destination.write_bytes(b"old")

    def writer(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_io.write_with(str(destination), writer)
    assert destination.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["plot.png"]
    # A writer that fails before creating anything is fine too.
    with pytest.raises(ValueError):
        atomic_io.write_with(str(destination), lambda tmp: int("x"))
    assert os.listdir(tmp_path) == ["plot.png"]


def test_write_text_and_bytes_atomic(tmp_path):
    atomic_io.write_text_atomic(str(tmp_path / "a" / "b.txt"), "é\n")
    assert (tmp_path / "a" / "b.txt").read_bytes() == "é\n".encode("utf-8")
    atomic_io.write_bytes_atomic(str(tmp_path / "a" / "b.txt"), b"new")
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"new"
    assert os.listdir(tmp_path / "a") == ["b.txt"]


def test_roc_plot_is_saved_through_a_png_named_sibling(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from src.evaluation.roc_plot import save_roc_plot

    names = []
    original = Figure.savefig

    def spy(self, fname, *args, **kwargs):
        names.append(fname)
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    curve = types.SimpleNamespace(false_positives=np.array([0.0, 5.0, 40.0]),
                                  tpr_discrete=np.array([0.0, 0.5, 0.9]),
                                  tpr_continuous=np.array([0.0, 0.4, 0.8]))
    path = tmp_path / "ROC.png"
    save_roc_plot(str(path), curve)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (written,) = names
    assert os.path.dirname(written) == str(tmp_path) and written.endswith(".png") and written != str(path)
    assert os.listdir(tmp_path) == ["ROC.png"]


def _bench_detector():
    spec = importlib.util.spec_from_file_location("bench_detector", os.path.join(ROOT, "bench", "bench_detector.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_detector_json_is_written_atomically(tmp_path):
    bench = _bench_detector()
    path = tmp_path / "bench.json"
    bench._write_json(str(path), {"median_ms": 13.4})
    assert path.read_text() == '{\n  "median_ms": 13.4\n}'
    with pytest.raises(TypeError):
        bench._write_json(str(path), {"median_ms": 1.0, "bad": object()})  # not JSON
    assert path.read_text() == '{\n  "median_ms": 13.4\n}'
    assert os.listdir(tmp_path) == ["bench.json"]  # no half-written temporary file left
