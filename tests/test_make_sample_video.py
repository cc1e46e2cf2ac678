"""Tests for prepare_data/make_sample_video.py: the scene's events, its truth, frames and the mp4.

Box convention: pixels [x1, y1, x2, y2] (edges), as in the module under test.
"""
import json
import os

import cv2
import numpy as np
import pytest

from prepare_data import make_sample_video as msv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = (0, 1, 2, 3, 4)


def _listed(truth, face_id):
    """{frame: box array [4]} of one face id."""
    return {t: np.array(f["box"]) for t, frame in enumerate(truth["frames"])
            for f in frame if f["id"] == face_id}


def _iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module", params=SEEDS)
def scene_and_truth(request):
    scene = msv.make_scene(request.param)
    return scene, msv.ground_truth(scene)


def test_three_distinct_faces_with_consistent_summary(scene_and_truth):
    scene, truth = scene_and_truth
    assert truth["num_faces"] == 3
    assert len(truth["frames"]) == truth["num_frames"] == 175
    assert (truth["width"], truth["height"], truth["fps"]) == (640, 480, 25.0)
    ids = {f["id"] for frame in truth["frames"] for f in frame}
    assert ids == {1, 2, 3}
    for face in truth["faces"]:
        frames = sorted(_listed(truth, face["id"]))
        assert (face["first_frame"], face["last_frame"], face["frames_listed"]) == \
            (frames[0], frames[-1], len(frames))
    assert truth["background"] == "room"
    for frame, ignored in zip(truth["frames"], truth["ignored"]):
        assert len({f["id"] for f in frame + ignored}) == len(frame) + len(ignored)
        for f in frame + ignored:
            x1, y1, x2, y2 = f["box"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
        assert all(msv.MIN_VISIBILITY <= f["visibility"] <= 1.0 for f in frame)
        assert all(msv.MIN_IGNORED_VISIBILITY <= f["visibility"] < msv.MIN_VISIBILITY for f in ignored)


def test_faces_one_and_two_cross_with_one_passing_in_front(scene_and_truth):
    scene, truth = scene_and_truth
    boxes, present = msv.face_boxes(scene)
    one, two = _listed(truth, 1), _listed(truth, 2)
    both = sorted(set(one) & set(two))
    centre_x = {t: ((one[t][0] + one[t][2]) / 2, (two[t][0] + two[t][2]) / 2) for t in both}
    # Face 1 starts left of face 2 and ends right of it.
    assert centre_x[both[0]][0] < centre_x[both[0]][1]
    assert centre_x[both[-1]][0] > centre_x[both[-1]][1]
    assert max(_iou(one[t], two[t]) for t in both) > 0.03  # overlapping while both are listed
    assert max(_iou(boxes[t, 0], boxes[t, 1]) for t in range(len(boxes))) > 0.1
    # Face 2 is behind: on some frames it is inside the frame yet hidden (not listed), while
    # face 1 is listed on every frame from its first to its last.
    inside = np.all((boxes[:, 1, :2] >= 0) & (boxes[:, 1, 2:] <= [640, 480]), axis=1)
    hidden = [t for t in range(len(boxes)) if present[t, 1] and inside[t] and t not in two]
    assert len(hidden) >= 5
    # While hidden, face 2 is on the frame's ignored list (a detector may still see a part of it).
    assert sum(any(f["id"] == 2 for f in truth["ignored"][t]) for t in hidden) >= 2
    assert all(t in one for t in hidden)
    assert all(t in one for t in range(min(one), max(one) + 1))


def test_faces_leave_the_frame_and_the_third_arrives_later(scene_and_truth):
    scene, truth = scene_and_truth
    boxes, present = msv.face_boxes(scene)
    faces = {f["id"]: f for f in truth["faces"]}
    n = truth["num_frames"]
    for k, face_id in ((0, 1), (1, 2)):
        assert faces[face_id]["first_frame"] == 0
        assert faces[face_id]["last_frame"] < n - 10
        last = np.flatnonzero(present[:, k])[-1]
        x1, _, x2, _ = boxes[last, k]
        assert x1 >= 640 or x2 <= 0  # fully outside when it leaves the scene
    assert faces[1]["last_frame"] < n - 1 and faces[2]["last_frame"] < n - 1
    # Leaving through the edge, a face is ignored (partly visible) for a few frames before it is gone.
    for face_id in (1, 2):
        after = truth["ignored"][faces[face_id]["last_frame"] + 1]
        assert face_id in [f["id"] for f in after]
    assert faces[3]["first_frame"] > 0.3 * n
    assert faces[3]["last_frame"] == n - 1
    assert all(not any(f["id"] == 3 for f in frame) for frame in truth["frames"][:faces[3]["first_frame"]])


def test_face_sizes_in_range_and_motion_smooth(scene_and_truth):
    scene, truth = scene_and_truth
    boxes, present = msv.face_boxes(scene)
    heights = boxes[:, :, 3] - boxes[:, :, 1]
    assert heights[present].min() >= 70 and heights[present].max() <= 160
    for k in range(3):
        rows = np.flatnonzero(present[:, k])
        h = heights[rows, k]
        assert h.max() / h.min() > 1.1  # sizes change ...
        assert np.all(np.abs(np.diff(h)) / h[1:] < 0.02)  # ... slowly
        centres = (boxes[rows, k, :2] + boxes[rows, k, 2:]) / 2
        step = np.diff(centres, axis=0)
        assert np.abs(step).max() < 8.0
        assert np.abs(np.diff(step, axis=0)).max() < 0.5  # no jumps in velocity


def test_same_seed_same_truth_other_seed_other_truth():
    a = msv.ground_truth(msv.make_scene(7))
    assert a == msv.ground_truth(msv.make_scene(7))
    assert a != msv.ground_truth(msv.make_scene(8))


def test_committed_truth_matches_the_script():
    path = os.path.join(ROOT, "media", msv.TRUTH_NAME)
    with open(path) as f:
        committed = json.load(f)
    expected = msv.ground_truth(msv.make_scene(committed["seed"]))
    assert len(committed["frames"]) == len(expected["frames"])
    for got, want in zip(committed["frames"], expected["frames"]):
        assert [f["id"] for f in got] == [f["id"] for f in want]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g["box"], w["box"], atol=0.02)
    assert committed["faces"] == expected["faces"]
    assert [[f["id"] for f in frame] for frame in committed["ignored"]] == \
        [[f["id"] for f in frame] for frame in expected["ignored"]]
    assert os.path.getsize(os.path.join(ROOT, "media", msv.VIDEO_NAME)) <= 5 * 1024 * 1024


