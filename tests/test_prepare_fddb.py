"""Tests of prepare_data/prepare_fddb.py (FDDB ellipses -> annotation boxes xmin, ymin, xmax, ymax pixels)."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from prepare_data import make_sample_dataset as sample
from prepare_data import prepare_fddb as pf
from src.annotations import read_annotation
from src.datasets.fddb_format import ellipses_to_boxes, ellipses_to_boxes_upstream_approx

# The first face of FDDB fold 01 (2002/08/11/big/img_591), as printed in the official file.
REAL_ELLIPSE = "123.583300 85.549500 1.265839 269.693400 161.781200  1"
# Exact box: half-width sqrt(a^2 cos^2 t + b^2 sin^2 t) = 89.64258, half-height 120.64724.
EXACT_BOX = [180.05082, 41.13396, 359.33598, 282.42844]
# The upstream ignored the angle: cx -+ minor, cy -+ major.
UPSTREAM_BOX = [184.14390, 38.19790, 355.24290, 285.36450]


def make_fddb_tree(root, images):
    """Writes an FDDB layout with one fold. `images`: list of (path, uint8 image, ellipse lines)."""
    folds = os.path.join(root, "FDDB-folds")
    os.makedirs(folds, exist_ok=True)
    listing, ellipses = [], []
    for path, image, lines in images:
        target = os.path.join(root, "originalPics", path + ".jpg")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if image is not None:
            cv2.imwrite(target, image)
        listing.append(path)
        ellipses += [path, str(len(lines))] + lines
    with open(os.path.join(folds, "FDDB-fold-01.txt"), "w") as f:
        f.write("\n".join(listing) + "\n")
    with open(os.path.join(folds, "FDDB-fold-01-ellipseList.txt"), "w") as f:
        f.write("\n".join(ellipses) + "\n")


def test_real_ellipse_exact_box_versus_upstream_approximation(tmp_path):
    ellipse = np.array([[float(v) for v in REAL_ELLIPSE.split()[:5]]])
    np.testing.assert_allclose(ellipses_to_boxes(ellipse), [EXACT_BOX], atol=1e-4)
    np.testing.assert_allclose(ellipses_to_boxes_upstream_approx(ellipse), [UPSTREAM_BOX], atol=1e-4)
    # prepare_fddb writes the exact box, not the approximation.
    make_fddb_tree(str(tmp_path / "FDDB"), [("2002/08/11/big/img_591", np.full((331, 450, 3), 90, np.uint8),
                                             [REAL_ELLIPSE])])
    counts = pf.prepare_fddb(str(tmp_path / "FDDB"), str(tmp_path / "out"), folds=[1], show_progress=False)
    assert counts["images"] == 1 and counts["faces"] == 1 and counts["missing_folds"] == 0
    annotation = read_annotation(str(tmp_path / "out" / "annotations" / "2002_08_11_big_img_591.json"))
    assert annotation.filename == "2002_08_11_big_img_591.jpg"
    assert (annotation.width, annotation.height, annotation.depth) == (450, 331, 3)
    np.testing.assert_allclose(annotation.boxes, [EXACT_BOX], atol=1e-4)


def test_boxes_are_clipped_and_empty_ones_dropped(tmp_path):
    make_fddb_tree(str(tmp_path / "FDDB"), [("2003/01/02/big/img_7", np.zeros((80, 100), np.uint8), [
        "30 20 0 90 40  1",        # horizontal major axis: box (60, 20, 120, 60) -> clipped to x 100
        "10 5 1.5707963267948966 150 40  1",   # entirely right of the image: dropped
    ])])
    counts = pf.prepare_fddb(str(tmp_path / "FDDB"), str(tmp_path / "out"), folds=[1], show_progress=False)
    assert (counts["faces"], counts["dropped_outside"], counts["grayscale_or_reencoded"]) == (1, 1, 1)
    annotation = read_annotation(str(tmp_path / "out" / "annotations" / "2003_01_02_big_img_7.json"))
    np.testing.assert_allclose(annotation.boxes, [[60, 20, 100, 60]], atol=1e-9)


@pytest.fixture(scope="module")
def fddb_sample(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fddb_sample"))
    truth = sample.make_sample_dataset(root, seed=7, num_train=0, num_val=0, num_fddb=6, image_size=320)
    return os.path.join(root, "FDDB"), truth["fddb"]


def test_prepare_fddb_matches_generator_truth(fddb_sample, tmp_path):
    fddb_dir, truth = fddb_sample
    out = str(tmp_path / "out")
    counts = pf.prepare_fddb(fddb_dir, out, show_progress=False)
    # 6 images in 6 folds; folds 7-10 do not exist; image 2 (k % 5 == 2) is grayscale.
    assert counts["images"] == 6 and counts["missing_folds"] == 4 and counts["grayscale_or_reencoded"] == 1
    assert counts["faces"] == sum(len(b) for b in truth.values())
    assert counts["missing"] == counts["corrupt"] == counts["dropped_outside"] == counts["fold_list_mismatch"] == 0
    for path, boxes in truth.items():
        stem = path.replace("/", "_")
        annotation = read_annotation(os.path.join(out, "annotations", stem + ".json"))
        np.testing.assert_allclose(annotation.boxes, boxes, atol=1e-4)
        image = Image.open(os.path.join(out, "images", stem + ".jpg"))
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (annotation.width, annotation.height)
        with open(os.path.join(fddb_dir, "originalPics", path + ".jpg"), "rb") as f:
            source = f.read()
        with open(os.path.join(out, "images", stem + ".jpg"), "rb") as f:
            copied = f.read() == source
        assert copied == (Image.open(os.path.join(fddb_dir, "originalPics", path + ".jpg")).mode == "RGB")


def test_missing_and_corrupt_images_are_skipped_and_counted(tmp_path):
    good = np.full((60, 80, 3), 128, np.uint8)
    make_fddb_tree(str(tmp_path / "FDDB"), [
        ("2002/07/19/big/img_1", good, ["20 10 1.5707963267948966 40 30  1"]),
        ("2002/07/19/big/img_2", None, ["20 10 1.5707963267948966 40 30  1"]),
        ("2002/07/19/big/img_3", good, ["20 10 1.5707963267948966 40 30  1"]),
    ])
    corrupt = tmp_path / "FDDB" / "originalPics" / "2002/07/19/big/img_3.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    counts = pf.prepare_fddb(str(tmp_path / "FDDB"), str(tmp_path / "out"), folds=[1], show_progress=False)
    assert (counts["images"], counts["missing"], counts["corrupt"]) == (1, 1, 1)
    assert os.listdir(tmp_path / "out" / "images") == ["2002_07_19_big_img_1.jpg"]
    annotation = read_annotation(str(tmp_path / "out" / "annotations" / "2002_07_19_big_img_1.json"))
    np.testing.assert_allclose(annotation.boxes, [[30, 10, 50, 50]], atol=1e-9)


def test_malformed_ellipse_list_and_missing_folds_are_clear_errors(tmp_path, capsys):
    folds = tmp_path / "FDDB" / "FDDB-folds"
    folds.mkdir(parents=True)
    (folds / "FDDB-fold-01-ellipseList.txt").write_text("2002/07/19/big/img_1\n1\n20 10 abc 40 30  1\n")
    assert pf.main(["--fddb_dir", str(tmp_path / "FDDB"), "--output_dir", str(tmp_path / "o"), "--folds", "1"]) == 2
    assert "FDDB-fold-01-ellipseList.txt:3:" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert pf.main(["--fddb_dir", str(tmp_path / "FDDB"), "--output_dir", str(tmp_path / "o"), "--folds", "2-3"]) == 2
    assert "none of the requested FDDB fold files exists" in capsys.readouterr().err


def test_parse_folds_and_output_stem():
    assert pf.parse_folds("1-10") == list(range(1, 11))
    assert pf.parse_folds("9") == [9]
    assert pf.parse_folds("1,3,5-7,3") == [1, 3, 5, 6, 7]
    for bad in ("0", "11", "3-1", "a", "1-x"):
        with pytest.raises(ValueError, match="--folds"):
            pf.parse_folds(bad)
    assert pf.output_stem("2002/08/11/big/img_591") == "2002_08_11_big_img_591"


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        pf.main(["--help"])
    assert "example: python prepare_data/prepare_fddb.py" in capsys.readouterr().out
