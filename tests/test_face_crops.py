"""Tests for src/tracking/face_crops.py and the crop-writing parts of src/video_io.py.

Boxes are pixel [x1, y1, x2, y2]; images uint8 BGR [H, W, 3].
"""
import os

import cv2
import numpy as np
import pytest

import start
from src import video_io
from src.tracking.face_crops import BestFaceKeeper, expand_box, face_quality, laplacian_variance


def _checkerboard(size, cell=1, low=0, high=1):
    yy, xx = np.mgrid[0:size, 0:size]
    return np.where(((yy // cell) + (xx // cell)) % 2 == 0, high, low).astype(np.float64)


def test_laplacian_variance_exact_values():
    assert laplacian_variance(np.full((10, 10), 7.0)) == 0.0
    # 1-pixel checkerboard of 0/1: the interior Laplacian is -4 on ones, +4 on zeros,
    # half each over a 4x4 interior -> mean 0, variance 16.
    assert laplacian_variance(_checkerboard(6)) == pytest.approx(16.0)
    # A linear ramp has zero Laplacian.
    assert laplacian_variance(np.tile(np.arange(20.0), (20, 1))) == pytest.approx(0.0)
    assert laplacian_variance(np.zeros((2, 5))) == 0.0
    # A grey BGR image gives the same as its single channel.
    grey = _checkerboard(8, cell=2, low=10, high=200)
    assert laplacian_variance(np.repeat(grey[..., None], 3, axis=2)) == pytest.approx(laplacian_variance(grey))
    with pytest.raises(ValueError, match="shape"):
        laplacian_variance(np.zeros((4, 4, 2)))


def test_sharp_face_beats_blurred_one():
    sharp = (_checkerboard(64, cell=4, low=40, high=220)).astype(np.uint8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    assert laplacian_variance(sharp) > 5 * laplacian_variance(blurred)


def test_face_quality_factors():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :, :] = (_checkerboard(100, cell=2, high=255)[..., None]).astype(np.uint8)
    box = (10, 10, 50, 50)
    q = face_quality(frame, box, 0.8)
    assert q > 0
    assert face_quality(frame, box, 0.4) == pytest.approx(q / 2)  # linear in score
    # Size enters as sqrt(area): a 4x area box with the same texture doubles the quality.
    assert face_quality(frame, (10, 10, 90, 90), 0.8) == pytest.approx(2 * q, rel=0.05)
    assert face_quality(np.zeros((100, 100, 3), np.uint8), box, 0.9) == 0.0  # flat
    assert face_quality(frame, (200, 200, 250, 250), 0.9) == 0.0  # outside the frame


def test_expand_box_pixels_fraction_and_clamping():
    shape = (100, 200, 3)  # H, W
    assert expand_box((50, 40, 70, 60), 10, shape) == (40, 30, 80, 70)
    assert expand_box((50, 40, 70, 60), 0.5, shape) == (40, 30, 80, 70)  # 0.5 * 20 px
    assert expand_box((50.4, 40.6, 69.2, 59.9), 0, shape) == (50, 40, 70, 60)  # floor/ceil
    # Clamped at every border.
    assert expand_box((2, 3, 30, 40), 20, shape) == (0, 0, 50, 60)
    assert expand_box((180, 80, 199, 99), 20, shape) == (160, 60, 200, 100)
    # Entirely outside: an empty box.
    x1, y1, x2, y2 = expand_box((300, 300, 320, 320), 5, shape)
    assert x1 == x2 or y1 == y2
    with pytest.raises(ValueError, match="margin"):
        expand_box((0, 0, 1, 1), -1, shape)


def _textured_frame(contrast, seed=0):
    rng = np.random.default_rng(seed)
    frame = np.full((120, 160, 3), 128, np.uint8)
    patch = rng.integers(-contrast, contrast + 1, (40, 40, 1))
    frame[40:80, 60:100] = np.clip(128 + patch, 0, 255).astype(np.uint8)
    return frame


def test_keeper_keeps_top_k_by_quality_best_first():
    keeper = BestFaceKeeper(top_k=2, margin=0, min_track_length=1)
    box = (60, 40, 100, 80)
    contrasts = [10, 60, 30, 50, 20]  # sharpness rises with contrast
    for frame_index, c in enumerate(contrasts):
        keeper.add(7, frame_index, _textured_frame(c, seed=frame_index), box, 0.9)
    (faces,) = keeper.finish([7])
    assert faces.track_id == 7 and faces.num_detections == 5
    assert [frame for _, frame, _ in faces.faces] == [1, 3]  # contrasts 60, then 50
    assert faces.faces[0][0] > faces.faces[1][0]
    assert faces.faces[0][2].shape == (40, 40, 3)
    np.testing.assert_array_equal(faces.faces[0][2], _textured_frame(60, seed=1)[40:80, 60:100])
    assert keeper.finish([7]) == []  # already finished


def test_keeper_crop_margin_clamped_and_copied():
    keeper = BestFaceKeeper(top_k=1, margin=0.5, min_track_length=0)
    frame = _textured_frame(40)
    keeper.add(1, 0, frame, (0, 10, 40, 50), 0.9)  # margin 20 px, clamped at x = 0
    frame[:] = 0  # the caller reuses its frame buffer
    (faces,) = keeper.finish_all()
    crop = faces.faces[0][2]
    assert crop.shape == (70, 60, 3)  # x -20..60 -> 0..60, y -10..70 -> 0..70
    assert crop.any()


def test_keeper_min_track_length_filter():
    keeper = BestFaceKeeper(top_k=3, margin=0, min_track_length=3)
    frame = _textured_frame(40)
    for t in range(3):
        keeper.add(1, t, frame, (60, 40, 100, 80), 0.9)
    for t in range(2):
        keeper.add(2, t, frame, (60, 40, 100, 80), 0.9)
    kept = keeper.finish_all()
    assert [f.track_id for f in kept] == [1] and len(kept[0].faces) == 3
    with pytest.raises(ValueError, match="top_k"):
        BestFaceKeeper(top_k=0, margin=0, min_track_length=1)


def test_run_dir_never_reuses_a_folder_and_crops_are_atomic(tmp_path):
    root = tmp_path / "facepics"
    first = video_io.create_run_dir(str(root), "clip")
    (root / "clip" / "track_1_1.jpg").write_bytes(b"earlier result")
    second = video_io.create_run_dir(str(root), "clip")
    third = video_io.create_run_dir(str(root), "clip")
    assert os.path.basename(first) == "clip"
    assert os.path.basename(second) == "clip__run2" and os.path.basename(third) == "clip__run3"
    assert (root / "clip" / "track_1_1.jpg").read_bytes() == b"earlier result"

    keeper = BestFaceKeeper(top_k=2, margin=5, min_track_length=1)
    for t in range(3):
        keeper.add(4, t, _textured_frame(20 + 10 * t), (60, 40, 100, 80), 0.9)
    written = start.save_track_faces(second, keeper.finish_all())
    assert written == 2
    assert sorted(os.listdir(second)) == ["track_4_1.jpg", "track_4_2.jpg"]  # no temp files left
    image = cv2.imread(os.path.join(second, "track_4_1.jpg"))
    assert image.shape == (50, 50, 3)
    mode = os.stat(os.path.join(second, "track_4_1.jpg")).st_mode & 0o777
    assert mode & 0o044 == 0o044 & ~_umask()  # normal permissions, not owner-only


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current