def test_frames_are_deterministic_and_the_faces_are_where_the_truth_says():
    frames, truth = msv.sample_video(seed=3, seconds=1.0, fps=8, size=(320, 240))
    assert frames.shape == (8, 240, 320, 3) and frames.dtype == np.uint8
    again, truth_again = msv.sample_video(seed=3, seconds=1.0, fps=8, size=(320, 240))
    np.testing.assert_array_equal(frames, again)
    assert truth == truth_again
    other, _ = msv.sample_video(seed=4, seconds=1.0, fps=8, size=(320, 240))
    assert np.abs(other.astype(int) - frames).mean() > 1.0
    # Frame 0 rendered without its faces differs from the real frame 0 inside the face boxes only.
    scene = msv.make_scene(3, 8, (320, 240), 8)
    boxes, present = msv.face_boxes(scene)
    from prepare_data import faces as face_lib
    empty = msv.render_frame(scene, 0, face_lib.load_face_sources(), msv.background_image(scene),
                             boxes, np.zeros_like(present))
    diff = np.abs(frames[0].astype(int) - empty).sum(axis=2)
    for f in truth["frames"][0]:
        x1, y1, x2, y2 = (int(round(v)) for v in f["box"])
        assert diff[y1:y2, x1:x2].mean() > 20
    assert diff[:5, :].mean() < 1.0 and diff[-5:, :].mean() < 1.0  # top and bottom rows: no face


def test_backgrounds():
    room = msv.draw_room(5, 68, 100)
    assert room.shape == (68, 100, 3) and room.dtype == np.uint8
    np.testing.assert_array_equal(room, msv.draw_room(5, 68, 100))
    assert np.abs(room.astype(int) - msv.draw_room(6, 68, 100)).mean() > 1.0
    with pytest.raises(ValueError, match="background 'beach'"):
        msv.make_scene(0, background="beach")
    frames_room, truth_room = msv.sample_video(seed=2, seconds=0.2, fps=10, size=(96, 72))
    frames_bike, truth_bike = msv.sample_video(seed=2, seconds=0.2, fps=10, size=(96, 72),
                                               background="motorcycle")
    assert truth_bike["background"] == "motorcycle"
    assert truth_bike["frames"] == truth_room["frames"]  # the background changes no box
    assert np.abs(frames_room.astype(int) - frames_bike).mean() > 10.0


def test_written_mp4_is_readable_with_the_right_frames(tmp_path):
    video_path, truth_path, truth = msv.write_sample_video(str(tmp_path), seed=1, seconds=1.2, fps=10,
                                                           size=(320, 240))
    assert sorted(os.listdir(tmp_path)) == sorted([msv.VIDEO_NAME, msv.TRUTH_NAME])  # no temp files left
    with open(truth_path) as f:
        assert json.load(f) == truth
    capture = cv2.VideoCapture(video_path)
    assert capture.isOpened()
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    capture.release()
    assert len(decoded) == truth["num_frames"] == 12
    assert decoded[0].shape == (240, 320, 3)
    frames, _ = msv.sample_video(seed=1, seconds=1.2, fps=10, size=(320, 240))
    rgb = cv2.cvtColor(decoded[5], cv2.COLOR_BGR2RGB).astype(int)
    error = np.abs(rgb - frames[5]).mean()
    swapped = np.abs(rgb[:, :, ::-1] - frames[5]).mean()
    assert error < 6.0 and swapped > error + 3.0  # compression noise only, channels in RGB order


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert msv.main(["--output_dir", str(tmp_path), "--size", "640by480"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "expected WIDTHxHEIGHT" in err
    assert msv.main(["--output_dir", str(tmp_path), "--seconds", "0.01"]) == 2
    assert os.listdir(tmp_path) == []
