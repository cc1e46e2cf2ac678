"""Mosaics: labels exact after composition, visibility rules, reproducible CLI."""
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from prepare_data import make_mosaics as mm
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


# --- hard-negative crops (paste_negatives, make_mosaics --negatives) ------------------------

def changed_rectangle(changed):
    """(x1, y1, x2, y2) of the changed pixels, asserting they fill that rectangle exactly."""
    ys, xs = np.nonzero(changed)
    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    assert changed.sum() == (x2 - x1) * (y2 - y1), "the pasted pixels are not one full rectangle"
    return x1, y1, x2, y2


def test_paste_negatives_never_touch_a_box():
    rng = np.random.default_rng(5)
    boxes = np.array([[40.5, 30.2, 150.0, 170.9], [200.0, 220.0, 300.0, 310.0], [250.0, 0.0, 320.0, 60.0]])
    crops = [(np.full((30, 40, 3), 255, np.uint8), np.array([5.0, 5.0, 35.0, 25.0])),
             (np.full((60, 20, 3), 255, np.uint8), np.array([0.0, 0.0, 20.0, 60.0]))]
    total, components_seen = 0, 0
    for trial in range(20):
        image = np.zeros((320, 320, 3), np.uint8)
        pasted = mosaic.paste_negatives(rng, image, boxes, crops, count=4, margin=4)
        assert 0 <= pasted <= 4
        total += pasted
        changed = image.any(axis=2)
        assert changed.any() == (pasted > 0)
        # Pasted rectangles may touch or overlap each other, never a box grown by the margin.
        components = cv2.connectedComponents(changed.astype(np.uint8), connectivity=4)[0] - 1
        assert components <= pasted
        components_seen += components
        for x1, y1, x2, y2 in boxes:
            y0, x0 = max(0, int(np.floor(y1)) - 4), max(0, int(np.floor(x1)) - 4)
            assert not changed[y0:int(np.ceil(y2)) + 4, x0:int(np.ceil(x2)) + 4].any(), trial
    assert total > 30 and components_seen > 20  # most crops find a free place
    # One crop per call: the return value is exactly whether a rectangle was pasted.
    outcomes = []
    for trial in range(20):
        image = np.zeros((320, 320, 3), np.uint8)
        pasted = mosaic.paste_negatives(rng, image, boxes, crops, count=1, margin=4)
        changed = image.any(axis=2)
        assert pasted == int(changed.any())
        if pasted:
            x1, y1, x2, y2 = changed_rectangle(changed)
            assert np.all(image[y1:y2, x1:x2] == 255)
        outcomes.append(pasted)
    assert sum(outcomes) >= 10


def test_paste_negatives_with_everything_kept_clear_pastes_nothing():
    rng = np.random.default_rng(0)
    crops = [(np.full((10, 10, 3), 255, np.uint8), np.array([0.0, 0.0, 10.0, 10.0]))]
    image = np.zeros((100, 120, 3), np.uint8)
    assert mosaic.paste_negatives(rng, image, [[0, 0, 120, 100]], crops, count=5) == 0
    assert not image.any()
    # A box whose margin reaches every pixel keeps the whole image clear too.
    assert mosaic.paste_negatives(rng, image, [[4, 4, 116, 96]], crops, count=5, margin=4) == 0
    assert not image.any()


