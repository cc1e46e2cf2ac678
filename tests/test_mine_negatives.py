"""Hard-negative mining: the label / edge / teacher checks, the files written, the CLI's errors.

Every detector here is a fake ``(rgb, score_threshold) -> (boxes yxyx, scores)``; the real
YuNet teacher is only used when ``yuface`` is installed.
"""
import collections
import json
import os

import cv2
import numpy as np
import pytest

from prepare_data import mine_negatives as mn
from src.annotations import Annotation, write_annotation
from src.datasets import teacher


def gradient_photo(width, height):
    """A smooth RGB photo (JPEG round trips stay close to it)."""
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = (x + 0 * y).astype(np.uint8)
    image[:, :, 1] = (y + 0 * x).astype(np.uint8)
    image[:, :, 2] = ((x + y) / 2).astype(np.uint8)
    return image


def write_rgb(path, rgb):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def read_rgb(path):
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return bgr[:, :, ::-1]


class FakeDetector:
    """Returns fixed detections per photo size (height, width); records the thresholds asked."""

    def __init__(self, by_shape):
        self.by_shape = by_shape
        self.thresholds = []

    def __call__(self, rgb, score_threshold):
        self.thresholds.append(score_threshold)
        boxes, scores = self.by_shape.get(rgb.shape[:2], ([], []))
        return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)


# --- negative_crops and _overlaps -------------------------------------------------------------

def test_negative_crops_keeps_far_boxes_and_counts_the_rejects():
    width, height = 200, 100
    labels = np.array([[20.0, 20.0, 50.0, 60.0],      # a face (x1, y1, x2, y2)
                       [150.0, 70.0, 190.0, 95.0]])   # an ignore region
    detections = np.array([  # ymin, xmin, ymax, xmax
        [30.0, 120.0, 50.0, 160.0],   # d0: far from everything -> kept
        [30.0, 54.0, 50.0, 74.0],     # d1: the box misses the face, its grown crop (x1 49) does not
        [40.0, 185.0, 60.0, 198.0],   # d2: xmax 198 > 200 - EDGE_PX -> near_edge
        [10.0, 100.0, 20.0, 110.0],   # d3: score below min_score -> not even a detection
        [60.3, 100.2, 80.7, 130.6],   # d4: fractional box, score exactly min_score -> kept
        [76.0, 4.0, 96.0, 24.0],      # d5: crop clipped on the left and bottom -> kept
        [72.0, 160.0, 88.0, 176.0],   # d6: inside the ignore region -> near_label
    ])
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.5, 0.95, 0.6])
    assert mn.EDGE_PX == 3
    counts = collections.Counter(detections=10)  # an existing Counter is added to
    picked = mn.negative_crops(detections, scores, labels, width, height, min_score=0.5, margin=0.25,
                               counts=counts)
    assert counts == collections.Counter(detections=10 + 6, near_label=2, near_edge=1)
    assert len(picked) == 3
    # d0: box x 120-160, y 30-50; grown by 0.25 * 40 = 10 and 0.25 * 20 = 5.
    # d4: box x 100.2-130.6 (w 30.4, dx 7.6), y 60.3-80.7 (h 20.4, dy 5.1):
    #     x1 floor(92.6) = 92, x2 ceil(138.2) = 139, y1 floor(55.2) = 55, y2 ceil(85.8) = 86.
    # d5: box x 4-24, y 76-96, dx = dy = 5: x1 max(0, -1) = 0, y2 min(100, 101) = 100.
    expected = [([110, 25, 170, 55], [10.0, 5.0, 50.0, 25.0], 0.9),
                ([92, 55, 139, 86], [8.2, 5.3, 38.6, 25.7], 0.5),
                ([0, 71, 29, 100], [4.0, 5.0, 24.0, 25.0], 0.95)]
    for (rect, box, score), (want_rect, want_box, want_score) in zip(picked, expected):
        assert rect.dtype == np.int64
        np.testing.assert_array_equal(rect, want_rect)
        np.testing.assert_allclose(box, want_box, atol=1e-9)
        assert isinstance(score, float) and score == pytest.approx(want_score)


