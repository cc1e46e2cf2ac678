"""Tests of create_tfrecords.py and src/tfrecords.py.

Annotations: pixels xmin, ymin, xmax, ymax. Records: xmin, ymin, xmax, ymax lists normalized
by the image width/height.
"""
import glob
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import create_tfrecords as ct
from src.annotations import Annotation, write_annotation
from src.input_pipeline.pipeline import list_shards
from src.tfrecords import MANIFEST_NAME, encode_example, feature_spec, read_manifest, shard_index, shard_name


def jpeg_bytes(width, height, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def add_item(root, name, width, height, boxes, data=None, filename=None):
    """Writes images/<name>.jpg (unless data is False) and annotations/<name>.json."""
    filename = filename or name + ".jpg"
    if data is not False:
        path = os.path.join(root, "images", filename)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(jpeg_bytes(width, height, seed=len(name)) if data is None else data)
    write_annotation(os.path.join(root, "annotations", name + ".json"),
                     Annotation(filename, width, height, 3, np.array(boxes, np.float64).reshape(-1, 4)))


def read_records(output_dir):
    records = {}
    for shard in sorted(glob.glob(os.path.join(output_dir, "shard-*.tfrecords"))):
        for serialized in tf.data.TFRecordDataset(shard):
            example = tf.io.parse_single_example(serialized, feature_spec())
            name = example["filename"].numpy().decode()
            records[name] = {key: value.numpy() for key, value in example.items()}
            records[name]["shard"] = shard_index(shard)
    return records


def run(root, out, **kwargs):
    kwargs.setdefault("seed", 0)
    return ct.create_tfrecords(os.path.join(root, "images"), os.path.join(root, "annotations"), out,
                               kwargs.pop("num_shards", 2), show_progress=False, **kwargs)


@pytest.fixture
def good_set(tmp_path):
    root = str(tmp_path / "data")
    boxes = {
        "a": (64, 48, [[4, 6, 20, 30], [30.5, 1.25, 63, 47.75]]),
        "b": (40, 80, [[0, 0, 40, 80]]),
        "c": (50, 50, []),
        "d": (33, 17, [[1, 2, 3, 4]]),
        "e": (64, 64, [[10, 10, 20, 20], [20, 20, 30, 30], [30, 30, 40, 40]]),
        "f": (20, 30, [[5, 5, 15, 25]]),
    }
    for name, (w, h, b) in boxes.items():
        add_item(root, name, w, h, b)
    return root, boxes


def test_round_trip_boxes_and_bytes(good_set, tmp_path):
    root, boxes = good_set
    counts = run(root, str(tmp_path / "out"), num_shards=3)
    assert counts["written"] == 6 and counts["empty_images"] == 1 and counts["reencoded"] == 0
    # no temporary files; the manifest last
    assert sorted(os.listdir(tmp_path / "out")) == [shard_name(k) for k in range(3)] + [MANIFEST_NAME]
    records = read_records(str(tmp_path / "out"))
    assert sorted(records) == [name + ".jpg" for name in boxes]
    assert sorted(r["shard"] for r in records.values()) == [0, 0, 1, 1, 2, 2]
    for name, (w, h, b) in boxes.items():
        record = records[name + ".jpg"]
        expected = np.array(b, np.float64).reshape(-1, 4) / [w, h, w, h]
        got = np.stack([record[k] for k in ("xmin", "ymin", "xmax", "ymax")], axis=1).reshape(-1, 4)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        with open(os.path.join(root, "images", name + ".jpg"), "rb") as f:
            assert record["image"] == f.read()


def test_bad_items_are_skipped_or_fixed_and_counted(good_set, tmp_path):
    root, _ = good_set
    add_item(root, "missing", 30, 30, [[1, 1, 5, 5]], data=False)
    add_item(root, "corrupt", 30, 30, [[1, 1, 5, 5]], data=jpeg_bytes(30, 30)[:100])
    add_item(root, "notimage", 30, 30, [[1, 1, 5, 5]], data=b"hello, not an image")
    png = io.BytesIO()
    Image.fromarray(np.full((24, 36, 3), 200, np.uint8)).save(png, format="PNG")
    add_item(root, "png", 36, 24, [[3, 4, 9, 12]], data=png.getvalue(), filename="png.png")
    add_item(root, "gray", 16, 16, [[2, 2, 10, 10]], data=jpeg_bytes(16, 16, mode="L"))
    # zero-size box dropped, box half outside clipped, box fully outside dropped
    add_item(root, "zero", 40, 40, [[5, 5, 5, 20], [30, 30, 50, 50], [41, 0, 60, 10], [1, 1, 2, 2]])
    add_item(root, "escape", 30, 30, [[1, 1, 5, 5]], data=False, filename="../a.jpg")
    add_item(root, "absolute", 30, 30, [[1, 1, 5, 5]], data=False, filename=os.path.join(root, "images", "a.jpg"))
    add_item(root, "mismatch", 31, 30, [[1, 1, 5, 5]], data=jpeg_bytes(30, 30))
    add_item(root, "swapped", 30, 30, [[1, 1, 5, 5], [20, 2, 10, 12]], data=jpeg_bytes(30, 30))  # xmin > xmax
    with open(os.path.join(root, "annotations", "broken.json"), "w") as f:
        f.write('{"filename": "a.jpg", "size": {"width": 5}}')

    counts = run(root, str(tmp_path / "out"))
    assert dict(counts) == {
        "written": 6 + 3, "bad_annotation": 1, "unsafe_filename": 2, "missing_image": 1, "corrupt_image": 2,
        "size_mismatch": 1, "inverted_box": 1, "reencoded": 2, "dropped_boxes": 2, "clipped_boxes": 1, "empty_images": 1}
    records = read_records(str(tmp_path / "out"))
    assert sorted(records) == sorted(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg",
                                      "png.png", "gray.jpg", "zero.jpg"])
    png_record = records["png.png"]
    image = tf.io.decode_jpeg(png_record["image"]).numpy()  # re-encoded: a JPEG now
    assert image.shape == (24, 36, 3)
    np.testing.assert_allclose([png_record[k][0] for k in ("xmin", "ymin", "xmax", "ymax")],
                               [3 / 36, 4 / 24, 9 / 36, 12 / 24], atol=1e-6)
    assert Image.open(io.BytesIO(records["gray.jpg"]["image"])).mode == "RGB"
    zero = records["zero.jpg"]
    np.testing.assert_allclose(np.stack([zero[k] for k in ("xmin", "ymin", "xmax", "ymax")], axis=1),
                               [[30 / 40, 30 / 40, 1.0, 1.0], [1 / 40, 1 / 40, 2 / 40, 2 / 40]], atol=1e-6)


