"""Mosaics: labels exact after composition, visibility rules, reproducible CLI."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np

from src.annotations import Annotation, write_annotation
from src.datasets import mosaic

RED = (255, 0, 0)


def red_face_photo(width=200, height=160, face=(60, 40, 140, 130)):
    """A blue photo with one pure red face rectangle (pixels x1, y1, x2, y2)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (0, 0, 200)
    x1, y1, x2, y2 = face
    image[y1:y2, x1:x2] = RED
    return mosaic.LabelledImage(image, [face], np.zeros((0, 4)))


def red_components(image):
    """Bounding boxes (x1, y1, x2, y2 edges) of the reddish blobs of an RGB image."""
    mask = ((image[:, :, 0] > 128) & (image[:, :, 1] < 100) & (image[:, :, 2] < 100)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    return [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:]]


def test_face_boxes_follow_the_pixels_exactly():
    rng = np.random.default_rng(0)
    canvas = mosaic.LabelledImage(np.zeros((512, 512, 3), np.uint8), np.zeros((0, 4)), np.zeros((0, 4)))
    checked = 0
    for grid in (1, 2, 3, 4):
        result = mosaic.compose_mosaic(rng, lambda r: red_face_photo(), 512, grid, (12, 300), canvas,
                                       empty_cell_probability=0.0)
        blobs = red_components(result.image)
        boxes = np.concatenate([result.faces, result.ignore])
        assert len(blobs) == len(boxes)
        for blob in blobs:
            # Each red blob is one labelled box, within the half pixel of the resize.
            distance = np.abs(boxes - np.array(blob)).max(axis=1)
            assert distance.min() <= 1.0, (blob, boxes)
            checked += 1
    assert checked >= 1 + 4 + 9 + 16 - 3


def test_face_sizes_follow_the_range():
    rng = np.random.default_rng(1)
    sizes = []
    for _ in range(20):
        result = mosaic.compose_mosaic(rng, lambda r: red_face_photo(400, 400, (100, 100, 300, 300)), 640, 3,
                                       (20, 100), None, empty_cell_probability=0.0)
        sizes += list(np.sqrt(np.prod(result.faces[:, 2:] - result.faces[:, :2], axis=1)))
    sizes = np.array(sizes)
    assert len(sizes) > 100
    assert sizes.min() >= 20 * 0.97 and sizes.max() <= 100 * 1.03


def test_visibility_rules():
    # A box 50% inside the visible rectangle becomes an ignore region (its visible part);
    # 75% inside stays a face, clipped.
    kept, partial = mosaic.place_boxes(np.array([[0, 0, 20, 10], [0, 20, 40, 30]]), 1.0, (0, 0), (10, 0, 100, 100))
    np.testing.assert_array_equal(kept, [[10, 20, 40, 30]])
    np.testing.assert_array_equal(partial, [[10, 0, 20, 10]])
    # Scale and offset per axis.
    kept, _ = mosaic.place_boxes(np.array([[10, 10, 20, 30]]), (2.0, 0.5), (5, 7), (0, 0, 100, 100))
    np.testing.assert_array_equal(kept, [[25, 12, 45, 22]])


def test_canvas_faces_covered_by_tiles():
    covered = np.zeros((100, 100), bool)
    covered[:, :50] = True
    fraction = mosaic.visible_fraction(np.array([[0, 0, 40, 40], [40, 0, 60, 10], [60, 60, 90, 90]]), covered)
    np.testing.assert_allclose(fraction, [0.0, 0.5, 1.0])