def test_negative_crops_without_labels_or_counter():
    # No labels ([0, 4]), margin 0: the crop is the box rounded outwards.
    picked = mn.negative_crops(np.array([[10.5, 20.5, 30.5, 40.5]]), np.array([0.7]), np.zeros((0, 4)),
                               100, 100, min_score=0.5, margin=0.0)
    assert len(picked) == 1
    np.testing.assert_array_equal(picked[0][0], [20, 10, 41, 31])
    np.testing.assert_allclose(picked[0][1], [0.5, 0.5, 20.5, 20.5])
    # Every edge: left, top, right, bottom within EDGE_PX.
    edges = np.array([[10, 2, 30, 40], [2, 10, 40, 30], [10, 50, 30, 98], [50, 10, 98, 30]], float)
    counts = collections.Counter()
    assert mn.negative_crops(edges, np.ones(4), np.zeros((0, 4)), 100, 100, min_score=0.5, margin=0.1,
                             counts=counts) == []
    assert counts == collections.Counter(detections=4, near_edge=4)
    # Exactly EDGE_PX from the border is allowed.
    assert len(mn.negative_crops(np.array([[3.0, 3.0, 97.0, 97.0]]), np.ones(1), np.zeros((0, 4)), 100, 100,
                                 min_score=0.5, margin=0.0)) == 1


def test_overlaps_needs_shared_area():
    rect = np.array([10.0, 10.0, 20.0, 20.0])
    assert mn._overlaps(rect, [[15, 15, 30, 30]])
    assert mn._overlaps(rect, [[0, 0, 100, 100]])           # containing
    assert mn._overlaps(rect, [[12, 12, 13, 13]])           # contained
    assert not mn._overlaps(rect, [[20, 10, 30, 20]])       # touching edge: no area
    assert not mn._overlaps(rect, [[0, 0, 10, 10]])         # touching corner
    assert not mn._overlaps(rect, np.zeros((0, 4)))
    assert mn._overlaps(rect, [[50, 50, 60, 60], [19.5, 0, 25, 10.5]])  # any of several


# --- mine() end to end ------------------------------------------------------------------------

