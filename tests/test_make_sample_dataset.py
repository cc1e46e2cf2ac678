"""Tests of prepare_data/faces.py and prepare_data/make_sample_dataset.py.

Boxes: pixels x1, y1, x2, y2 (edges) unless a test says otherwise.
"""
import filecmp
import json
import os

import cv2
import numpy as np
import pytest

from prepare_data import faces as face_lib
from prepare_data import make_sample_dataset as sample
from src.datasets.fddb_format import ellipses_to_boxes, read_ellipse_list, read_fold_list
from src.datasets.wider_format import parse_wider_gt

NUM_TRAIN, NUM_VAL, NUM_FDDB, SIZE = 6, 3, 6, 320


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sample"))
    sample.make_sample_dataset(out, seed=3, num_train=NUM_TRAIN, num_val=NUM_VAL, num_fddb=NUM_FDDB, image_size=SIZE)
    return out


def all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_face_sources_follow_the_stated_cut_rule():
    sources = face_lib.load_face_sources()
    # Face box grown by round(0.45 * w) left/right and round(0.45 * h) top/bottom.
    expected = [((228, 190, 3), [45, 54, 145, 174]),   # astronaut (172, 58, 272, 178)
                ((190, 160, 3), [38, 45, 122, 145]),   # camera (178, 92, 262, 192)
                ((376, 367, 3), [87, 89, 280, 287])]   # grace hopper (165, 140, 358, 338)
    assert len(sources) == 3
    for source, (shape, box) in zip(sources, expected):
        assert source.crop.shape == shape and source.crop.dtype == np.uint8
        np.testing.assert_array_equal(source.box, box)
    # camera() is grayscale: its crop repeats one channel.
    assert np.array_equal(sources[1].crop[..., 0], sources[1].crop[..., 2])


def test_alpha_is_opaque_on_the_face_box_and_clear_at_the_crop_corners():
    source = face_lib.load_face_sources()[0]
    alpha = face_lib.face_alpha(source.crop.shape, source.box)
    x1, y1, x2, y2 = source.box.astype(int)
    assert np.all(alpha[y1:y2, x1:x2] == 1.0)
    assert alpha[0, 0] == 0.0 and alpha[-1, -1] == 0.0


def white_box_source(box_w, box_h, margin):
    """A synthetic source: white face box (left half red-ish marker row) on black margin."""
    crop = np.zeros((box_h + 2 * margin, box_w + 2 * margin, 3), np.uint8)
    crop[margin:margin + box_h, margin:margin + box_w] = 255
    return face_lib.FaceSource(crop, np.array([margin, margin, margin + box_w, margin + box_h], np.float64))


