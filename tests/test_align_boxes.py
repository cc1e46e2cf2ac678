"""align_boxes.py: mutual-best matching, relative edge offsets, the aligned folder, the CLI's errors.

Every annotation here is written by the test in tmp_path; the expected boxes are worked out by hand.
"""
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from prepare_data import align_boxes as ab
from src.annotations import Annotation, read_annotation, write_annotation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def boxes(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


# --- matched_pairs ----------------------------------------------------------------------------

def test_matched_pairs_are_mutual_best_above_the_threshold():
    # H0 == T0 (IoU 1); H1 is T0 shifted by 1 px (IoU 90 / 110 = 0.82): its best teacher box is T0,
    # but T0 prefers H0, so H1 stays unmatched. T1 overlaps nothing.
    human = boxes([0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60])
    teacher = boxes([0, 0, 10, 10], [100, 100, 110, 110])
    assert ab.matched_pairs(human, teacher) == [(0, 0)]
    # Two faces, listed in a different order on each side.
    assert ab.matched_pairs(boxes([0, 0, 10, 10], [50, 50, 60, 60]),
                            boxes([51, 50, 61, 60], [0, 1, 10, 11])) == [(0, 1), (1, 0)]


def test_matched_pairs_empty_inputs_and_the_threshold():
    assert ab.matched_pairs(boxes(), boxes([0, 0, 10, 10])) == []
    assert ab.matched_pairs(boxes([0, 0, 10, 10]), boxes()) == []
    assert ab.matched_pairs(boxes(), boxes()) == []
    human = boxes([0, 0, 10, 10])
    # Teacher box inside the human one: IoU = its area / 100.
    assert ab.matched_pairs(human, boxes([0, 0, 10, 4])) == [(0, 0)]           # IoU 0.40: at the threshold
    assert ab.matched_pairs(human, boxes([0, 0, 10, 3.99])) == []              # IoU 0.399
    assert ab.matched_pairs(human, boxes([0, 0, 10, 3.99]), min_iou=0.39) == [(0, 0)]
    assert ab.matched_pairs(human, boxes([0, 0, 10, 8]), min_iou=0.81) == []    # IoU 0.8


# --- relative_offsets and apply_offsets -------------------------------------------------------

def test_relative_offsets_and_apply_offsets_round_trip():
    # Human 20 x 40; teacher edges moved by (0, -8, -2, -4) px -> (0/20, -8/40, -2/20, -4/40).
    # Second pair: human 40 x 40, teacher edges moved by (-4, -12, +2, +4).
    human = boxes([10, 20, 30, 60], [50, 50, 90, 90])
    teacher = boxes([10, 12, 28, 56], [46, 38, 92, 94])
    offsets = ab.relative_offsets(human, teacher)
    np.testing.assert_allclose(offsets, [[0, -0.2, -0.1, -0.1], [-0.1, -0.3, 0.05, 0.1]], atol=1e-12)
    for row in range(2):
        np.testing.assert_allclose(ab.apply_offsets(human[row:row + 1], offsets[row], 200, 100),
                                   teacher[row:row + 1], atol=1e-9)


def test_apply_offsets_clips_to_the_image():
    # [0, 0, 10, 10] grown by half its size on each side = [-5, -5, 15, 15] -> image 12 x 8.
    np.testing.assert_allclose(ab.apply_offsets(boxes([0, 0, 10, 10]), np.array([-0.5, -0.5, 0.5, 0.5]), 12, 8),
                               [[0, 0, 12, 8]])
    # Zero offsets: an out-of-image box is only clipped; several boxes at once.
    np.testing.assert_allclose(ab.apply_offsets(boxes([90, -5, 110, 95], [1, 2, 3, 4]), np.zeros(4), 100, 80),
                               [[90, 0, 100, 80], [1, 2, 3, 4]])


# --- align_folder end to end ------------------------------------------------------------------

W, H = 200, 100


def build(tmp_path):
    """Human and teacher folders. Matched pairs and their offsets (xmin/w, ymin/h, xmax/w, ymax/h):
    a: [10,20,30,60] -> [10,12,28,56]   (0,    -0.2, -0.1,  -0.1)  IoU 648/944 = 0.69
    b: [50,50,90,90] -> [46,38,92,94]   (-0.1, -0.3,  0.05,  0.1)  IoU 1600/2576 = 0.62
    c: [100,40,120,60] -> [100,38,122,58] (0,  -0.1,  0.1,  -0.1)  IoU 360/480 = 0.75
    median per column: (0, -0.2, 0.05, -0.1) (the means would be -0.033, -0.2, 0.017, -0.033).
    """
    human, teacher = tmp_path / "human", tmp_path / "teacher"
    human.mkdir(), teacher.mkdir()
    write_annotation(str(human / "a.json"), Annotation("img_a.jpg", W, H, 3, [[10, 20, 30, 60], [150, 10, 170, 30]]))
    write_annotation(str(teacher / "a.json"), Annotation("teacher_a.jpg", W, H, 3,
                                                         [[100, 50, 120, 70], [10, 12, 28, 56]]))  # extra face
    write_annotation(str(human / "b.json"), Annotation("img_b.png", W, H, 1, [[50, 50, 90, 90]], [[0, 0, 5, 5]]))
    write_annotation(str(teacher / "b.json"), Annotation("img_b.png", W, H, 3, [[46, 38, 92, 94]],
                                                         [[100, 0, 110, 10]]))
    write_annotation(str(human / "c.json"), Annotation("img_c.jpg", W, H, 3, [[100, 40, 120, 60]]))
    write_annotation(str(teacher / "c.json"), Annotation("img_c.jpg", W, H, 3, [[100, 38, 122, 58]]))
    write_annotation(str(human / "d.json"), Annotation("img_d.jpg", W, H, 3, [[0, 2, 20, 42]]))  # no teacher file
    write_annotation(str(teacher / "z.json"), Annotation("img_z.jpg", W, H, 3, [[1, 1, 9, 9]]))  # no human file
    (human / "notes.txt").write_text("not an annotation")
    return human, teacher, tmp_path / "out"


def test_align_folder_replaces_matched_and_moves_the_others(tmp_path):
    human, teacher, out = build(tmp_path)
    counts, median = ab.align_folder(str(human), str(teacher), str(out))
    assert counts == dict(annotations=4, boxes=5, replaced=3, moved=2, no_teacher_file=1, skipped=0)
    np.testing.assert_allclose(median, [0, -0.2, 0.05, -0.1], atol=1e-12)
    assert sorted(os.listdir(out)) == ["a.json", "b.json", "c.json", "d.json"]
    a, b, c, d = (read_annotation(str(out / f"{stem}.json")) for stem in "abcd")
    # Matched: exactly the teacher's box; the teacher's extra face is not added.
    np.testing.assert_array_equal(a.boxes[0], [10, 12, 28, 56])
    np.testing.assert_array_equal(b.boxes, [[46, 38, 92, 94]])
    np.testing.assert_array_equal(c.boxes, [[100, 38, 122, 58]])
    # Unmatched a[1] (20 x 20): [150 + 0, 10 - 4, 170 + 1, 30 - 2].
    assert a.boxes.shape == (2, 4)
    np.testing.assert_allclose(a.boxes[1], [150, 6, 171, 28], atol=1e-9)
    # d (20 x 40, no teacher file): [0 + 0, 2 - 8, 20 + 1, 42 - 4] = [0, -6, 21, 38], clipped.
    np.testing.assert_allclose(d.boxes, [[0, 0, 21, 38]], atol=1e-9)
    # Ignore regions: the human's own, unchanged (not the teacher's), none added elsewhere.
    np.testing.assert_array_equal(b.ignore_boxes, [[0, 0, 5, 5]])
    assert a.ignore_boxes.shape == c.ignore_boxes.shape == d.ignore_boxes.shape == (0, 4)
    # Image name and size are the human annotation's.
    assert [(x.filename, x.width, x.height, x.depth) for x in (a, b, c, d)] == [
        ("img_a.jpg", W, H, 3), ("img_b.png", W, H, 1), ("img_c.jpg", W, H, 3), ("img_d.jpg", W, H, 3)]
    # The inputs are left alone.
    np.testing.assert_array_equal(read_annotation(str(human / "a.json")).boxes, [[10, 20, 30, 60], [150, 10, 170, 30]])


def test_a_corrupt_annotation_is_skipped_and_the_run_goes_on(tmp_path, caplog):
    human, teacher, out = build(tmp_path)
    (human / "e.json").write_text("{not json")
    write_annotation(str(human / "f.json"), Annotation("img_f.jpg", W, H, 3, [[10, 10, 20, 20]]))
    (teacher / "f.json").write_text('{"filename": "img_f.jpg"}')  # a bad teacher file: skipped too
    counts, median = ab.align_folder(str(human), str(teacher), str(out))
    assert counts == dict(annotations=4, boxes=5, replaced=3, moved=2, no_teacher_file=1, skipped=2)
    np.testing.assert_allclose(median, [0, -0.2, 0.05, -0.1], atol=1e-12)
    assert sorted(os.listdir(out)) == ["a.json", "b.json", "c.json", "d.json"]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert len(skipped) == 2
    assert any("e.json" in m and "not valid JSON" in m for m in skipped)
    assert any("f.json" in m for m in skipped)


def test_align_folder_errors(tmp_path):
    human, teacher, out = build(tmp_path)
    with pytest.raises(ValueError, match=r"--annotations_dir .*nowhere: not a folder"):
        ab.align_folder(str(tmp_path / "nowhere"), str(teacher), str(out))
    with pytest.raises(ValueError, match=r"--teacher_dir .*nowhere: not a folder"):
        ab.align_folder(str(human), str(tmp_path / "nowhere"), str(out))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no .json annotation files"):
        ab.align_folder(str(empty), str(teacher), str(out))
    # min_iou 0.8: the best pair (c) has IoU 0.75 -> nothing to measure the offsets on.
    with pytest.raises(ValueError, match=r"has a teacher box with IoU >= 0.8.*nothing to measure"):
        ab.align_folder(str(human), str(teacher), str(out), min_iou=0.8)
    assert not out.exists()


# --- the CLI ----------------------------------------------------------------------------------

def run_cli(capsys, *args):
    code = ab.main([str(arg) for arg in args])
    return code, capsys.readouterr().err.strip().splitlines()


def test_cli_runs_with_min_iou(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="align_boxes")
    human, teacher, out = build(tmp_path)
    # --min_iou 0.7: only c (0.75) matches; its offsets (0, -0.1, 0.1, -0.1) move everything else.
    code = ab.main(["--annotations_dir", str(human), "--teacher_dir", str(teacher), "--output_dir", str(out),
                    "--min_iou", "0.7"])
    assert code == 0
    assert "annotations=4, boxes=5, replaced=1, moved=4, no_teacher_file=1, skipped=0" in caplog.text
    assert "+0.000, -0.100, +0.100, -0.100" in caplog.text  # the median offsets, printed
    assert capsys.readouterr().err == ""
    # a[0] 20 x 40: [10, 20 - 4, 30 + 2, 60 - 4].
    np.testing.assert_allclose(read_annotation(str(out / "a.json")).boxes[0], [10, 16, 32, 56], atol=1e-9)
    np.testing.assert_array_equal(read_annotation(str(out / "c.json")).boxes, [[100, 38, 122, 58]])


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    human, teacher, out = build(tmp_path)
    missing = tmp_path / "nowhere"
    assert run_cli(capsys, "--annotations_dir", missing, "--teacher_dir", teacher, "--output_dir", out) == (
        2, [f"error: --annotations_dir {missing}: not a folder"])
    assert run_cli(capsys, "--annotations_dir", human, "--teacher_dir", missing, "--output_dir", out) == (
        2, [f"error: --teacher_dir {missing}: not a folder"])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(capsys, "--annotations_dir", empty, "--teacher_dir", teacher, "--output_dir", out) == (
        2, [f"error: --annotations_dir {empty}: no .json annotation files"])
    far = tmp_path / "far"
    write_annotation(str(far / "a.json"), Annotation("img_a.jpg", W, H, 3, [[150, 60, 190, 95]]))
    assert run_cli(capsys, "--annotations_dir", human, "--teacher_dir", far, "--output_dir", out) == (
        2, [f"error: no human box of {human} has a teacher box with IoU >= 0.4 in {far}: "
            "nothing to measure the offsets on"])
    for value, shown in (("0", "0.0"), ("1.5", "1.5"), ("-0.2", "-0.2"), ("nan", "nan")):
        assert run_cli(capsys, "--annotations_dir", human, "--teacher_dir", teacher, "--output_dir", out,
                       "--min_iou", value) == (2, [f"error: --min_iou must be in (0, 1], got {shown}"])
    assert not out.exists()
    with pytest.raises(ValueError, match="not a folder"):  # --debug re-raises
        ab.main(["--annotations_dir", str(missing), "--teacher_dir", str(teacher), "--output_dir", str(out),
                 "--debug"])


def test_help_runs_as_a_script():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "prepare_data", "align_boxes.py"), "--help"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "--annotations_dir" in result.stdout and "--min_iou" in result.stdout