def build_source(tmp_path):
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    labels.mkdir()
    rgb_a = gradient_photo(160, 120)
    write_rgb(photos / "a.png", rgb_a)
    write_annotation(str(labels / "a.json"), Annotation("a.png", 160, 120, 3, [[10, 10, 40, 40]]))
    rgb_b = gradient_photo(100, 80)[::-1].copy()
    write_rgb(photos / "b.jpg", rgb_b)
    write_annotation(str(labels / "b.json"), Annotation("b.jpg", 100, 80, 3, [], [[0, 0, 30, 30]]))
    (photos / "c.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    write_annotation(str(labels / "c.json"), Annotation("c.jpg", 50, 50, 3, []))
    write_rgb(photos / "d.png", gradient_photo(64, 48))
    write_annotation(str(labels / "d.json"), Annotation("d.png", 64, 48, 3, []))
    (labels / "e.json").write_text("{not json")
    write_annotation(str(labels / "f.json"), Annotation("missing.png", 50, 50, 3, []))
    (labels / "notes.txt").write_text("not an annotation")
    return photos, labels, rgb_a


A_DETECTIONS = ([[50, 80, 90, 120],      # kept: crop x 70-130, y 40-100
                 [12, 44, 32, 64],       # crop x1 39 < the face's x2 40 -> near_label
                 [60, 60, 70, 70],       # score 0.2 < min_score
                 [20, 100, 40, 150]],    # kept: crop x 87.5 -> 87, 162.5 -> 160 (clipped), y 15-45
                [0.9, 0.8, 0.2, 0.6])
B_DETECTIONS = ([[0, 50, 20, 70],        # ymin 0 -> near_edge
                 [40, 40, 60, 70]],      # kept: crop x 32.5 -> 32, 77.5 -> 78, y 35-65
                [0.99, 0.75])


def test_mine_writes_crops_and_manifest(tmp_path, caplog):
    photos, labels, rgb_a = build_source(tmp_path)
    detector = FakeDetector({(120, 160): A_DETECTIONS, (80, 100): B_DETECTIONS})
    out = tmp_path / "out"
    counts = mn.mine([f"{photos}:{labels}"], "unused.pb", str(out), min_score=0.5, margin=0.25,
                     use_teacher=False, show_progress=False, detector=detector)
    assert set(counts) == set(mn.COUNT_KEYS)
    assert dict(counts) == dict(images=3, detections=5, negatives=3, near_label=1, near_edge=1,
                                near_teacher_face=0, too_small=0, unreadable=3)
    assert detector.thresholds == [0.5, 0.5, 0.5]  # a, b, d; min_score is passed on
    assert sorted(os.listdir(out / "images")) == ["a_0.jpg", "a_1.jpg", "b_0.jpg"]
    manifest = json.loads((out / "negatives.json").read_text())
    assert [entry["image"] for entry in manifest] == ["a_0.jpg", "a_1.jpg", "b_0.jpg"]
    assert [entry["source"] for entry in manifest] == ["a.png", "a.png", "b.jpg"]
    assert [entry["box"] for entry in manifest] == [[10.0, 10.0, 50.0, 50.0], [13.0, 5.0, 63.0, 25.0],
                                                     [8.0, 5.0, 38.0, 25.0]]
    assert [entry["score"] for entry in manifest] == [0.9, 0.6, 0.75]
    a0, a1, b0 = (read_rgb(out / "images" / name) for name in ("a_0.jpg", "a_1.jpg", "b_0.jpg"))
    assert a0.shape == (60, 60, 3) and a1.shape == (30, 73, 3) and b0.shape == (30, 46, 3)
    # The crops are the photo's pixels there (up to JPEG).
    assert np.abs(a0.astype(int) - rgb_a[40:100, 70:130]).mean() < 3
    assert np.abs(a1.astype(int) - rgb_a[15:45, 87:160]).mean() < 3
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert len(skipped) == 3 and any("c.jpg" in m for m in skipped) and any("e.json" in m for m in skipped)


def test_mine_with_nothing_found_writes_an_empty_manifest(tmp_path):
    photos, labels, _ = build_source(tmp_path)
    counts = mn.mine([f"{photos}:{labels}"], "unused.pb", str(tmp_path / "out"), use_teacher=False,
                     show_progress=False, detector=FakeDetector({}))
    assert counts["images"] == 3 and counts["negatives"] == counts["detections"] == 0
    assert json.loads((tmp_path / "out" / "negatives.json").read_text()) == []


def test_mine_rejects_bad_arguments(tmp_path):
    photos, labels, _ = build_source(tmp_path)
    kwargs = dict(use_teacher=False, show_progress=False, detector=FakeDetector({}))
    with pytest.raises(ValueError, match="at least one"):
        mn.mine([], "m.pb", str(tmp_path / "out"), **kwargs)
    with pytest.raises(ValueError, match=r"--margin must be >= 0, got -0.1"):
        mn.mine([f"{photos}:{labels}"], "m.pb", str(tmp_path / "out"), margin=-0.1, **kwargs)
    with pytest.raises(ValueError, match=r"--margin must be >= 0, got nan"):
        mn.mine([f"{photos}:{labels}"], "m.pb", str(tmp_path / "out"), margin=float("nan"), **kwargs)
    with pytest.raises(ValueError, match=r"--min_score must be in \[0, 1\], got -0.5"):
        mn.mine([f"{photos}:{labels}"], "m.pb", str(tmp_path / "out"), min_score=-0.5, **kwargs)
    assert not (tmp_path / "out").exists()


def test_two_sources_with_the_same_stem_keep_both_crops(tmp_path):
    specs = []
    for index, value in enumerate((40, 200)):
        photos, labels = tmp_path / f"photos{index}", tmp_path / f"labels{index}"
        photos.mkdir()
        write_rgb(photos / "x.png", np.full((100, 100, 3), value, np.uint8))
        write_annotation(str(labels / "x.json"), Annotation("x.png", 100, 100, 3, []))
        specs.append(f"{photos}:{labels}")
    detector = FakeDetector({(100, 100): ([[40, 40, 60, 60]], [0.9])})
    out = tmp_path / "out"
    counts = mn.mine(specs, "unused.pb", str(out), use_teacher=False, show_progress=False, detector=detector)
    assert counts["negatives"] == 2
    manifest = json.loads((out / "negatives.json").read_text())
    # Each manifest entry must name its own crop: two entries, two different files, 40 and 200 grey.
    assert [entry["image"] for entry in manifest] == ["x_0.jpg", "x_0_1.jpg"]
    means = [read_rgb(out / "images" / entry["image"]).mean() for entry in manifest]
    assert means[0] == pytest.approx(40, abs=3) and means[1] == pytest.approx(200, abs=3)


# --- the teacher's checks ---------------------------------------------------------------------

def fake_teacher():
    """A stand-in for YuNet (BGR in): 'finds' each blob of pure red pixels that is at least 40 px
    on its shorter side (a small face it misses in the whole photo is found in the enlarged
    crop, as YuNet does)."""
    def detect(bgr):
        red = ((bgr[:, :, 2] > 200) & (bgr[:, :, 1] < 60) & (bgr[:, :, 0] < 60)).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(red, connectivity=4)
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:] if min(w, h) >= 40], float)
        return boxes.reshape(-1, 4), np.full(len(boxes), 0.9)
    return detect