def test_same_seed_gives_identical_shards_other_seed_another_order(good_set, tmp_path):
    root, _ = good_set
    for name, seed in (("one", 11), ("two", 11), ("three", 12)):
        run(root, str(tmp_path / name), seed=seed, num_shards=1)
    one, two, three = ((tmp_path / n / shard_name(0)).read_bytes() for n in ("one", "two", "three"))
    assert one == two
    assert one != three and sorted(one) == sorted(three)  # same records, another order

    def order(name):
        return [tf.io.parse_single_example(s, feature_spec())["filename"].numpy().decode()
                for s in tf.data.TFRecordDataset(str(tmp_path / name / shard_name(0)))]
    rng_order = [["a", "b", "c", "d", "e", "f"][i] + ".jpg" for i in np.random.default_rng(11).permutation(6)]
    assert order("one") == rng_order


def test_existing_shards_need_overwrite_and_stale_ones_are_removed(good_set, tmp_path):
    root, _ = good_set
    out = str(tmp_path / "out")
    run(root, out, num_shards=4)
    with pytest.raises(ValueError, match="already holds 4 shard files; pass --overwrite"):
        run(root, out, num_shards=2)
    run(root, out, num_shards=2, overwrite=True)
    assert sorted(os.listdir(out)) == [shard_name(0), shard_name(1), MANIFEST_NAME]
    assert len(read_records(out)) == 6
    assert read_manifest(out)["num_shards"] == 2 and len(list_shards(out)) == 2


