"""Tests for src/average_checkpoints.py (uniform weight averages of upstream-format checkpoints)."""
import numpy as np
import pytest
import tensorflow as tf

from src import average_checkpoints as avg
from src.cli import UserError, report_errors
from src.detector import FaceBoxes
from src.upstream_checkpoint import load_upstream_checkpoint, write_checkpoint, write_upstream_checkpoint


def _write(path, **values):
    return write_checkpoint(values, str(path))


def test_average_by_hand(tmp_path):
    a = _write(tmp_path / "a.ckpt", w=np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
               b=np.array([0.5], np.float32), global_step=np.int64(100))
    b = _write(tmp_path / "b.ckpt", w=np.array([[3.0, 2.0], [1.0, 0.0]], np.float32),
               b=np.array([1.5], np.float32), global_step=np.int64(250))
    c = _write(tmp_path / "c.ckpt", w=np.array([[2.0, 2.0], [2.0, 2.0]], np.float32),
               b=np.array([1.0], np.float32), global_step=np.int64(50))
    values = avg.average_checkpoints([a, b, c])
    np.testing.assert_array_equal(values["w"], [[2.0, 2.0], [2.0, 2.0]])
    assert values["w"].dtype == np.float32
    np.testing.assert_array_equal(values["b"], [1.0])
    assert values["global_step"] == 250 and values["global_step"].dtype == np.int64
    assert sorted(values) == ["b", "global_step", "w"]


def test_cli_writes_a_checkpoint_the_model_loads(tmp_path, capsys):
    """Two FaceBoxes with different weights -> the average loads into a third, every variable the mean."""
    prefixes, models = [], []
    for seed in (1, 2):
        model = FaceBoxes(seed=seed)
        for variable in model.named_variables().values():  # moving statistics too, not only kernels
            variable.assign(tf.random.uniform(variable.shape, 0.5, 1.5, seed=seed))
        models.append(model)
        prefixes.append(write_upstream_checkpoint(model, str(tmp_path / f"m{seed}.ckpt"), global_step=seed * 10))
    output = str(tmp_path / "out" / "soup.ckpt")
    assert report_errors(avg.main, ["--checkpoints", *prefixes, "--output", output]) == 0
    assert "the average of 2 checkpoints" in capsys.readouterr().out
    third = FaceBoxes(seed=3)
    load_upstream_checkpoint(third, output)
    for name, variable in third.named_variables().items():
        expected = (models[0].named_variables()[name].numpy().astype(np.float64)
                    + models[1].named_variables()[name].numpy()) / 2
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6, err_msg=name)
    assert tf.train.load_checkpoint(output).get_tensor("global_step") == 20
    # No temporary files are left next to the output.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["soup.ckpt.data-00000-of-00001", "soup.ckpt.index"]


def test_mismatched_inputs_are_one_line_errors(tmp_path):
    a = _write(tmp_path / "a.ckpt", w=np.zeros([2, 2], np.float32))
    other_name = _write(tmp_path / "b.ckpt", v=np.zeros([2, 2], np.float32))
    other_shape = _write(tmp_path / "c.ckpt", w=np.zeros([2, 3], np.float32))
    labels = _write(tmp_path / "d.ckpt", w=np.zeros([2, 2], np.float32), k=np.array([1, 2], np.int32))
    labels2 = _write(tmp_path / "e.ckpt", w=np.zeros([2, 2], np.float32), k=np.array([1, 3], np.int32))
    with pytest.raises(UserError, match="at least two"):
        avg.average_checkpoints([a])
    with pytest.raises(UserError, match=r"b\.ckpt: lacks 'w' in .*a\.ckpt"):
        avg.average_checkpoints([a, other_name])
    with pytest.raises(UserError, match=r"c\.ckpt: 'w' is float32 \[2, 3\], in .*a\.ckpt float32 \[2, 2\]"):
        avg.average_checkpoints([a, other_shape])
    with pytest.raises(UserError, match=r"'k' \(int32\) differs"):
        avg.average_checkpoints([labels, labels2])
    with pytest.raises(UserError, match=r"missing\.ckpt: no checkpoint there"):
        avg.average_checkpoints([a, str(tmp_path / "missing.ckpt")])


def test_cli_refuses_to_overwrite_and_reports_one_line(tmp_path, capsys):
    a = _write(tmp_path / "a.ckpt", w=np.ones([2], np.float32))
    b = _write(tmp_path / "b.ckpt", w=np.full([2], 3.0, np.float32))
    assert report_errors(avg.main, ["--checkpoints", a, b, "--output", a]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "already exists" in err and "\n" not in err
    assert report_errors(avg.main, ["--checkpoints", a, b, "--output", a, "--overwrite"]) == 0
    np.testing.assert_array_equal(tf.train.load_checkpoint(a).get_tensor("w"), [2.0, 2.0])