@pytest.mark.parametrize("source_size, target", [
    ((20, 30), (10.0, 20.0, 50.0, 80.0)),      # 2x enlargement
    ((200, 300), (31.0, 7.0, 51.0, 37.0)),     # 10x reduction (area pre-shrink path)
])
def test_paste_face_lands_exactly_on_the_target_box(source_size, target):
    source = white_box_source(*source_size, margin=source_size[0] // 2)
    canvas = np.zeros((100, 90, 3), np.float32)
    face_lib.paste_face(canvas, source, target)
    x1, y1, x2, y2 = (int(v) for v in target)
    mass = canvas[..., 0] / 255.0
    # The white area and its centroid equal the box's, to a small fraction of a pixel.
    assert mass.sum() == pytest.approx((x2 - x1) * (y2 - y1), rel=0.01)
    ys, xs = np.mgrid[0:100, 0:90] + 0.5
    assert (mass * xs).sum() / mass.sum() == pytest.approx((x1 + x2) / 2, abs=0.05)
    assert (mass * ys).sum() / mass.sum() == pytest.approx((y1 + y2) / 2, abs=0.05)
    assert canvas[y1 + 2:y2 - 2, x1 + 2:x2 - 2].min() > 250
    outside = np.ones((100, 90), bool)
    outside[y1 - 2:y2 + 2, x1 - 2:x2 + 2] = False
    assert canvas[outside].max() < 1.0


def test_paste_face_flip_mirrors_the_face():
    crop = np.zeros((40, 40, 3), np.uint8)
    crop[10:30, 10:20] = (255, 0, 0)   # left half of the face box red
    crop[10:30, 20:30] = (0, 255, 0)   # right half green
    source = face_lib.FaceSource(crop, np.array([10.0, 10.0, 30.0, 30.0]))
    canvas = np.zeros((60, 60, 3), np.float32)
    face_lib.paste_face(canvas, source, (20, 20, 40, 40), flip=True)
    assert canvas[30, 25, 1] > 250 and canvas[30, 25, 0] < 5   # left half now green
    assert canvas[30, 35, 0] > 250 and canvas[30, 35, 1] < 5   # right half now red


def test_make_composite_boxes_are_integer_inside_and_sized_as_asked():
    sources = face_lib.load_face_sources()
    image, faces = face_lib.make_composite(np.random.default_rng(0), 300, 200, 2, sources, [],
                                           face_heights=[80, 40])
    assert image.shape == (200, 300, 3) and image.dtype == np.uint8
    assert [f.box[3] - f.box[1] for f in faces] == [80, 40]
    for face in faces:
        np.testing.assert_array_equal(face.box, np.round(face.box))
        assert 0 <= face.box[0] < face.box[2] <= 300 and 0 <= face.box[1] < face.box[3] <= 200
    empty_image, no_faces = face_lib.make_composite(np.random.default_rng(0), 64, 48, 0, sources, [])
    assert no_faces == [] and empty_image.shape == (48, 64, 3)


@pytest.mark.parametrize("box", [(10.0, 20.0, 50.0, 80.0), (0.0, 0.0, 90.0, 40.0), (5.0, 5.0, 35.0, 35.0)])
def test_ellipse_for_box_has_exactly_that_box(box):
    rng = np.random.default_rng(1)
    for _ in range(20):
        ellipse = sample.ellipse_for_box(rng, np.array(box))
        np.testing.assert_allclose(ellipses_to_boxes(ellipse[None]), [box], atol=1e-9)
        assert ellipse[0] >= ellipse[1] > 0
        assert -np.pi / 2 <= ellipse[2] < np.pi / 2


def test_wider_layout_and_ground_truth(sample_dir):
    with open(os.path.join(sample_dir, "sample_truth.json")) as f:
        truth = json.load(f)
    for split, count in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        entries = parse_wider_gt(os.path.join(sample_dir, "WIDER", "wider_face_split",
                                              f"wider_face_{split}_bbx_gt.txt"))
        assert len(entries) == count == len(truth["wider"][split])
        for k, entry in enumerate(entries):
            image = cv2.imread(os.path.join(sample_dir, "WIDER", f"WIDER_{split}", "images", entry.relpath))
            assert max(image.shape[:2]) == SIZE
            degenerate = (entry.boxes[:, 2] <= 0) | (entry.boxes[:, 3] <= 0)
            assert int(degenerate.sum()) == (1 if k % 5 == 1 else 0)
            assert np.all(entry.boxes[degenerate, 7] == 1)  # marked invalid, as in the real file
            faces = entry.boxes[~degenerate]
            if k % 10 == 3:
                assert entry.boxes.shape == (0, 10)
            else:
                assert len(faces) >= 1
            corners = np.stack([faces[:, 0], faces[:, 1], faces[:, 0] + faces[:, 2], faces[:, 1] + faces[:, 3]], 1)
            np.testing.assert_array_equal(corners.reshape(-1, 4),
                                          np.array(truth["wider"][split][entry.relpath]).reshape(-1, 4))
            assert np.all(corners[:, 2] <= image.shape[1]) and np.all(corners[:, 3] <= image.shape[0])
    # The zero-face image still has its line of zeros in the official file.
    with open(os.path.join(sample_dir, "WIDER", "wider_face_split", "wider_face_train_bbx_gt.txt")) as f:
        lines = f.read().splitlines()
    zero_at = lines.index(entries_relpath(sample_dir, "train", 3))
    assert lines[zero_at + 1] == "0" and lines[zero_at + 2].split() == ["0"] * 10


def entries_relpath(sample_dir, split, k):
    return parse_wider_gt(os.path.join(sample_dir, "WIDER", "wider_face_split",
                                       f"wider_face_{split}_bbx_gt.txt"))[k].relpath


def test_fddb_layout_ellipses_and_grayscale(sample_dir):
    with open(os.path.join(sample_dir, "sample_truth.json")) as f:
        truth = json.load(f)["fddb"]
    folds = os.path.join(sample_dir, "FDDB", "FDDB-folds")
    assert sorted(os.listdir(folds)) == sorted(
        [f"FDDB-fold-{k:02d}.txt" for k in range(1, 7)] + [f"FDDB-fold-{k:02d}-ellipseList.txt" for k in range(1, 7)])
    seen = []
    for fold in range(1, 7):
        paths = read_fold_list(os.path.join(folds, f"FDDB-fold-{fold:02d}.txt"))
        items = read_ellipse_list(os.path.join(folds, f"FDDB-fold-{fold:02d}-ellipseList.txt"))
        assert paths == [p for p, _ in items]
        for path, ellipses in items:
            assert len(ellipses) >= 1
            # Six printed decimals: the ellipse's box matches the true face box to ~1e-5 px.
            np.testing.assert_allclose(ellipses_to_boxes(ellipses), truth[path], atol=1e-4)
            seen.append(path)
    assert len(seen) == NUM_FDDB == len(truth)
    for k, path in enumerate(sorted(seen, key=lambda p: int(p.rsplit("_", 1)[1]))):
        assert path.split("/")[4] == f"img_{100 + 7 * k}"
        image = cv2.imread(os.path.join(sample_dir, "FDDB", "originalPics", path + ".jpg"), cv2.IMREAD_UNCHANGED)
        assert image.ndim == (2 if k % 5 == 2 else 3)


def test_same_seed_same_files_other_seed_other_files(sample_dir, tmp_path):
    again = str(tmp_path / "again")
    sample.make_sample_dataset(again, seed=3, num_train=NUM_TRAIN, num_val=NUM_VAL, num_fddb=NUM_FDDB, image_size=SIZE)
    files = all_files(sample_dir)
    assert files == all_files(again)
    _, mismatch, errors = filecmp.cmpfiles(sample_dir, again, files, shallow=False)
    assert mismatch == [] and errors == []
    other = str(tmp_path / "other")
    sample.make_sample_dataset(other, seed=4, num_train=2, num_val=0, num_fddb=0, image_size=SIZE)
    with open(os.path.join(sample_dir, "sample_truth.json")) as f, open(os.path.join(other, "sample_truth.json")) as g:
        assert json.load(f)["wider"]["train"] != json.load(g)["wider"]["train"]


def test_cli_rejects_tiny_images_and_shows_an_example(tmp_path, capsys):
    assert sample.main(["--output_dir", str(tmp_path), "--image_size", "32"]) == 2
    with pytest.raises(SystemExit):
        sample.main(["--help"])
    assert "example: python prepare_data/make_sample_dataset.py" in capsys.readouterr().out