def test_num_shards_is_capped_at_the_number_of_annotation_files(good_set, tmp_path, caplog):
    root, _ = good_set
    counts = run(root, str(tmp_path / "out"), num_shards=50)
    assert counts["written"] == 6
    assert "--num_shards 50 is more than the 6 annotation files: writing 6 shards" in caplog.text
    assert sorted(os.listdir(tmp_path / "out")) == [shard_name(k) for k in range(6)] + [MANIFEST_NAME]
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(str(tmp_path / "out" / shard_name(k)))) for k in range(6)]
    assert sizes == [1] * 6


def test_manifest_lists_every_shard_with_its_records_size_and_the_counts(good_set, tmp_path):
    root, _ = good_set
    out = str(tmp_path / "out")
    add_item(root, "missing", 30, 30, [[1, 1, 5, 5]], data=False)
    counts = run(root, out, num_shards=3, seed=4)
    manifest = read_manifest(out)
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(os.path.join(out, shard_name(k)))) for k in range(3)]
    assert manifest["format"] == "faceboxes-tf shards" and manifest["version"] == 1
    assert manifest["num_shards"] == 3 and manifest["num_records"] == 6 == sum(sizes)
    assert manifest["shards"] == [{"file": shard_name(k), "records": sizes[k],
                                   "bytes": os.path.getsize(os.path.join(out, shard_name(k)))} for k in range(3)]
    assert manifest["counts"] == dict(counts) and manifest["counts"]["missing_image"] == 1
    assert manifest["seed"] == 4
    assert list_shards(out) == [os.path.join(out, shard_name(k)) for k in range(3)]


def test_overwrite_removes_a_killed_runs_temporary_shards_and_old_manifest(good_set, tmp_path):
    """kill -9 during a run leaves a hidden temporary shard and no manifest: the set is refused, and the
    next run allowed to write removes the leftovers."""
    root, _ = good_set
    out = tmp_path / "out"
    run(root, str(out), num_shards=4)
    # What kill -9 in the middle of an --overwrite run leaves: the manifest already gone, shard 2 being
    # written under its temporary name (src.atomic_io.temporary_sibling), shard 3 an old one.
    (out / MANIFEST_NAME).unlink()
    stale = out / ".shard-0002.12345.0123456789ab.tmp.tfrecords"
    stale.write_bytes(b"half a shard")
    with pytest.raises(FileNotFoundError, match="no shards.json: the shard set is incomplete"):
        list_shards(str(out))
    with pytest.raises(ValueError, match="already holds 4 shard files; pass --overwrite"):
        run(root, str(out), num_shards=4)
    assert stale.exists()  # a run that may not write touches nothing
    run(root, str(out), num_shards=4, overwrite=True)
    assert sorted(os.listdir(out)) == [shard_name(k) for k in range(4)] + [MANIFEST_NAME]
    assert len(list_shards(str(out))) == 4
    # A folder without shards may be written without --overwrite; its leftovers go too.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".shard-0000.1.aaaaaaaaaaaa.tmp.tfrecords").write_bytes(b"x")
    run(root, str(fresh), num_shards=1)
    assert sorted(os.listdir(fresh)) == [shard_name(0), MANIFEST_NAME]