def test_cli_is_reproducible_and_resumable(tmp_path):
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    for index in range(3):
        photo = red_face_photo()
        cv2.imwrite(str(photos / f"p{index}.png"), photo.image[:, :, ::-1])
        write_annotation(str(labels / f"p{index}.json"), Annotation(f"p{index}.png", 200, 160, 3, photo.faces))
    def run(out, count):
        return subprocess.run([sys.executable, "prepare_data/make_mosaics.py", "--output_dir", str(out),
                               "--num_images", str(count), "--size", "256", "--tiles", f"{photos}:{labels}",
                               "--num_workers", "1"], capture_output=True, text=True, timeout=120)
    assert run(tmp_path / "a", 3).returncode == 0
    assert run(tmp_path / "b", 2).returncode == 0
    result = run(tmp_path / "b", 3)
    assert result.returncode == 0 and "already_there=2" in result.stderr
    for index in range(3):
        name = f"mosaic_{index:06d}"
        a = json.load(open(tmp_path / "a" / "annotations" / f"{name}.json"))
        b = json.load(open(tmp_path / "b" / "annotations" / f"{name}.json"))
        assert a == b and a["object"]
        assert (tmp_path / "a" / "images" / f"{name}.jpg").read_bytes() == (tmp_path / "b" / "images" / f"{name}.jpg").read_bytes()
    bad = subprocess.run([sys.executable, "prepare_data/make_mosaics.py", "--output_dir", str(tmp_path / "c"),
                          "--num_images", "1", "--tiles", f"{photos}:{tmp_path / 'nowhere'}"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: source '{photos}:{tmp_path / 'nowhere'}': {tmp_path / 'nowhere'}: folder not found"]
    assert not os.path.exists(tmp_path / "c" / "images")


def test_text_negatives_never_touch_a_box():
    rng = np.random.default_rng(3)
    total = 0
    for trial in range(20):
        image = np.full((320, 320, 3), 90, np.uint8)
        boxes = np.array([[40.5, 30.2, 150.0, 170.9], [200.0, 220.0, 300.0, 310.0], [250.0, 0.0, 320.0, 60.0]])
        before = image.copy()
        drawn = mosaic.draw_text_negatives(rng, image, boxes, count=6, margin=4)
        total += drawn
        changed = (image != before).any(axis=2)
        assert changed.any() == (drawn > 0)
        for x1, y1, x2, y2 in boxes:  # every box and its 4 px margin keep their pixels
            y0, x0 = max(0, int(y1) - 4), max(0, int(x1) - 4)
            assert not changed[y0:int(np.ceil(y2)) + 4, x0:int(np.ceil(x2)) + 4].any(), trial
    assert total > 40  # most strings find a free place
    # With the whole image kept clear nothing can be drawn.
    image = np.zeros((100, 100, 3), np.uint8)
    assert mosaic.draw_text_negatives(rng, image, [[0, 0, 100, 100]], count=5) == 0 and not image.any()


def test_text_fraction_in_the_cli_keeps_labels_and_the_default_is_unchanged(tmp_path):
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    photo = red_face_photo()
    cv2.imwrite(str(photos / "p0.png"), photo.image[:, :, ::-1])
    write_annotation(str(labels / "p0.json"), Annotation("p0.png", 200, 160, 3, photo.faces))

    def run(out, *extra):
        return subprocess.run([sys.executable, "prepare_data/make_mosaics.py", "--output_dir", str(out),
                               "--num_images", "3", "--size", "256", "--tiles", f"{photos}:{labels}",
                               "--num_workers", "1", *extra], capture_output=True, text=True, timeout=120)

    assert run(tmp_path / "plain").returncode == 0
    assert run(tmp_path / "zero", "--text_fraction", "0").returncode == 0
    assert run(tmp_path / "text", "--text_fraction", "1").returncode == 0
    for index in range(3):
        name = f"mosaic_{index:06d}"
        plain, zero, text = (json.load(open(tmp_path / d / "annotations" / f"{name}.json"))
                             for d in ("plain", "zero", "text"))
        assert plain == zero and (tmp_path / "plain" / "images" / f"{name}.jpg").read_bytes() == (
            tmp_path / "zero" / "images" / f"{name}.jpg").read_bytes()
        # Text is drawn after composition, away from the faces: they stay the red rectangles
        # their labels say.
        image = cv2.imread(str(tmp_path / "text" / "images" / f"{name}.jpg"))[:, :, ::-1]
        for face in text["object"]:
            box = face["bndbox"]
            crop = image[int(box["ymin"]) + 2:int(box["ymax"]) - 2, int(box["xmin"]) + 2:int(box["xmax"]) - 2]
            assert crop.size and np.median(crop[:, :, 0].astype(int) - crop[:, :, 2]) > 100  # still red
    bad = run(tmp_path / "bad", "--text_fraction", "1.5")
    assert bad.returncode == 2 and "--text_fraction must be in [0, 1], got 1.5" in bad.stderr