def test_paste_negatives_sizes_follow_the_detector_box():
    rng = np.random.default_rng(7)
    low, high = mosaic.NEGATIVE_SIZE_RANGE
    # The box is the whole crop: the pasted rectangle's sqrt(area) is the drawn size, aspect kept.
    crops = [(np.full((80, 40, 3), 255, np.uint8), np.array([0.0, 0.0, 40.0, 80.0]))]
    sizes = []
    for _ in range(30):
        image = np.zeros((600, 600, 3), np.uint8)
        assert mosaic.paste_negatives(rng, image, np.zeros((0, 4)), crops, count=1) == 1
        x1, y1, x2, y2 = changed_rectangle(image.any(axis=2))
        width, height = x2 - x1, y2 - y1
        assert abs(height - 2 * width) <= 1
        sizes.append(np.sqrt(width * height))
    assert low * 0.95 <= min(sizes) < 40 and 100 < max(sizes) <= high * 1.05
    # A box of 20 px in a 100 px crop: the crop is scaled so that the box gets the drawn size.
    crops = [(np.full((100, 100, 3), 255, np.uint8), np.array([40.0, 40.0, 60.0, 60.0]))]
    for _ in range(10):
        image = np.zeros((1200, 1200, 3), np.uint8)
        assert mosaic.paste_negatives(rng, image, np.zeros((0, 4)), crops, count=1) == 1
        x1, y1, x2, y2 = changed_rectangle(image.any(axis=2))
        assert x2 - x1 == y2 - y1
        assert low * 0.97 <= (x2 - x1) / 5 <= min(high * 1.03, 0.9 * 1200 / 5)
    # A huge crop with a tiny box: capped at 0.9 of the image's sides (here the width's).
    crops = [(np.full((1000, 2000, 3), 255, np.uint8), np.array([0.0, 0.0, 10.0, 10.0]))]
    image = np.zeros((200, 200, 3), np.uint8)
    assert mosaic.paste_negatives(rng, image, np.zeros((0, 4)), crops, count=1) == 1
    x1, y1, x2, y2 = changed_rectangle(image.any(axis=2))
    assert (x2 - x1, y2 - y1) == (180, 90)


def test_paste_negatives_mirrors_at_random():
    rng = np.random.default_rng(11)
    crop = np.zeros((40, 40, 3), np.uint8)
    crop[:, :20] = 255
    crop[:, 20:] = 100
    crops = [(crop, np.array([0.0, 0.0, 40.0, 40.0]))]
    left_bright = []
    for _ in range(20):
        image = np.zeros((300, 300, 3), np.uint8)
        assert mosaic.paste_negatives(rng, image, np.zeros((0, 4)), crops, count=1) == 1
        x1, y1, x2, y2 = changed_rectangle(image.any(axis=2))
        left, right = image[y1:y2, x1, 0], image[y1:y2, x2 - 1, 0]
        assert {int(left[0]), int(right[0])} == {255, 100}
        left_bright.append(int(left[0]) == 255)
    assert 0 < sum(left_bright) < 20


def write_negatives(folder, crops, extra_entries=()):
    """A mine_negatives.py-like folder: images/<name> and negatives.json."""
    (folder / "images").mkdir(parents=True)
    manifest = []
    for index, (rgb, box) in enumerate(crops):
        name = f"n_{index}.png"
        cv2.imwrite(str(folder / "images" / name), rgb[:, :, ::-1])
        manifest.append({"image": name, "source": "x.jpg", "box": list(box), "score": 0.9})
    (folder / "negatives.json").write_text(json.dumps(manifest + list(extra_entries)))


def test_load_negatives(tmp_path):
    green = np.zeros((30, 40, 3), np.uint8)
    green[:, :, 1] = 255
    write_negatives(tmp_path / "neg", [(green, [5, 5, 35, 25]), (np.full((8, 6, 3), 7, np.uint8), [1, 2, 5, 7])],
                    extra_entries=[{"image": "gone.png", "box": [0, 0, 1, 1]}, {"image": "n_0.png"}])
    crops = mm.load_negatives(str(tmp_path / "neg"))
    assert len(crops) == 2  # the missing image and the entry without a box are skipped
    np.testing.assert_array_equal(crops[0][0], green)
    assert crops[0][1].dtype == np.float64 and list(crops[0][1]) == [5, 5, 35, 25]
    assert crops[1][0].shape == (8, 6, 3) and list(crops[1][1]) == [1, 2, 5, 7]
    os.makedirs(tmp_path / "empty")
    manifest_path = os.path.join(str(tmp_path / "empty"), "negatives.json")
    with pytest.raises(ValueError, match=f"^{re.escape(manifest_path)}: not found"):
        mm.load_negatives(str(tmp_path / "empty"))
    (tmp_path / "empty" / "negatives.json").write_text("[{\"image\": ")
    with pytest.raises(ValueError, match=f"^{re.escape(manifest_path)}: line 1: not valid JSON"):
        mm.load_negatives(str(tmp_path / "empty"))
    (tmp_path / "empty" / "negatives.json").write_text("[]")
    with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path / 'empty'))}: no usable negative crop$"):
        mm.load_negatives(str(tmp_path / "empty"))


