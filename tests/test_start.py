"""End-to-end tests of start.py with a test-double detector on generated videos.

The double replays simulated detections of the synthetic video's ground truth, answering
like FaceDetector (pixel [ymin, xmin, ymax, xmax]); tracks are pixel [x1, y1, x2, y2].
"""
import json
import logging
import os

import cv2
import numpy as np
import pytest

import start
from src import video_io
from src.tracking.synthetic import (GroundTruthDetector, make_scenario, mot_metrics,
                                    simulate_detections, write_video)

WIDTH, HEIGHT, FRAMES = 320, 240, 48


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 320x240, 48-frame synthetic video with all scenario events; its gt and detections."""
    folder = tmp_path_factory.mktemp("media")
    scenario = make_scenario("all", WIDTH, HEIGHT, FRAMES)
    path = str(folder / "people.mp4")
    gt = write_video(scenario, path)
    dets = simulate_detections(gt, 3, WIDTH, HEIGHT, jitter=0.02, miss_rate=0.1, low_score_rate=0.1)
    return {"path": path, "gt": gt, "dets": dets}


def _video_dir(tmp_path, clip):
    folder = tmp_path / "videos"
    folder.mkdir()
    os.symlink(clip["path"], folder / "people.mp4")
    return folder


def _read_mot(path):
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape[1] == 10
    return rows


def _mot_to_frames(rows, num_frames):
    frames = []
    for t in range(1, num_frames + 1):
        r = rows[rows[:, 0] == t]
        frames.append(np.c_[r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5], r[:, 1]])
    return frames


def test_detections_to_tracker_input_converts_order():
    boxes = np.array([[10, 20, 30, 60], [1, 2, 3, 4]], np.float32)  # ymin, xmin, ymax, xmax
    out = start.detections_to_tracker_input(boxes, np.array([0.9, 0.5], np.float32))
    np.testing.assert_allclose(out, [[20, 10, 60, 30, 0.9], [2, 1, 4, 3, 0.5]], rtol=1e-6)
    assert start.detections_to_tracker_input(np.zeros((0, 4)), np.zeros(0)).shape == (0, 5)
    assert start.detections_to_tracker_input([], []).shape == (0, 5)
    with pytest.raises(ValueError, match="scores"):
        start.detections_to_tracker_input(np.zeros((2, 4)), np.zeros(3))


def test_end_to_end_byte_with_video(tmp_path, clip):
    videos = _video_dir(tmp_path, clip)
    out = tmp_path / "facepics"
    double = GroundTruthDetector(clip["dets"])
    rc = start.main([str(videos), "--output_path", str(out), "--tracker", "byte", "--save_video",
                     "--min_track_length", "8", "--top_k", "2", "--margin", "0.2", "--no_progress"],
                    detector_factory=lambda model: double)
    assert rc == 0
    folder = out / "people"
    assert double.calls == FRAMES and double.shapes[0] == (HEIGHT, WIDTH, 3)
    assert double.thresholds[0] == pytest.approx(start.DEFAULT_LOW_SCORE_THRESHOLD)  # byte asks for low scores too

    rows = _read_mot(folder / "people_tracks.txt")
    assert rows[:, 0].min() >= 1 and rows[:, 0].max() <= FRAMES
    assert (rows[:, 7:] == -1).all()
    metrics = mot_metrics(clip["gt"], _mot_to_frames(rows, FRAMES))
    assert metrics["mota"] >= 0.7 and metrics["idf1"] >= 0.8 and metrics["num_switches"] <= 1, metrics

    summary = json.loads((folder / "people_summary.json").read_text())
    assert summary["frames"] == FRAMES and summary["detector_calls"] == FRAMES
    assert summary["tracks"] == len(np.unique(rows[:, 1]))
    assert summary["processing_fps"] > 0 and summary["complete"] is True

    crops = sorted(p for p in os.listdir(folder) if p.endswith(".jpg"))
    assert len(crops) == summary["faces_saved"] > 0
    assert summary["faces_saved"] <= 2 * summary["tracks_saved"]
    for name in crops:
        track_id, rank = name[len("track_"):-len(".jpg")].split("_")
        assert int(rank) in (1, 2) and int(track_id) >= 1
        assert cv2.imread(str(folder / name)) is not None

    cap = cv2.VideoCapture(str(folder / "people_annotated.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == FRAMES
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == WIDTH and int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == HEIGHT
    cap.release()
    assert not any(name.startswith(".") for name in os.listdir(folder))  # no temp files left
    assert sorted(os.listdir(videos)) == ["people.mp4"]  # nothing written into the input folder

    # A second run never overwrites the first.
    before = sorted(os.listdir(folder))
    rc = start.main([str(videos), "--output_path", str(out), "--no_progress", "--max_frames", "5"],
                    detector_factory=lambda model: GroundTruthDetector(clip["dets"]))
    assert rc == 0 and sorted(os.listdir(folder)) == before
    summary2 = json.loads((out / "people__run2" / "people_summary.json").read_text())
    assert summary2["frames"] == 5


def test_detect_every_and_scale(tmp_path, clip):
    videos = _video_dir(tmp_path, clip)
    double = GroundTruthDetector(clip["dets"], detect_every=3, frame_width=WIDTH)
    rc = start.main([str(videos), "--output_path", str(tmp_path / "out"), "--detect_every", "3",
                     "--scale", "0.5", "--tracker", "sort", "--score_threshold", "0.5", "--no_progress"],
                    detector_factory=lambda model: double)
    assert rc == 0
    assert double.calls == FRAMES // 3 and double.shapes[0] == (HEIGHT // 2, WIDTH // 2, 3)
    assert double.thresholds == [0.5] * double.calls
    rows = _read_mot(tmp_path / "out" / "people" / "people_tracks.txt")
    predicted = rows[(rows[:, 0] - 1) % 3 != 0]
    assert len(predicted) > 0 and (predicted[:, 6] == -1).all()  # Kalman-only frames
    assert (rows[(rows[:, 0] - 1) % 3 == 0][:, 6] >= 0.5).all()
    # The double answers in the coordinates of the half-size image it gets; start.py must
    # scale boxes back, or every track box would be half the ground truth (IoU 0.25).
    metrics = mot_metrics(clip["gt"], _mot_to_frames(rows, FRAMES))
    assert metrics["num_false_positives"] <= 2 and metrics["mota"] >= 0.3, metrics


def _write_zero_frame_avi(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    writer.release()


def test_bad_inputs(tmp_path, clip, caplog, capsys):
    caplog.set_level(logging.WARNING)
    factory = lambda model: GroundTruthDetector(clip["dets"])  # noqa: E731
    empty = tmp_path / "empty"
    empty.mkdir()
    assert start.main([str(empty), "--output_path", str(tmp_path / "o1")], detector_factory=factory) == 2
    assert capsys.readouterr().err == (f"error: {empty}: no video file in it (--recursive also looks in "
                                       "subfolders); extensions: .mp4 .avi .mov .mkv .m4v .mpg .mpeg .wmv .webm .flv\n")
    assert start.main([str(tmp_path / "missing")], detector_factory=factory) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: no such file or folder\n"
    assert start.main([str(tmp_path / "nope" / "x.mp4")], detector_factory=factory) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope' / 'x.mp4'}: no such folder: {tmp_path / 'nope'}\n"

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mp4").write_text("this is not a video\n")
    _write_zero_frame_avi(bad / "zero.avi")
    caplog.clear()
    assert start.main([str(bad), "--output_path", str(tmp_path / "o2"), "--no_progress"],
                      detector_factory=factory) == 2
    assert "x.mp4: cannot be opened as a video; skipped" in caplog.text
    assert "zero.avi" in caplog.text and "skipped" in caplog.text
    assert capsys.readouterr().err.endswith("error: none of the 2 videos could be processed (the warnings above say why)\n")
    assert not (tmp_path / "o2").exists()

    os.symlink(clip["path"], bad / "good.mp4")
    (bad / "notes.txt").write_text("hello")
    caplog.clear()
    assert start.main([str(bad), "--output_path", str(tmp_path / "o3"), "--no_progress",
                       "--max_frames", "10"], detector_factory=factory) == 0
    assert os.listdir(tmp_path / "o3") == ["good"]
    assert "notes.txt" not in caplog.text  # not a video: ignored, counted in the total line
    assert capsys.readouterr().out.startswith("total: 1 of 3 videos processed (2 skipped, 1 non-video files ignored)")


def test_annotated_video_never_goes_into_the_input_folder(tmp_path, clip, capsys):
    videos = _video_dir(tmp_path, clip)
    rc = start.main([str(videos), "--output_path", str(videos), "--save_video"],
                    detector_factory=lambda model: GroundTruthDetector(clip["dets"]))
    assert rc == 2 and "must not be inside the input folder" in capsys.readouterr().err
    assert os.listdir(videos) == ["people.mp4"]


def test_missing_model_is_a_one_line_error(tmp_path, clip, capsys):
    videos = _video_dir(tmp_path, clip)
    rc = start.main([str(videos), "--model", str(tmp_path / "nope.pb"), "--output_path", str(tmp_path / "o")])
    assert rc == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.pb'}: model file not found (pass --model PATH to a frozen .pb)\n"
    rc = start.main([str(videos), "--model", str(tmp_path), "--output_path", str(tmp_path / "o")])
    assert rc == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: is a folder, not a frozen graph (.pb) file (pass --model PATH)\n"
    assert not (tmp_path / "o").exists()


def test_display_without_screen_is_a_warning(tmp_path, clip, caplog, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    videos = _video_dir(tmp_path, clip)
    rc = start.main([str(videos), "--display", "--max_frames", "3", "--no_progress",
                     "--output_path", str(tmp_path / "o")],
                    detector_factory=lambda model: GroundTruthDetector(clip["dets"]))
    assert rc == 0 and "--display ignored" in caplog.text


@pytest.mark.parametrize("flag", [["--detect_every", "0"], ["--top_k", "0"], ["--scale", "-1"],
                                  ["--tracker", "kcf"], ["--margin", "-2"]])
def test_bad_flags_are_one_line(flag, capsys):
    assert start.main(["media", *flag]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and flag[0] in err


def test_frame_reader_reads_all_frames_and_stops_early(clip):
    with video_io.FrameReader(clip["path"]) as reader:
        assert (reader.width, reader.height) == (WIDTH, HEIGHT)
        indices = [i for i, _ in reader]
    assert indices == list(range(FRAMES))
    reader = video_io.FrameReader(clip["path"], max_frames=4)
    for i, frame in reader:
        if i == 1:
            break
    reader.close()  # a half-read reader closes without hanging
    assert frame.shape == (HEIGHT, WIDTH, 3)


def test_detector_gets_rgb_frames(tmp_path):
    folder = tmp_path / "blue"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "blue.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), (255, 0, 0), np.uint8))  # pure blue in BGR
    writer.release()
    seen = []

    def detector(image, score_threshold=0.5):
        seen.append(image.mean(axis=(0, 1)))
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)

    assert start.main([str(folder), "--output_path", str(tmp_path / "o"), "--no_progress"],
                      detector_factory=lambda model: detector) == 0
    red, green, blue = seen[0]
    assert len(seen) == 3 and blue > 200 and red < 50 and green < 50


class _InterruptingDetector(GroundTruthDetector):
    """Raises KeyboardInterrupt (as Ctrl-C would) on call number `at` (1-based)."""

    def __init__(self, det_frames, at):
        super().__init__(det_frames)
        self.at = at

    def __call__(self, image, score_threshold=0.5):
        if self.calls + 1 == self.at:
            raise KeyboardInterrupt
        return super().__call__(image, score_threshold)


def test_ctrl_c_writes_partial_results_and_one_line(tmp_path, clip, capsys):
    videos = _video_dir(tmp_path, clip)
    out = tmp_path / "facepics"
    double = _InterruptingDetector(clip["dets"], at=31)
    rc = start.main([str(videos), "--output_path", str(out), "--save_video", "--min_track_length", "5",
                     "--no_progress"], detector_factory=lambda model: double)
    assert rc == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: interrupted: {videos / 'people.mp4'}: partial results (\"complete\": false) for 30 frames")
    folder = out / "people"
    summary = json.loads((folder / "people_summary.json").read_text())
    assert summary["complete"] is False and summary["frames"] == 30 and summary["frames_expected"] == FRAMES
    rows = _read_mot(folder / "people_tracks.txt")
    assert rows[:, 0].max() <= 30
    assert summary["faces_saved"] == len([p for p in os.listdir(folder) if p.endswith(".jpg")]) > 0
    # The annotated video is not left half-written, under its name or a temporary one.
    assert sorted(p for p in os.listdir(folder) if not p.endswith(".jpg")) == ["people_summary.json", "people_tracks.txt"]


def test_truncated_video_is_reported_as_incomplete(tmp_path, caplog):
    folder = tmp_path / "videos"
    folder.mkdir()
    path = str(folder / "cut.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(40):
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    data = open(path, "rb").read()
    with open(path, "wb") as f:  # cut the file in the middle: the header still says 40 frames
        f.write(data[:len(data) // 2])
    expected = int(cv2.VideoCapture(path).get(cv2.CAP_PROP_FRAME_COUNT))
    assert expected == 40
    caplog.set_level(logging.WARNING)
    rc = start.main([str(folder), "--output_path", str(tmp_path / "out"), "--no_progress"],
                    detector_factory=lambda model: GroundTruthDetector([]))
    assert rc == 0
    summary = json.loads((tmp_path / "out" / "cut" / "cut_summary.json").read_text())
    assert summary["complete"] is False and 0 < summary["frames"] < 40 and summary["frames_expected"] == 40
    assert f"{path}: the video ended early: {summary['frames']} of the 40 frames" in caplog.text


def test_unwritable_output_path_is_one_line(tmp_path, clip, capsys):
    videos = _video_dir(tmp_path, clip)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    rc = start.main([str(videos), "--output_path", str(blocker / "out"), "--no_progress"],
                    detector_factory=lambda model: GroundTruthDetector(clip["dets"]))
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: {blocker / 'out'}: cannot be created: {blocker} is a file, not a folder (--output_path)"]
    rc = start.main([str(videos), "--output_path", str(blocker), "--no_progress"],
                    detector_factory=lambda model: GroundTruthDetector(clip["dets"]))
    assert rc == 2
    assert capsys.readouterr().err == f"error: {blocker}: exists and is not a folder (--output_path)\n"


def test_cli_defaults_come_from_video_options():
    args = start.parse_args([])
    defaults = start.VideoOptions()
    for field in ("detect_every", "score_threshold", "low_score_threshold", "margin", "scale", "min_hits",
                  "max_age", "min_track_length", "top_k", "tracker", "max_frames"):
        assert getattr(args, field) == getattr(defaults, field), field
    assert args.precision == "auto"


def test_the_video_writer_encodes_on_a_thread_and_raises_its_errors(tmp_path, monkeypatch):
    frame = np.zeros((48, 64, 3), np.uint8)
    path = str(tmp_path / "ok.mp4")
    writer = video_io.AtomicVideoWriter(path, 10, 64, 48)
    for value in range(12):
        frame[:] = value * 20
        writer.write(frame.copy())
    assert not os.path.exists(path)  # written under a temporary name until close()
    writer.close()
    assert writer.frames_written == 12 and os.listdir(tmp_path) == ["ok.mp4"]
    capture = cv2.VideoCapture(path)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()

    # An encoding error surfaces in the caller's thread (here at close()), and no file is left.
    class BrokenEncoder:
        def write(self, frame):
            raise cv2.error("broken encoder")

        def release(self):
            pass

    failing = video_io.AtomicVideoWriter(str(tmp_path / "bad.mp4"), 10, 64, 48)
    failing._writer.release()
    failing._writer = BrokenEncoder()
    failing.write(frame)
    with pytest.raises(OSError, match=r"bad\.mp4: encoding a frame failed: .*broken encoder"):
        failing.close()
    # abort() after an exception drops the partial file.
    dropped = video_io.AtomicVideoWriter(str(tmp_path / "dropped.mp4"), 10, 64, 48)
    dropped.write(frame)
    dropped.abort()
    assert os.listdir(tmp_path) == ["ok.mp4"]
