"""Tests of src/datasets/wider_format.py and prepare_data/prepare_wider.py.

WIDER lines are pixels x1 y1 w h + six attributes; annotation boxes are pixels
xmin, ymin, xmax, ymax.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from prepare_data import make_sample_dataset as sample
from prepare_data import prepare_wider as pw
from src.annotations import read_annotation
from src.datasets.wider_format import parse_wider_gt

GOOD_GT = """0--Parade/0_Parade_marchingband_1_849.jpg
1
449 330 122 149 0 0 0 0 0 0 
0--Parade/0_Parade_Parade_0_904.jpg
0
0 0 0 0 0 0 0 0 0 0 
12--Group/12_Group_Group_12_Group_Group_12_10.jpg
3
10 20 30 40 2 0 1 0 2 1
5 6 0 12 2 0 0 1 0 0
7.5 8 9 0 2 0 0 1 0 0
13--Interaction/13_Interaction_x_2.jpg
0
20--Family_Group/20_Family_Group_y_3.jpg
1
1 2 3 4 0 0 0 0 0 0
"""


def write(tmp_path, text, name="gt.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_parse_wider_gt_entries_zero_faces_and_degenerate_boxes(tmp_path):
    entries = parse_wider_gt(write(tmp_path, GOOD_GT))
    assert [e.relpath for e in entries] == [
        "0--Parade/0_Parade_marchingband_1_849.jpg", "0--Parade/0_Parade_Parade_0_904.jpg",
        "12--Group/12_Group_Group_12_Group_Group_12_10.jpg", "13--Interaction/13_Interaction_x_2.jpg",
        "20--Family_Group/20_Family_Group_y_3.jpg"]
    np.testing.assert_array_equal(entries[0].boxes, [[449, 330, 122, 149, 0, 0, 0, 0, 0, 0]])
    assert entries[1].boxes.shape == (0, 10)  # the line of zeros is not a face
    # Degenerate boxes are parsed as they are; dropping them is prepare_wider's job.
    np.testing.assert_array_equal(entries[2].boxes, [[10, 20, 30, 40, 2, 0, 1, 0, 2, 1],
                                                     [5, 6, 0, 12, 2, 0, 0, 1, 0, 0],
                                                     [7.5, 8, 9, 0, 2, 0, 0, 1, 0, 0]])
    assert entries[3].boxes.shape == (0, 10)  # a 0 count without its zero line is tolerated
    np.testing.assert_array_equal(entries[4].boxes, [[1, 2, 3, 4, 0, 0, 0, 0, 0, 0]])


@pytest.mark.parametrize("text, message", [
    # truncated: the count promises 2 boxes, the file ends after 1
    ("a/b.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n", ":2: truncated file: 'a/b.jpg' announces 2 faces but the file ends after 1"),
    # truncated: no count line
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\na/c.jpg\n", ":4: truncated file: no face count after 'a/c.jpg'"),
    # non-numeric field on line 3
    ("a/b.jpg\n1\n1 2 x 4 0 0 0 0 0 0\n", ":3: box 1 of 1 for 'a/b.jpg' must be 10 numbers"),
    # wrong number of fields
    ("a/b.jpg\n1\n1 2 3 4\n", ":3: box 1 of 1 for 'a/b.jpg' must be 10 numbers"),
    # bad count (not an integer)
    ("a/b.jpg\ntwo\n1 2 3 4 0 0 0 0 0 0\n", ":2: bad face count 'two' for 'a/b.jpg'"),
    ("a/b.jpg\n-1\n", ":2: negative face count -1 for 'a/b.jpg'"),
    # count too large: the next image path is read where box 2 should be
    ("a/b.jpg\n2\n1 2 3 4 0 0 0 0 0 0\na/c.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n",
     ":4: box 2 of 2 for 'a/b.jpg' must be 10 numbers (x1 y1 w h blur expression illumination invalid "
     "occlusion pose), found 'a/c.jpg'"),
    # count too small: a box line sits where the next path should be
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n5 6 7 8 0 0 0 0 0 0\n",
     ":4: expected an image path, found '5 6 7 8 0 0 0 0 0 0'"),
    ("a/b.jpg\n0\n1 2 3 4 0 0 0 0 0 0\n", ":3: face count is 0 for 'a/b.jpg' but the next line is not ten zeros"),
])
def test_malformed_gt_raises_with_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as error:
        parse_wider_gt(path)
    assert str(error.value).startswith(path + ":")
    assert message in str(error.value)


def test_wider_boxes_to_corners_drops_and_counts():
    lines = np.array([[10, 20, 30, 40, 0, 0, 0, 0, 0, 0],     # kept: (10, 20, 40, 60)
                      [5, 6, 0, 12, 0, 0, 0, 1, 0, 0],        # w = 0: degenerate
                      [5, 6, 3, -2, 0, 0, 0, 1, 0, 0],        # h < 0: degenerate
                      [90, 70, 30, 20, 0, 0, 0, 0, 0, 0],     # clipped to (90, 70, 100, 80)
                      [120, 10, 5, 5, 0, 0, 0, 0, 0, 0],      # entirely right of the image
                      [1, 1, 4, 30, 0, 0, 0, 0, 0, 0]],       # 4 px wide: small when min 5
                     dtype=np.float64)
    corners, dropped = pw.wider_boxes_to_corners(lines, 100, 80)
    np.testing.assert_array_equal(corners, [[10, 20, 40, 60], [90, 70, 100, 80], [1, 1, 5, 31]])
    assert dropped == {"degenerate": 2, "outside": 1, "small": 0}
    corners, dropped = pw.wider_boxes_to_corners(lines, 100, 80, min_face_size=5)
    np.testing.assert_array_equal(corners, [[10, 20, 40, 60], [90, 70, 100, 80]])
    assert dropped == {"degenerate": 2, "outside": 1, "small": 1}


@pytest.fixture(scope="module")
def wider_sample(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("wider_sample"))
    truth = sample.make_sample_dataset(root, seed=5, num_train=6, num_val=3, num_fddb=0, image_size=320)
    return os.path.join(root, "WIDER"), truth["wider"]


def test_prepare_wider_matches_generator_truth(wider_sample, tmp_path):
    wider_dir, truth = wider_sample
    out = str(tmp_path / "out")
    counts = pw.prepare_wider(wider_dir, out, show_progress=False)
    # 6 + 3 images; one degenerate line at image 1 of each split; image 3 of train has no face.
    assert counts["images"] == 9 and counts["dropped_degenerate"] == 2 and counts["empty_images"] == 1
    assert counts["faces"] == sum(len(b) for split in truth.values() for b in split.values())
    assert counts["missing"] == counts["corrupt"] == counts["reencoded"] == counts["duplicate"] == 0
    for split, images in truth.items():
        for relpath, boxes in images.items():
            name = relpath.replace("/", "_")
            annotation = read_annotation(os.path.join(out, "annotations", name[:-4] + ".json"))
            assert annotation.filename == name
            np.testing.assert_array_equal(annotation.boxes, np.array(boxes).reshape(-1, 4))
            source = os.path.join(wider_dir, f"WIDER_{split}", "images", relpath)
            with open(source, "rb") as f, open(os.path.join(out, "images", name), "rb") as g:
                assert f.read() == g.read()  # JPEG bytes copied, not re-encoded
            assert (annotation.width, annotation.height) == Image.open(source).size


def test_prepare_wider_skips_missing_and_corrupt_images_and_reencodes_png(wider_sample, tmp_path):
    wider_dir, truth = wider_sample
    relpaths = list(truth["train"])
    images = os.path.join(wider_dir, "WIDER_train", "images")
    broken = str(tmp_path / "WIDER")
    os.makedirs(os.path.join(broken, "wider_face_split"))
    with open(os.path.join(wider_dir, "wider_face_split", "wider_face_train_bbx_gt.txt")) as f:
        gt = f.read()
    with open(os.path.join(broken, "wider_face_split", "wider_face_train_bbx_gt.txt"), "w") as f:
        f.write(gt)
    for k, relpath in enumerate(relpaths):
        target = os.path.join(broken, "WIDER_train", "images", relpath)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(os.path.join(images, relpath), "rb") as f:
            data = f.read()
        if k == 0:
            continue  # missing
        if k == 1:
            data = data[:len(data) // 2]  # truncated JPEG
        if k == 2:
            Image.open(os.path.join(images, relpath)).save(target, format="PNG")  # PNG behind a .jpg name
            continue
        with open(target, "wb") as f:
            f.write(data)
    out = str(tmp_path / "out")
    counts = pw.prepare_wider(broken, out, splits=("train",), show_progress=False)
    assert (counts["images"], counts["missing"], counts["corrupt"], counts["reencoded"]) == (4, 1, 1, 1)
    assert sorted(os.listdir(os.path.join(out, "images"))) == sorted(r.replace("/", "_") for r in relpaths[2:])
    png_name = relpaths[2].replace("/", "_")
    assert Image.open(os.path.join(out, "images", png_name)).format == "JPEG"
    annotation = read_annotation(os.path.join(out, "annotations", png_name[:-4] + ".json"))
    np.testing.assert_array_equal(annotation.boxes, np.array(truth["train"][relpaths[2]]).reshape(-1, 4))


def test_malformed_gt_stops_before_writing(tmp_path, capsys):
    wider = tmp_path / "WIDER"
    (wider / "wider_face_split").mkdir(parents=True)
    (wider / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\nc/d.jpg\nx\n")
    out = tmp_path / "out"
    assert pw.main(["--wider_dir", str(wider), "--split", "val", "--output_dir", str(out)]) == 2
    assert "wider_face_val_bbx_gt.txt:5: bad face count 'x' for 'c/d.jpg'" in capsys.readouterr().err
    assert not out.exists()


def test_missing_gt_file_is_a_clear_error(tmp_path, capsys):
    assert pw.main(["--wider_dir", str(tmp_path), "--split", "train", "--output_dir", str(tmp_path / "o")]) == 2
    assert "wider_face_train_bbx_gt.txt: WIDER gt file not found" in capsys.readouterr().err


def test_min_face_size_option_and_help(wider_sample, tmp_path, capsys):
    wider_dir, truth = wider_sample
    out = str(tmp_path / "out")
    assert pw.main(["--wider_dir", wider_dir, "--split", "val", "--output_dir", out, "--min_face_size", "60"]) == 0
    kept = dropped = 0
    for relpath, boxes in truth["val"].items():
        boxes = np.array(boxes).reshape(-1, 4)
        big = np.all(boxes[:, 2:] - boxes[:, :2] >= 60, axis=1)
        with open(os.path.join(out, "annotations", relpath.replace("/", "_")[:-4] + ".json")) as f:
            written = [[o["bndbox"][k] for k in ("xmin", "ymin", "xmax", "ymax")] for o in json.load(f)["object"]]
        np.testing.assert_array_equal(np.array(written).reshape(-1, 4), boxes[big])
        kept += int(big.sum())
        dropped += int((~big).sum())
    assert kept > 0 and dropped > 0
    with pytest.raises(SystemExit):
        pw.main(["--help"])
    assert "example: python prepare_data/prepare_wider.py" in capsys.readouterr().out


def test_invalid_faces_become_ignore_regions(tmp_path):
    root = tmp_path / "WIDER"
    (root / "wider_face_split").mkdir(parents=True)
    (root / "WIDER_train" / "images" / "0--x").mkdir(parents=True)
    Image.new("RGB", (100, 80)).save(root / "WIDER_train" / "images" / "0--x" / "a.jpg")
    (root / "wider_face_split" / "wider_face_train_bbx_gt.txt").write_text(
        "0--x/a.jpg\n3\n10 20 30 40 0 0 0 0 0 0\n50 10 20 20 0 0 0 1 0 0\n90 70 20 20 0 0 0 1 0 0\n")
    out = tmp_path / "out"
    counts = pw.prepare_wider(str(root), str(out), splits=("train",), show_progress=False, invalid_as_ignore=True)
    assert (counts["faces"], counts["ignore_regions"]) == (1, 2)
    annotation = read_annotation(str(out / "annotations" / "0--x_a.json"))
    np.testing.assert_array_equal(annotation.boxes, [[10, 20, 40, 60]])
    np.testing.assert_array_equal(annotation.ignore_boxes, [[50, 10, 70, 30], [90, 70, 100, 80]])  # clipped
    # Without the option (the upstream's way) invalid faces are faces.
    counts = pw.prepare_wider(str(root), str(tmp_path / "plain"), splits=("train",), show_progress=False)
    assert (counts["faces"], counts["ignore_regions"]) == (3, 0)