def test_teacher_checks_with_a_fake_teacher(tmp_path, monkeypatch):
    monkeypatch.setattr(teacher, "load_yunet", fake_teacher)
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    rgb = np.full((300, 400, 3), 120, np.uint8)
    rgb[100:120, 100:120] = (255, 0, 0)    # a small unlabelled "face": missed in the whole photo
    rgb[150:210, 250:310] = (255, 0, 0)    # a big unlabelled "face": found in the whole photo
    write_rgb(photos / "p.png", rgb)
    write_annotation(str(labels / "p.json"), Annotation("p.png", 400, 300, 3, []))
    detections = ([[95, 95, 125, 125],     # crop 87-133 holds the small face -> found in the crop
                   [160, 210, 200, 245],   # crop x 201-254 overlaps the big face's box (x 250-310)
                   [220, 20, 260, 60]],    # plain grey -> kept
                  [0.9, 0.8, 0.7])
    out = tmp_path / "out"
    counts = mn.mine([f"{photos}:{labels}"], "unused.pb", str(out), use_teacher=True, show_progress=False,
                     detector=FakeDetector({(300, 400): detections}))
    assert (counts["detections"], counts["near_teacher_face"], counts["negatives"]) == (3, 2, 1)
    manifest = json.loads((out / "negatives.json").read_text())
    assert manifest == [{"image": "p_0.jpg", "source": "p.png", "box": [10.0, 10.0, 50.0, 50.0], "score": 0.7}]
    assert os.listdir(out / "images") == ["p_0.jpg"]
    # The small face is really missed in the whole photo: only the crop check finds it.
    faces, _ = teacher.label_photo(rgb, fake_teacher(), 0.2, 0.2)
    np.testing.assert_array_equal(faces, [[250, 150, 310, 210]])
    assert mn._teacher_sees_face(rgb, np.array([87, 87, 133, 133]), fake_teacher())


def test_teacher_rejects_a_real_face(tmp_path):
    pytest.importorskip("yuface")
    skimage_data = pytest.importorskip("skimage.data")
    rgb = skimage_data.astronaut()  # 512 x 512; her face is about x 150-260, y 40-180
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    write_rgb(photos / "astronaut.png", rgb)
    write_annotation(str(labels / "astronaut.json"), Annotation("astronaut.png", 512, 512, 3, []))  # face unlabelled
    detections = ([[60, 170, 170, 265],    # her face
                   [345, 130, 425, 210]],  # the mission patch on her suit (crop x 110-230, y 325-445)
                  [0.9, 0.8])
    out = tmp_path / "out"
    counts = mn.mine([f"{photos}:{labels}"], "unused.pb", str(out), use_teacher=True, show_progress=False,
                     detector=FakeDetector({(512, 512): detections}))
    assert (counts["detections"], counts["near_label"], counts["near_teacher_face"], counts["negatives"]) == (
        2, 0, 1, 1)
    manifest = json.loads((out / "negatives.json").read_text())
    assert [entry["box"] for entry in manifest] == [[20.0, 20.0, 100.0, 100.0]]
    assert read_rgb(out / "images" / "astronaut_0.jpg").shape == (120, 120, 3)


# --- the CLI ----------------------------------------------------------------------------------

def run_cli(capsys, *args):
    code = mn.main(["--model", "unused.pb", *args])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    photos, labels, _ = build_source(tmp_path)
    out = str(tmp_path / "out")
    assert run_cli(capsys, "--sources", "nocolon", "--output_dir", out) == (
        2, ["error: source 'nocolon': expected IMAGE_DIR:ANNOTATIONS_DIR"])
    missing = tmp_path / "nowhere"
    spec = f"{photos}:{missing}"
    assert run_cli(capsys, "--sources", spec, "--output_dir", out) == (
        2, [f"error: source '{spec}': {missing}: folder not found"])
    assert run_cli(capsys, "--sources", f"{photos}:{labels}:1.0", "--output_dir", out) == (
        2, [f"error: source '{photos}:{labels}:1.0': expected IMAGE_DIR:ANNOTATIONS_DIR"])
    assert run_cli(capsys, "--sources", f"{photos}:{labels}", "--output_dir", out, "--min_score", "1.5") == (
        2, ["error: --min_score must be in [0, 1], got 1.5"])
    assert run_cli(capsys, "--sources", f"{photos}:{labels}", "--output_dir", out, "--margin", "-1") == (
        2, ["error: --margin must be >= 0, got -1.0"])
    assert not os.path.exists(out)
    # --debug re-raises instead.
    with pytest.raises(ValueError, match="expected IMAGE_DIR:ANNOTATIONS_DIR"):
        mn.main(["--model", "m.pb", "--sources", "nocolon", "--output_dir", out, "--debug"])


def test_a_crop_under_two_pixels_is_counted_as_too_small():
    counts = collections.Counter()
    kept = mn.negative_crops(np.array([[50.0, 50.0, 50.0, 50.0]]), np.array([0.9]), np.zeros((0, 4)),
                             100, 100, min_score=0.5, margin=0.0, counts=counts)
    assert kept == [] and counts == {"detections": 1, "too_small": 1}
