"""The YuNet teacher labeller: a real photo's face, thresholds, resume, missing teacher."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from src.datasets import teacher

ASTRONAUT_FACE = (172, 58, 272, 178)  # x1, y1, x2, y2, checked by eye (forehead to chin)


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_label_detections_thresholds_and_clipping():
    boxes = np.array([[-10, 5, 40, 50], [10, 10, 50, 50], [60, 60, 62, 70], [0, 0, 5, 5], [200, 200, 250, 250]])
    scores = np.array([0.9, 0.5, 0.95, 0.1, 0.8])
    faces, ignore = teacher.label_detections(boxes, scores, 100, 100)
    np.testing.assert_array_equal(faces, [[0, 5, 40, 50]])  # clipped
    # 0.5: doubtful; the 2 px wide confident box is too small to be a face.
    np.testing.assert_array_equal(ignore, [[10, 10, 50, 50], [60, 60, 62, 70]])
    with pytest.raises(ValueError, match="ignore_threshold"):
        teacher.label_detections(boxes, scores, 100, 100, face_threshold=0.3, ignore_threshold=0.5)


def test_padding_maps_boxes_back_to_the_photo():
    seen = {}

    def fake_detect(bgr):
        seen["shape"] = bgr.shape
        return np.array([[30.0, 20.0, 70.0, 60.0]]), np.array([0.9])  # in the padded frame

    faces, _ = teacher.label_photo(np.zeros((80, 120, 3), np.uint8), fake_detect, pad_fraction=0.25)
    assert seen["shape"] == (120, 180, 3)  # 20 px top/bottom, 30 px left/right
    np.testing.assert_array_equal(faces, [[0, 0, 40, 40]])


def test_the_teacher_finds_the_astronauts_face():
    pytest.importorskip("yuface")
    skimage_data = pytest.importorskip("skimage.data")
    faces, _ = teacher.label_photo(skimage_data.astronaut(), teacher.load_yunet())
    assert len(faces) == 1 and iou(faces[0], ASTRONAUT_FACE) > 0.6


def run(*args, env=None):
    return subprocess.run([sys.executable, "prepare_data/label_with_teacher.py", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_labels_resumes_and_counts(tmp_path):
    pytest.importorskip("yuface")
    skimage_data = pytest.importorskip("skimage.data")
    photos, out = tmp_path / "photos", tmp_path / "labels"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(skimage_data.astronaut()).save(photos / "sub" / "astronaut.jpg")
    Image.new("RGB", (64, 48), (0, 120, 0)).save(photos / "grass.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "grass.json").write_text(json.dumps({"filename": "grass.png", "size": {"width": 64, "height": 48},
                                                  "object": [{"name": "head", "bndbox": {"xmin": 1, "ymin": 2, "xmax": 11, "ymax": 12}}]}))
    result = run("--image_dir", photos, "--output_dir", out, "--num_workers", "1", "--extra_ignore", extra)
    assert result.returncode == 0, result.stderr
    assert "images=2, faces=1, ignore_regions=1, no_face=1, already_labelled=0, unreadable=1" in result.stderr
    assert "broken.jpg" in result.stderr
    label = json.load(open(out / "sub__astronaut.json"))
    assert label["filename"] == "sub/astronaut.jpg" and len(label["object"]) == 1
    assert json.load(open(out / "grass.json"))["ignore"][0]["bndbox"] == {"xmin": 1, "ymin": 2, "xmax": 11, "ymax": 12}
    before = (out / "sub__astronaut.json").stat().st_mtime_ns
    again = run("--image_dir", photos, "--output_dir", out, "--num_workers", "1")
    assert "images=0, faces=0, ignore_regions=0, no_face=0, already_labelled=2, unreadable=1" in again.stderr
    assert (out / "sub__astronaut.json").stat().st_mtime_ns == before


def test_missing_teacher_is_one_line(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (8, 8)).save(photos / "a.jpg")
    code = ("import sys, runpy; sys.modules['yuface'] = None; "
            f"sys.argv = ['label_with_teacher.py', '--image_dir', {str(photos)!r}, '--output_dir', {str(tmp_path / 'out')!r}]; "
            "runpy.run_path('prepare_data/label_with_teacher.py', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the YuNet teacher needs the 'yuface' package")
    assert not os.path.exists(tmp_path / "out")
