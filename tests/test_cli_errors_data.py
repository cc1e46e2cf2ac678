"""The data scripts' error policy, on the real command lines (issue 12).

User errors (paths, formats, config values, empty inputs) end with ONE line on stderr,
``error: <what>: <why>``, and a non-zero exit code; ``--debug`` shows the traceback. No file is
lost or replaced by a failed run, and nothing half-written stays under a final name.
"""
import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from src.annotations import Annotation, write_annotation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Start-up lines TensorFlow/absl print whatever TF_CPP_MIN_LOG_LEVEL says.
NOISE = ("I0000", "W0000", "WARNING: All log messages")


def run_cli(script, *args, timeout=300):
    """Runs ``python <script> <args>`` from the repository root; returns (exit code, stderr lines, stdout)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith(NOISE)]
    return proc.returncode, lines, proc.stdout


def assert_one_error(result, *fragments):
    """The run failed with exit code 2 and exactly one stderr line ``error: ...`` holding `fragments`."""
    code, lines, _ = result
    assert code == 2, (code, lines)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(folder):
    """{relative path: (sha1, mtime_ns)} of every file under `folder` (hidden ones included)."""
    files = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = (hashlib.sha1(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return files


def jpeg_bytes(width, height, seed=0):
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def annotated_set(root, count, bad_images=False):
    """images/ + annotations/ with `count` items (unreadable images if `bad_images`); returns the two folders."""
    images, annotations = os.path.join(root, "images"), os.path.join(root, "annotations")
    os.makedirs(images, exist_ok=True)
    os.makedirs(annotations, exist_ok=True)
    for k in range(count):
        with open(os.path.join(images, f"{k}.jpg"), "wb") as f:
            f.write(b"not a jpeg" if bad_images else jpeg_bytes(32, 24, seed=k))
        write_annotation(os.path.join(annotations, f"{k}.json"),
                         Annotation(f"{k}.jpg", 32, 24, 3, np.array([[2.0, 3.0, 20.0, 18.0]])))
    return images, annotations


# ----------------------------------------------------------------------------- create_tfrecords.py

def create(images, annotations, output, *extra):
    return run_cli("create_tfrecords.py", "--image_dir", images, "--annotations_dir", annotations,
                   "--output", output, *extra)


def test_create_tfrecords_empty_annotation_folder_is_an_error(tmp_path):
    images, annotations = annotated_set(str(tmp_path), 0)
    out = tmp_path / "out"
    assert_one_error(create(images, annotations, out, "--num_shards", "2"),
                     f"error: {annotations}: no *.json annotation files")
    assert not out.exists()


def test_create_tfrecords_missing_folder_and_existing_shards(tmp_path):
    images, annotations = annotated_set(str(tmp_path), 3)
    assert_one_error(create(str(tmp_path / "nope"), annotations, tmp_path / "o1"),
                     f"error: {tmp_path / 'nope'}: folder not found (--image_dir)")
    assert not (tmp_path / "o1").exists()
    out = tmp_path / "out"
    assert create(images, annotations, out)[0] == 0
    before = snapshot(out)
    assert_one_error(create(images, annotations, out, "--num_shards", "3"),
                     "already holds 1 shard files; pass --overwrite")
    assert snapshot(out) == before
    code, lines, _ = create(images, annotations, out, "--num_shards", "3", "--debug")
    assert code != 0 and "Traceback (most recent call last)" in "\n".join(lines)
    assert "CreateTfrecordsError" in lines[-1]
    assert snapshot(out) == before


def test_create_tfrecords_caps_num_shards_at_the_number_of_files(tmp_path):
    images, annotations = annotated_set(str(tmp_path), 6)
    out = tmp_path / "out"
    code, lines, _ = create(images, annotations, out, "--num_shards", "50")
    assert code == 0, lines
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert warnings == ["WARNING create_tfrecords: --num_shards 50 is more than the 6 annotation files: "
                        "writing 6 shards"]
    assert sorted(os.listdir(out)) == [f"shard-{k:04d}.tfrecords" for k in range(6)] + ["shards.json"]
    manifest = json.loads((out / "shards.json").read_text())
    assert manifest["num_shards"] == 6 and [s["records"] for s in manifest["shards"]] == [1] * 6


def test_create_tfrecords_after_kill_minus_9_then_overwrite(tmp_path):
    """What kill -9 leaves (3 of 4 shards, a hidden temporary shard, no shards.json) is refused as a
    dataset, and the next --overwrite run removes the temporary file and writes the manifest last."""
    images, annotations = annotated_set(str(tmp_path), 8)
    out = tmp_path / "out"
    assert create(images, annotations, out, "--num_shards", "4")[0] == 0
    (out / "shard-0003.tfrecords").unlink()
    (out / "shards.json").unlink()
    stale = out / ".shard-0003.4242.0123456789ab.tmp.tfrecords"
    stale.write_bytes(b"the first half of a shard")
    from src.input_pipeline.pipeline import list_shards
    with pytest.raises(FileNotFoundError, match="no shards.json: the shard set is incomplete"):
        list_shards(str(out))
    code, lines, _ = create(images, annotations, out, "--num_shards", "4", "--overwrite")
    assert code == 0, lines
    assert sorted(os.listdir(out)) == [f"shard-{k:04d}.tfrecords" for k in range(4)] + ["shards.json"]
    assert len(list_shards(str(out))) == 4


def test_create_tfrecords_names_a_non_utf8_annotation(tmp_path):
    images, annotations = annotated_set(str(tmp_path), 2)
    bad = os.path.join(annotations, "latin1.json")
    with open(bad, "wb") as f:
        f.write('{"filename": "caf\u00e9.jpg"}'.encode("latin-1"))
    code, lines, _ = create(images, annotations, tmp_path / "out")
    assert code == 0, lines
    # (tqdm's bar shares stderr, so the warning may follow it on the same line)
    assert f"WARNING create_tfrecords: skipped: {bad}: not UTF-8 text" in "\n".join(lines), lines


def test_create_tfrecords_no_valid_item_is_an_error_and_writes_nothing(tmp_path):
    images, annotations = annotated_set(str(tmp_path), 2, bad_images=True)
    out = tmp_path / "out"
    code, lines, _ = create(images, annotations, out)
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and lines[-1] == errors[-1] and len(errors) == 1, lines
    assert "none of the 2 annotation files gave a valid item (corrupt_image=2); no shards written" in errors[0]
    assert not out.exists()


# ----------------------------------------------------------------------------- train.py and shard sets

def write_recipe(tmp_path, **changes):
    """A copy of configs/sample.json with the given 'group.key' values; returns its path."""
    with open(os.path.join(ROOT, "configs", "sample.json")) as f:
        recipe = json.load(f)
    recipe["training"].update(model_dir=str(tmp_path / "model"), num_steps=1, eval_every=0)
    for dotted, value in changes.items():
        group, key = dotted.split(".")
        recipe[group][key] = value
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    return str(path)


def one_record_shard_set(folder, manifest=True, records=1):
    """A shard folder with one shard of `records` tiny records (and its shards.json if `manifest`)."""
    from src.tfrecords import AtomicShardWriter, encode_example, shard_name, write_manifest
    os.makedirs(folder)
    with AtomicShardWriter(os.path.join(folder, shard_name(0))) as writer:
        for k in range(records):
            writer.write(encode_example(f"{k}.jpg", jpeg_bytes(64, 64, seed=k), [[0.2, 0.2, 0.7, 0.6]]))
    if manifest:
        write_manifest(folder, [(writer.path, writer.num_written)])
    return folder


def test_train_py_refuses_a_shard_folder_without_manifest(tmp_path):
    """The shards of an interrupted (or pre-manifest) run: today a StopIteration traceback."""
    shards = tmp_path / "shards"
    shards.mkdir()
    for k in range(3):
        (shards / f"shard-{k:04d}.tfrecords").write_bytes(b"")
    recipe = write_recipe(tmp_path, **{"input.train_dataset": str(shards)})
    assert_one_error(run_cli("train.py", "--config", recipe),
                     f"error: {shards}: no shards.json: the shard set is incomplete",
                     "re-run create_tfrecords.py --overwrite")
    assert not (tmp_path / "model").exists()


def test_train_py_refuses_an_empty_shard_set(tmp_path):
    shards = one_record_shard_set(str(tmp_path / "shards"), records=0)
    recipe = write_recipe(tmp_path, **{"input.train_dataset": shards})
    assert_one_error(run_cli("train.py", "--config", recipe), f"error: {shards}: the shard set holds no records")
    assert not (tmp_path / "model").exists()


def test_train_py_checks_the_validation_set_before_training(tmp_path):
    train = one_record_shard_set(str(tmp_path / "train"))
    val = one_record_shard_set(str(tmp_path / "val"), manifest=False)
    recipe = write_recipe(tmp_path, **{"input.train_dataset": train, "input.val_dataset": val,
                                       "input.batch_size": 1, "input.image_size": [64, 64],
                                       "training.eval_every": 1})
    assert_one_error(run_cli("train.py", "--config", recipe), f"error: {val}: no shards.json")
    assert not (tmp_path / "model").exists()



@pytest.mark.parametrize("key, value, message", [
    ("training.lr_values", [0.01, -0.001, 0.0001], "training.lr_values: must be positive numbers"),
    ("training.momentum", 1.5, "training.momentum: must be in [0, 1)"),
    ("postprocessing.iou_threshold", 0, "postprocessing.iou_threshold: must be in (0, 1]"),
])
def test_train_py_out_of_range_recipe_value_is_one_line_and_writes_nothing(tmp_path, key, value, message):
    train = one_record_shard_set(str(tmp_path / "train"))
    recipe = write_recipe(tmp_path, **{"input.train_dataset": train, key: value})
    assert_one_error(run_cli("train.py", "--config", recipe), f"error: {recipe}: {message}")
    assert not (tmp_path / "model").exists()


# ----------------------------------------------------------------------------- prepare_wider.py, prepare_fddb.py

def wider_tree(root, gt_text, split="train"):
    """A WIDER layout with WIDER_<split>/images/0--a/x.jpg and the given gt file; returns the root."""
    image = os.path.join(root, f"WIDER_{split}", "images", "0--a", "x.jpg")
    os.makedirs(os.path.dirname(image))
    with open(image, "wb") as f:
        f.write(jpeg_bytes(40, 30))
    os.makedirs(os.path.join(root, "wider_face_split"))
    with open(os.path.join(root, "wider_face_split", f"wider_face_{split}_bbx_gt.txt"), "w") as f:
        f.write(gt_text)
    return root


def test_prepare_wider_skips_and_counts_paths_that_leave_the_images_folder(tmp_path):
    secret = tmp_path / "secret.jpg"  # outside WIDER_train/images: must never be read or copied
    secret.write_bytes(jpeg_bytes(20, 20, seed=7))
    gt = ("0--a/x.jpg\n1\n1 2 10 10 0 0 0 0 0 0\n"
          "../../../secret.jpg\n1\n1 1 5 5 0 0 0 0 0 0\n"
          f"{secret}\n1\n1 1 5 5 0 0 0 0 0 0\n")
    wider = wider_tree(str(tmp_path / "WIDER"), gt)
    out = tmp_path / "out"
    code, lines, _ = run_cli("prepare_data/prepare_wider.py", "--wider_dir", wider, "--split", "train",
                             "--output_dir", out)
    assert code == 0, lines
    assert sorted(os.listdir(out / "images")) == ["0--a_x.jpg"]
    assert sorted(os.listdir(out / "annotations")) == ["0--a_x.json"]
    text = "\n".join(lines)
    assert "skipped, image path '../../../secret.jpg' leaves WIDER_train/images" in text
    assert f"skipped, image path '{secret}' leaves WIDER_train/images" in text
    assert "images=1," in text and "unsafe_filename=2" in text


def test_prepare_wider_empty_gt_file_is_an_error(tmp_path):
    wider = wider_tree(str(tmp_path / "WIDER"), "\n")
    out = tmp_path / "out"
    assert_one_error(run_cli("prepare_data/prepare_wider.py", "--wider_dir", wider, "--split", "train",
                             "--output_dir", out),
                     "wider_face_train_bbx_gt.txt: the WIDER gt file lists no image")
    assert not out.exists()


def test_prepare_wider_missing_wider_dir_is_one_line(tmp_path):
    missing = tmp_path / "no_such_WIDER"
    assert_one_error(run_cli("prepare_data/prepare_wider.py", "--wider_dir", missing, "--output_dir", tmp_path / "o"),
                     f"error: {missing}: no such folder (--wider_dir")
    assert not (tmp_path / "o").exists()
    code, lines, _ = run_cli("prepare_data/prepare_wider.py", "--wider_dir", missing, "--output_dir",
                             tmp_path / "o", "--debug")
    assert code != 0 and lines[0].startswith("Traceback") and lines[-1].startswith("FileNotFoundError: ")


def test_prepare_wider_no_image_converted_is_an_error(tmp_path):
    wider = wider_tree(str(tmp_path / "WIDER"), "0--a/gone.jpg\n1\n1 2 10 10 0 0 0 0 0 0\n")
    code, lines, _ = run_cli("prepare_data/prepare_wider.py", "--wider_dir", wider, "--split", "train",
                             "--output_dir", tmp_path / "out")
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and errors == [lines[-1]], lines
    assert f"error: {wider}: none of the 1 listed images could be converted (missing=1)" == errors[0]
    assert not (tmp_path / "out").exists()


def test_prepare_fddb_missing_fddb_dir_is_one_line(tmp_path):
    missing = tmp_path / "no_such_FDDB"
    assert_one_error(run_cli("prepare_data/prepare_fddb.py", "--fddb_dir", missing, "--output_dir", tmp_path / "o"),
                     f"error: {missing}: no such folder (--fddb_dir")
    (tmp_path / "FDDB").mkdir()  # exists, but not the dataset root
    assert_one_error(run_cli("prepare_data/prepare_fddb.py", "--fddb_dir", tmp_path / "FDDB", "--output_dir",
                             tmp_path / "o"), f"error: {tmp_path / 'FDDB' / 'FDDB-folds'}: no such folder")
    assert not (tmp_path / "o").exists()


def test_prepare_fddb_empty_fold_files_are_an_error(tmp_path):
    folds = tmp_path / "FDDB" / "FDDB-folds"
    folds.mkdir(parents=True)
    (folds / "FDDB-fold-01-ellipseList.txt").write_text("")
    assert_one_error(run_cli("prepare_data/prepare_fddb.py", "--fddb_dir", tmp_path / "FDDB", "--output_dir",
                             tmp_path / "o", "--folds", "1"),
                     f"error: {folds}: the requested fold files list no image")
    assert not (tmp_path / "o").exists()


def test_prepare_fddb_skips_paths_that_leave_original_pics(tmp_path):
    (tmp_path / "secret.jpg").write_bytes(jpeg_bytes(20, 20))
    root = tmp_path / "FDDB"
    good = root / "originalPics" / "2002" / "a" / "big" / "img_1.jpg"
    good.parent.mkdir(parents=True)
    good.write_bytes(jpeg_bytes(40, 30))
    (root / "FDDB-folds").mkdir()
    (root / "FDDB-folds" / "FDDB-fold-01-ellipseList.txt").write_text(
        "2002/a/big/img_1\n1\n8 5 0 20 15  1\n../../secret\n1\n4 3 0 10 10  1\n")
    out = tmp_path / "out"
    code, lines, _ = run_cli("prepare_data/prepare_fddb.py", "--fddb_dir", root, "--output_dir", out, "--folds", "1")
    assert code == 0, lines
    assert os.listdir(out / "images") == ["2002_a_big_img_1.jpg"]
    assert "../../secret: skipped, image path leaves originalPics/" in "\n".join(lines)
    assert "unsafe_filename=1" in lines[-1]
