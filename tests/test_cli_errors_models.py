"""The error policy of the model scripts, through their real command lines (issue 12).

create_pb.py, save.py, predict_for_fddb.py, python -m src.evaluation.evaluate_model and
python -m src.evaluation.wider: a user error (a path, a format, a corrupt model or checkpoint,
a bad value) ends with exactly one non-empty stderr line starting with 'error:' and a non-zero
exit code, nothing existing is lost or replaced (outputs only with --overwrite), and --debug
shows the traceback instead.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(ROOT, "model", "facebox.pb")
SAMPLE_CONFIG = os.path.join(ROOT, "configs", "sample.json")
TIMEOUT = 300  # seconds; a TensorFlow start takes ~5 s on the 2-core machine, more when it is busy
GARBAGE = b"\xff\x00 definitely not a protobuf or a checkpoint \x13\x37\n" * 40


def run_cli(args, umask=None):
    """Runs `python <args>` in the repository root; returns the CompletedProcess (text)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([sys.executable] + [str(a) for a in args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=preexec)


def assert_one_error_line(result, *fragments):
    """Exactly one non-empty stderr line, 'error: ...' containing `fragments`; non-zero exit."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(folder):
    """{relative path: bytes (files) or None (folders)} of everything under `folder`."""
    state = {}
    for parent, dirs, files in os.walk(folder):
        for name in dirs:
            state[os.path.relpath(os.path.join(parent, name), folder)] = None
        for name in files:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                state[os.path.relpath(path, folder)] = f.read()
    return state


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """An export folder holding one SavedModel version '1' of an untrained FaceBoxes."""
    import tensorflow as tf  # noqa: F401
    from src import export
    from src.detector import FaceBoxes

    parent = tmp_path_factory.mktemp("export")
    export.save_saved_model(FaceBoxes(seed=0), str(parent / "1"), 0.05, 0.3, 20)
    return parent


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A folder with one checkpoint of ours (step 7) and its 'checkpoint' state file."""
    import tensorflow as tf
    from src.detector import FaceBoxes

    folder = tmp_path_factory.mktemp("ckpts")
    checkpoint = tf.train.Checkpoint(model=FaceBoxes(seed=0), step=tf.Variable(7, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1).save(checkpoint_number=7)
    return folder


# --- create_pb.py -----------------------------------------------------------------------------

def test_create_pb_never_replaces_an_existing_output_without_overwrite(saved_model, tmp_path):
    output = tmp_path / "facebox.pb"
    output.write_bytes(b"the model someone shipped")
    before = snapshot(tmp_path)
    result = run_cli(["create_pb.py", "-s", saved_model, "-o", output])
    assert_one_error_line(result, str(output), "already exists", "--overwrite")
    assert snapshot(tmp_path) == before
    result = run_cli(["create_pb.py", "-s", saved_model, "-o", output, "--overwrite"])
    assert result.returncode == 0, result.stderr
    import tensorflow as tf
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(output.read_bytes())
    assert {"image_tensor", "boxes", "scores", "num_boxes"} <= {node.name for node in graph_def.node}
    assert sorted(os.listdir(tmp_path)) == ["facebox.pb"]  # no temporary file left behind


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_create_pb_output_that_is_a_folder(saved_model, tmp_path, overwrite):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me")
    before = snapshot(tmp_path)
    result = run_cli(["create_pb.py", "-s", saved_model, "-o", folder] + overwrite)
    assert_one_error_line(result, str(folder), "is a folder")
    assert snapshot(tmp_path) == before


def test_create_pb_corrupt_saved_model(saved_model, tmp_path):
    broken = tmp_path / "export"
    shutil.copytree(saved_model, broken)
    (broken / "1" / "saved_model.pb").write_bytes(GARBAGE)
    before = snapshot(tmp_path)
    result = run_cli(["create_pb.py", "-s", broken, "-o", tmp_path / "out.pb"])
    assert_one_error_line(result, os.path.join(str(broken), "1"), "not a readable SavedModel")
    assert snapshot(tmp_path) == before  # no output, no temporary file


def test_create_pb_empty_version_folder(tmp_path):
    (tmp_path / "export" / "3").mkdir(parents=True)
    result = run_cli(["create_pb.py", "-s", tmp_path / "export", "-o", tmp_path / "out.pb"])
    assert_one_error_line(result, os.path.join(str(tmp_path / "export"), "3"), "no saved_model.pb")
    assert not (tmp_path / "out.pb").exists()


def test_create_pb_debug_shows_the_traceback(tmp_path):
    (tmp_path / "export" / "3").mkdir(parents=True)
    result = run_cli(["create_pb.py", "-s", tmp_path / "export", "-o", tmp_path / "out.pb", "--debug"])
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr and "UserError" in result.stderr


# --- save.py ----------------------------------------------------------------------------------

def _bad_checkpoint(kind, tmp_path):
    if kind == "missing":
        return tmp_path / "models" / "ckpt-5", ["ckpt-5", "no such checkpoint"]
    if kind == "folder":
        folder = tmp_path / "models"
        folder.mkdir()
        (folder / "notes.txt").write_text("no checkpoint here")
        return folder, [str(folder), "no 'checkpoint' state file"]
    path = tmp_path / "weights.bin"
    path.write_bytes(GARBAGE)
    return path, [str(path), "not a readable TensorFlow checkpoint"]


@pytest.mark.parametrize("kind", ["missing", "folder", "random_file"])
def test_save_bad_checkpoint_is_one_line(tmp_path, kind):
    checkpoint, fragments = _bad_checkpoint(kind, tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(["save.py", "--config", SAMPLE_CONFIG, "--checkpoint", checkpoint,
                      "--output_dir", tmp_path / "export"])
    assert_one_error_line(result, *fragments)
    assert snapshot(tmp_path) == before  # no export folder


def test_save_accepts_a_checkpoint_folder_and_gives_normal_permissions(checkpoint_dir, tmp_path):
    output = tmp_path / "export"
    result = run_cli(["save.py", "--config", SAMPLE_CONFIG, "--checkpoint", checkpoint_dir,
                      "--output_dir", output], umask=0o022)
    assert result.returncode == 0, result.stderr
    assert os.listdir(output) == ["7"]  # versioned by the checkpoint's step
    assert os.stat(output / "7").st_mode & 0o777 == 0o755  # 0o777 minus the umask, not 0o700
    assert os.path.isfile(output / "7" / "saved_model.pb")
    # A second export of the same step is refused; the first one stays as it was.
    before = snapshot(output)
    result = run_cli(["save.py", "--config", SAMPLE_CONFIG, "--checkpoint", checkpoint_dir / "ckpt-7",
                      "--output_dir", output])
    assert_one_error_line(result, os.path.join(str(output), "7"), "already exists")
    assert snapshot(output) == before


# --- evaluate_model ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["tfrecords_missing", "model_folder", "model_corrupt"])
def test_evaluate_model_user_errors(tmp_path, case):
    model, tfrecords = SHIPPED_MODEL, tmp_path / "val_shards"
    if case == "tfrecords_missing":
        fragments = [str(tfrecords), "no such"]
    else:
        tfrecords.mkdir()
        if case == "model_folder":
            model, fragments = tmp_path, [str(tmp_path), "is a folder"]
        else:
            model = tmp_path / "broken.pb"
            model.write_bytes(GARBAGE)
            fragments = [str(model), "not a frozen GraphDef"]
    result = run_cli(["-m", "src.evaluation.evaluate_model", "--model", model, "--tfrecords", tfrecords])
    assert_one_error_line(result, *fragments)


# --- predict_for_fddb.py ----------------------------------------------------------------------

def _tiny_fddb(root):
    """One fold, one 64x48 image with one face ellipse."""
    folds = root / "FDDB-folds"
    folds.mkdir(parents=True)
    (folds / "FDDB-fold-01.txt").write_text("2002/big/img_1\n")
    (folds / "FDDB-fold-01-ellipseList.txt").write_text("2002/big/img_1\n1\n10 8 0 30 20 1\n")
    pics = root / "originalPics" / "2002" / "big"
    pics.mkdir(parents=True)
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(pics / "img_1.jpg")
    return root


@pytest.mark.parametrize("case", ["missing", "corrupt", "folder"])
def test_predict_for_fddb_bad_model_is_one_line(tmp_path, case):
    fddb = _tiny_fddb(tmp_path / "FDDB")
    model = tmp_path / "model.pb"
    fragments = {"missing": [str(model), "no such model file"],
                 "corrupt": [str(model), "not a frozen GraphDef"],
                 "folder": [str(model), "is a folder"]}[case]
    if case == "corrupt":
        model.write_bytes(GARBAGE)
    elif case == "folder":
        model.mkdir()
    result = run_cli(["predict_for_fddb.py", "--fddb_dir", fddb, "--model", model,
                      "--output_dir", tmp_path / "result"])
    assert_one_error_line(result, *fragments)
    assert not (tmp_path / "result").exists()


def test_predict_for_fddb_keeps_existing_results_without_overwrite(tmp_path):
    fddb = _tiny_fddb(tmp_path / "FDDB")
    result_dir = tmp_path / "result"
    result_dir.mkdir()
    (result_dir / "detections.txt").write_text("results of last week\n")
    before = snapshot(tmp_path)
    args = ["predict_for_fddb.py", "--fddb_dir", fddb, "--model", SHIPPED_MODEL, "--output_dir", result_dir]
    result = run_cli(args)
    assert_one_error_line(result, os.path.join(str(result_dir), "detections.txt"), "already exists",
                          "--overwrite")
    assert snapshot(tmp_path) == before
    result = run_cli(args + ["--overwrite", "--max_dimension", "32"])
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(result_dir)) == ["detections.txt", "ellipseList.txt", "faceList.txt"]
    assert (result_dir / "detections.txt").read_text().startswith("2002/big/img_1\n")


# --- python -m src.evaluation.wider -----------------------------------------------------------

def test_wider_help_works():
    result = run_cli(["-m", "src.evaluation.wider", "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "--gt" in result.stdout and "--detections" in result.stdout


def test_wider_cli_evaluates_and_reports_user_errors(tmp_path):
    gt = tmp_path / "wider_face_val_bbx_gt.txt"
    gt.write_text("0--Parade/a.jpg\n2\n10 10 50 50 0 0 0 0 0 0\n100 100 40 40 0 0 0 0 0 0\n")
    dets = tmp_path / "dets" / "0--Parade"
    dets.mkdir(parents=True)
    (dets / "a.txt").write_text("a\n2\n10 10 50 50 0.9\n300 300 10 10 0.5\n")
    metrics = tmp_path / "wider.json"
    args = ["-m", "src.evaluation.wider", "--gt", gt, "--detections", tmp_path / "dets", "--json", metrics]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    assert "AP@0.5 0.5000" in result.stdout  # one of two faces found, first in score order
    assert '"ap": 0.5' in metrics.read_text()
    before = snapshot(tmp_path)
    assert_one_error_line(run_cli(args), str(metrics), "already exists")
    missing = tmp_path / "nope.txt"
    assert_one_error_line(run_cli(["-m", "src.evaluation.wider", "--gt", missing, "--detections",
                                   tmp_path / "dets"]), str(missing), "no such ground-truth file")
    gt_bad = tmp_path / "bad_gt.txt"
    gt_bad.write_text("0--Parade/a.jpg\nmany\n")
    assert_one_error_line(run_cli(["-m", "src.evaluation.wider", "--gt", gt_bad, "--detections",
                                   tmp_path / "dets"]), str(gt_bad) + ":2:")
    after = snapshot(tmp_path)
    after.pop("bad_gt.txt")
    assert after == before