def test_an_overwrite_run_drops_the_old_manifest_before_replacing_shards(good_set, tmp_path, monkeypatch):
    """If an --overwrite run stops after some shards, the old shards.json must not vouch for the mix."""
    root, _ = good_set
    out = str(tmp_path / "out")
    run(root, out, num_shards=3)
    original = ct.build_record
    calls = []

    def fail_on_the_fourth(path, image_dir):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(path, image_dir)
    monkeypatch.setattr(ct, "build_record", fail_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        run(root, out, num_shards=3, overwrite=True, seed=9, num_workers=1)
    assert not os.path.exists(os.path.join(out, MANIFEST_NAME))
    assert sorted(os.listdir(out)) == [shard_name(k) for k in range(3)]  # no temporary file either
    with pytest.raises(FileNotFoundError, match="no shards.json"):
        list_shards(out)


def test_all_items_skipped_is_an_error_and_leaves_no_shards(tmp_path):
    root = str(tmp_path / "data")
    add_item(root, "gone", 30, 30, [[1, 1, 5, 5]], data=False)
    add_item(root, "bad", 30, 30, [[1, 1, 5, 5]], data=b"not an image")
    with pytest.raises(ct.CreateTfrecordsError, match=r"none of the 2 annotation files gave a valid item "
                                                     r"\(missing_image=1, corrupt_image=1\); no shards written"):
        run(root, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_empty_annotation_folder_is_an_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    with pytest.raises(ct.CreateTfrecordsError, match="no \\*.json annotation files"):
        run(str(tmp_path), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_non_utf8_annotation_is_skipped_with_its_file_name(good_set, tmp_path, caplog):
    root, _ = good_set
    bad = os.path.join(root, "annotations", "latin1.json")
    with open(bad, "wb") as f:
        f.write('{"filename": "caf\u00e9.jpg"}'.encode("latin-1"))
    counts = run(root, str(tmp_path / "out"))
    assert counts["bad_annotation"] == 1 and counts["written"] == 6
    assert f"skipped: {bad}: not UTF-8 text" in caplog.text


def test_encode_example_checks_boxes():
    with pytest.raises(ValueError, match="x.jpg: boxes must have shape"):
        encode_example("x.jpg", b"", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="must lie in"):
        encode_example("x.jpg", b"", [[0.0, 0.0, 1.5, 1.0]])
    with pytest.raises(ValueError, match="ymax > ymin"):
        encode_example("x.jpg", b"", [[0.5, 0.0, 0.5, 1.0]])
    example = tf.io.parse_single_example(encode_example("x.jpg", b"abc", np.zeros((0, 4))), feature_spec())
    assert example["xmin"].shape == (0,) and example["image"].numpy() == b"abc"


def test_is_unsafe_filename():
    assert ct.is_unsafe_filename("../x.jpg") and ct.is_unsafe_filename("a/../../x.jpg")
    assert ct.is_unsafe_filename("/etc/x.jpg") and ct.is_unsafe_filename("a/..")
    assert not ct.is_unsafe_filename("x.jpg") and not ct.is_unsafe_filename("sub/x..y.jpg")


def test_cli(good_set, tmp_path, caplog, capsys):
    root, _ = good_set
    argv = ["--image_dir", os.path.join(root, "images"), "--annotations_dir", os.path.join(root, "annotations"),
            "--output", str(tmp_path / "out"), "--num_shards", "2", "--seed", "3"]
    caplog.set_level("INFO")
    assert ct.main(argv) == 0
    assert "done: 2 shards and shards.json" in caplog.text and "written=6" in caplog.text
    capsys.readouterr()
    assert ct.main(argv) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'out'}: already holds 2 shard files; "
                                       "pass --overwrite to replace them\n")
    assert ct.main(argv + ["--num_shards", "0", "--overwrite"]) == 2
    assert capsys.readouterr().err == "error: --num_shards must be >= 1, got 0\n"
    with pytest.raises(ct.CreateTfrecordsError):
        ct.main(argv + ["--debug"])
    with pytest.raises(SystemExit):
        ct.main(["--help"])
    assert "example: python create_tfrecords.py" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["num_shards"] == 2