def test_load_negatives_rejects_a_manifest_that_is_not_a_list_of_objects(tmp_path):
    write_negatives(tmp_path / "neg", [(np.full((8, 8, 3), 9, np.uint8), [0, 0, 8, 8])])
    (tmp_path / "neg" / "negatives.json").write_text('["n_0.png"]')
    with pytest.raises(ValueError, match="negatives.json: expected a list of objects"):
        mm.load_negatives(str(tmp_path / "neg"))


def face_source(tmp_path):
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    photo = red_face_photo()
    cv2.imwrite(str(photos / "p0.png"), photo.image[:, :, ::-1])
    write_annotation(str(labels / "p0.json"), Annotation("p0.png", 200, 160, 3, photo.faces))
    return f"{photos}:{labels}"


def test_make_mosaics_negative_options_are_checked(tmp_path, capsys):
    tiles = face_source(tmp_path)
    out = str(tmp_path / "out")
    for kwargs, message in [(dict(negative_fraction=0.5), "--negative_fraction needs --negatives"),
                            (dict(negative_fraction=1.5, negatives_dir=str(tmp_path)),
                             "--negative_fraction must be in [0, 1], got 1.5"),
                            (dict(negative_fraction=0.5, negatives_dir=str(tmp_path / "nowhere")),
                             f"{tmp_path / 'nowhere' / 'negatives.json'}: not found")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            mm.make_mosaics(out, [tiles], num_images=1, size=64, num_workers=1, show_progress=False, **kwargs)
    assert not os.path.exists(out)
    code = mm.main(["--output_dir", out, "--num_images", "1", "--tiles", tiles, "--negatives",
                    str(tmp_path / "nowhere"), "--negative_fraction", "0.5"])
    assert code == 2 and capsys.readouterr().err.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere' / 'negatives.json'}: not found (make it with prepare_data/mine_negatives.py)"]
    assert not os.path.exists(out)


def test_make_mosaics_with_negatives_keeps_the_labels(tmp_path):
    tiles = face_source(tmp_path)
    green = np.zeros((40, 40, 3), np.uint8)
    green[:, :, 1] = 255
    write_negatives(tmp_path / "neg", [(green, [5, 5, 35, 35])])
    common = dict(num_images=4, size=256, seed=3, grayscale=0.0, num_workers=1, show_progress=False)
    plain = mm.make_mosaics(str(tmp_path / "plain"), [tiles], **common)
    with_negatives = mm.make_mosaics(str(tmp_path / "neg_out"), [tiles], negatives_dir=str(tmp_path / "neg"),
                                     negative_fraction=1.0, **common)
    assert plain == with_negatives and with_negatives["written"] == 4 and with_negatives["faces"] > 0
    differing = 0
    for index in range(4):
        name = f"mosaic_{index:06d}"
        # Pasting comes after composition and moves no box: the same labels as without negatives.
        a = json.load(open(tmp_path / "plain" / "annotations" / f"{name}.json"))
        b = json.load(open(tmp_path / "neg_out" / "annotations" / f"{name}.json"))
        assert a == b
        before = cv2.imread(str(tmp_path / "plain" / "images" / f"{name}.jpg")).astype(int)
        after = cv2.imread(str(tmp_path / "neg_out" / "images" / f"{name}.jpg")).astype(int)
        assert before.shape == after.shape == (256, 256, 3)
        changed = np.abs(after - before).max(axis=2) > 60
        differing += changed.any()
        # No face or ignore region is touched (a few px of JPEG blur at the margin aside).
        for region in b["object"] + b.get("ignore", []):
            box = region["bndbox"]
            inner = changed[int(box["ymin"]) + 2:int(np.ceil(box["ymax"])) - 2,
                            int(box["xmin"]) + 2:int(np.ceil(box["xmax"])) - 2]
            assert not inner.any(), (name, box)
        for face in b["object"]:  # and the faces are still red
            box = face["bndbox"]
            crop = after[int(box["ymin"]) + 2:int(box["ymax"]) - 2, int(box["xmin"]) + 2:int(box["xmax"]) - 2]
            assert crop.size and np.median(crop[:, :, 2] - crop[:, :, 0]) > 100
    assert differing >= 2  # the green crop is pasted on most mosaics
