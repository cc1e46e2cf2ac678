"""The README's promises on the real command lines (issue 28's "Promises broken" 1-9).

Each run checks the exit code, the one ``error:`` line on stderr and that no file changed. Runs that
need no TensorFlow go first; the runs of one test go in parallel where they are independent.
"""
import concurrent.futures
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, env=None):
    """(exit code, non-empty stderr lines, stdout) of ``python <args>`` from the repository root."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.strip()], proc.stdout


def run_all(*commands):
    """run() of each command (a tuple of arguments), in parallel; results in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run(*args), commands))


def one_error(result, *fragments):
    """Asserts exit code 2 and exactly one stderr line ``error: ...`` holding `fragments`."""
    code, lines, _ = result
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, lines)
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def snapshot(folder):
    """{relative path: sha1} of every file under `folder`."""
    files = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(parent, name), "rb") as f:
                files[os.path.relpath(os.path.join(parent, name), folder)] = hashlib.sha1(f.read()).hexdigest()
    return files


def tiny_video(path, width=64, height=48, frames=3):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
    for k in range(frames):
        writer.write(np.full((height, width, 3), 40 * k, np.uint8))
    writer.release()


def test_promises_kept_without_tensorflow(tmp_path):
    """1, 2, 4, 5, 8, 9: refused outputs, sizes, folders and values, all before TensorFlow loads."""
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((20, 30, 3), 90, np.uint8))
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep me")
    results_dir = tmp_path / "result"
    results_dir.mkdir()
    (results_dir / "DiscROC.txt").write_text("earlier results\n")
    videos = tmp_path / "videos"
    videos.mkdir()
    tiny_video(videos / "tiny.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    config = json.load(open(os.path.join(ROOT, "configs", "sample.json")))
    model_dir_file = tmp_path / "model_dir_is_a_file"
    model_dir_file.write_text("not a folder")
    config["training"]["model_dir"] = str(model_dir_file)
    (tmp_path / "recipe.json").write_text(json.dumps(config))
    before = snapshot(tmp_path)

    (visualize_input, visualize_existing, fddb, scale, scale_zero_px, train, no_video, missing, folder_model,
     output_file, shards) = run_all(
        ("-m", "src.visualize", "detections", "--model", "model/facebox.pb", "--images", photo, "--output", photo,
         "--overwrite"),
        ("-m", "src.visualize", "anchors", "--output", existing),
        ("evaluate_fddb.py", "-a", tmp_path / "a.txt", "-d", tmp_path / "d.txt", "-i", tmp_path, "-r",
         f"{results_dir}/"),
        ("start.py", videos, "--scale", "0.5", "--output_path", tmp_path / "out"),
        ("start.py", videos / "tiny.mp4", "--scale", "0.001", "--output_path", tmp_path / "out"),
        ("train.py", "--config", tmp_path / "recipe.json"),
        ("start.py", empty, "--output_path", tmp_path / "out"),
        ("start.py", tmp_path / "nowhere" / "clip.mp4"),
        ("start.py", videos, "--model", tmp_path, "--output_path", tmp_path / "out"),
        ("start.py", videos, "--output_path", existing),
        ("create_tfrecords.py", "--image_dir", tmp_path, "--annotations_dir", tmp_path, "--output", tmp_path / "s",
         "--num_shards", "0"),
    )
    one_error(visualize_input, f"{photo}: is also an input")  # 1: never the input, even with --overwrite
    one_error(visualize_existing, f"{existing}: already exists; pass --overwrite")  # 1
    one_error(fddb, f"{results_dir}/DiscROC.txt: already exists; pass --overwrite")  # 2
    one_error(scale, "tiny.mp4: --scale 0.5 makes its 64x48 frames 32x24 px, smaller than")  # 4
    one_error(scale_zero_px, "--scale 0.001 makes its 64x48 frames 0x0 px")  # 4
    one_error(train, f"{model_dir_file}: exists and is not a folder (training.model_dir of")  # 5
    one_error(no_video, f"{empty}: no video file in it")  # 8: exit 2, not 1
    one_error(missing, f"{tmp_path / 'nowhere'}")  # 9: a missing folder is named as such
    assert "no such folder" in missing[1][0]
    one_error(folder_model, f"{tmp_path}: is a folder, not a frozen graph")  # 9
    one_error(output_file, f"{existing}: exists and is not a folder (--output_path)")  # 9: not "File exists"
    one_error(shards, "--num_shards must be >= 1, got 0")  # 8: before TensorFlow's start-up lines
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced (no empty output folder either)


def test_evaluate_fddb_names_the_count_line_of_a_short_detection_list(tmp_path):
    """9: a count that promises more detections than follow points at that count, not the next image."""
    (tmp_path / "a.txt").write_text("img_1\n1\n10 8 0 20 20 1\nimg_2\n1\n10 8 0 20 20 1\n")
    (tmp_path / "d.txt").write_text("img_1\n2\n1 2 3 4 0.9\nimg_2\n0\n")
    code, lines, _ = run("evaluate_fddb.py", "-a", tmp_path / "a.txt", "-d", tmp_path / "d.txt", "-i", tmp_path,
                         "-r", f"{tmp_path}/out/")
    one_error((code, lines, ""), f"{tmp_path / 'd.txt'}:2: the detection count says 2 for 'img_1', but 1 "
                                 "detection line(s) follow before the next image path 'img_2' (line 4)")
    assert not (tmp_path / "out").exists()


def test_create_tfrecords_never_writes_a_face_with_swapped_corners_as_background(tmp_path):
    """3: an item with a box whose xmin > xmax is skipped, not written as a face-free image."""
    from src.annotations import Annotation, write_annotation

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.full((30, 40, 3), 120, np.uint8))
    write_annotation(str(tmp_path / "annotations" / "a.json"),
                     Annotation("a.jpg", 40, 30, 3, np.array([[30.0, 5.0, 10.0, 25.0]])))
    code, lines, _ = run("create_tfrecords.py", "--image_dir", tmp_path / "images", "--annotations_dir",
                         tmp_path / "annotations", "--output", tmp_path / "shards")
    assert code == 2 and lines[-1].startswith("error: ") and "(inverted_box=1); no shards written" in lines[-1]
    assert any("box 1 has xmin 30, ymin 5, xmax 10, ymax 25: swapped corners? (item skipped)" in line
               for line in lines)
    assert not (tmp_path / "shards").exists()


def test_start_ctrl_c_while_starting_is_one_line(tmp_path):
    """6: Ctrl-C during the imports and during the model load: ``error: interrupted``, exit 130."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    results = []
    for delay in (0.3, 2.5):
        proc = subprocess.Popen([sys.executable, "start.py", "--output_path", str(tmp_path / "out"), "--no_progress"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        results.append((delay, proc.returncode, [line for line in err.splitlines() if line.startswith("error")]))
    for delay, code, errors in results:
        assert code == 130 and errors == ["error: interrupted"], (delay, code, errors)


def _graph_with_wrong_boxes(path):
    """A .pb with FaceBoxes' node names whose `boxes` is [batch, 3] instead of [batch, max_boxes, 4]."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        pixels = tf.cast(image, tf.float32)
        tf.identity(tf.reduce_mean(pixels, axis=[1, 2]), name="boxes")
        tf.identity(tf.zeros([tf.shape(image)[0], 5]), name="scores")
        tf.identity(tf.zeros([tf.shape(image)[0]], tf.int32), name="num_boxes")
    with open(path, "wb") as f:
        f.write(graph.as_graph_def().SerializeToString())


def test_a_graph_with_other_shapes_is_one_line_naming_the_file(tmp_path):
    """7: the right node names with other shapes: one line naming the file and the node."""
    bad = tmp_path / "other.pb"
    _graph_with_wrong_boxes(bad)
    videos = tmp_path / "videos"
    videos.mkdir()
    tiny_video(videos / "clip.mp4")
    result = run("start.py", videos, "--model", bad, "--output_path", tmp_path / "out", "--precision", "float32",
                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    code, lines, _ = result
    errors = [line for line in lines if not line.startswith("INFO")]
    assert code == 2 and errors == [f"error: {bad}: node boxes has shape [?, 3], expected [?, ?, 4]: not a "
                                    "FaceBoxes detection graph"], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dtype, advice", [(np.int64, "values are in 0..255 with image.astype(np.uint8)"),
                                           (np.uint16, "(image >> 8).astype(np.uint8)"),
                                           (np.float32, "(255 * image).round().astype(np.uint8)")])
def test_image_dtype_advice_fits_the_dtype(dtype, advice):
    """9: int64 and uint16 images get advice for their dtype, not for float images."""
    import face_detector

    with pytest.raises(ValueError, match=r"got dtype \w+; convert") as info:
        face_detector._to_rgb_uint8(np.zeros((4, 4, 3), dtype), "image")
    assert advice in str(info.value)
