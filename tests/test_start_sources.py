"""start.py's sources: files, folder trees, cameras (a fake capture) and streams (MJPEG over loopback HTTP).

The detector is a test double answering like FaceDetector (pixel [ymin, xmin, ymax, xmax]).
"""
import http.server
import json
import logging
import os
import socketserver
import threading

import cv2
import numpy as np
import pytest

import start
from src import video_io, video_sources
from src.cli import UserError
from src.tracking.synthetic import GroundTruthDetector, make_scenario, simulate_detections, write_video

WIDTH, HEIGHT, FRAMES = 160, 120, 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 160x120, 12-frame synthetic video file, its decoded frames and simulated detections."""
    folder = tmp_path_factory.mktemp("clip")
    scenario = make_scenario("crossing", WIDTH, HEIGHT, FRAMES)
    path = str(folder / "clip.mp4")
    gt = write_video(scenario, path)
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == FRAMES
    return {"path": path, "frames": frames, "dets": simulate_detections(gt, 0, WIDTH, HEIGHT)}


def _double(clip):
    return lambda model: GroundTruthDetector(clip["dets"])


def _summary(folder, stem):
    return json.loads((folder / f"{stem}_summary.json").read_text())


def test_classifies_sources_and_keeps_output_names_unique(tmp_path, clip):
    tree = tmp_path / "tree"
    for sub in ("a", "b", "b/deeper"):
        (tree / sub).mkdir(parents=True)
    for name in ("a/clip.mp4", "b/clip.mp4", "b/deeper/x.MOV", "top.mp4", "top.avi"):
        os.symlink(clip["path"], tree / name)
    (tree / "notes.json").write_text("{}")
    sources, ignored = video_sources.resolve_sources(
        [str(tree), "0", "rtsp://user:secret@cam.local:554/live/1", clip["path"], "0"], recursive=True)
    assert [(s.kind, s.name) for s in sources] == [
        ("file", "top_avi"), ("file", "top_mp4"), ("file", "a/clip"), ("file", "b/clip"), ("file", "b/deeper/x"),
        ("camera", "camera0"), ("stream", "cam.local_554_live_1"), ("file", "clip"), ("camera", "camera0_2")]
    assert ignored == 1
    assert str(sources[6]) == "rtsp://user:***@cam.local:554/live/1"  # no password in logs and summaries
    assert sources[5].target == 0 and sources[5].live and not sources[0].live
    flat, _ = video_sources.resolve_sources([str(tree)])
    assert [s.name for s in flat] == ["top_avi", "top_mp4"]
    with pytest.raises(UserError, match="a camera index must be >= 0"):
        video_sources.resolve_sources(["-1"])


def test_a_file_and_a_folder_tree_in_one_run(tmp_path, clip, caplog, capsys):
    caplog.set_level(logging.INFO)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    os.symlink(clip["path"], tree / "sub" / "clip.mp4")
    os.symlink(clip["path"], tree / "clip.mp4")
    out = tmp_path / "out"
    rc = start.main([clip["path"], str(tree), "--recursive", "--output_path", str(out), "--no_progress",
                     "--min_track_length", "2"], detector_factory=_double(clip))
    assert rc == 0
    # The same stem three times: the file's is 'clip', the tree's mirror their folders.
    assert sorted(os.listdir(out)) == ["clip", "clip_2", "sub"]
    assert os.listdir(out / "sub") == ["clip"]
    for folder in (out / "clip", out / "clip_2", out / "sub" / "clip"):
        summary = _summary(folder, folder.name)
        assert summary["frames"] == FRAMES and summary["complete"] and summary["stopped"] == "end"
        assert summary["source_kind"] == "file"
    assert _summary(out / "clip", "clip")["faces_saved"] > 0  # (the double replays one video's detections)
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().startswith("video ")] == [
        "video 1 of 3", "video 2 of 3", "video 3 of 3"]
    assert capsys.readouterr().out.startswith(f"total: 3 of 3 videos processed (0 skipped, 0 non-video files "
                                              f"ignored): {3 * FRAMES} frames")


class FakeCamera:
    """cv2.VideoCapture's interface over a list of frames; `read` fails after them (unplugged)."""

    def __init__(self, frames, opened=True):
        self.frames, self.opened, self.position = list(frames), opened, 0

    def isOpened(self):
        return self.opened

    def read(self):
        if self.position >= len(self.frames):
            return False, None
        self.position += 1
        return True, self.frames[self.position - 1].copy()

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: -1.0}.get(prop, 0.0)

    def release(self):
        pass


def _fake_cameras(monkeypatch, frames, opened=True):
    opened_targets = []

    def open_capture(target):
        opened_targets.append(target)
        return FakeCamera(frames if isinstance(target, int) else [], opened)

    monkeypatch.setattr(video_io, "open_capture", open_capture)
    return opened_targets


def test_a_camera_that_is_unplugged_writes_complete_results(tmp_path, clip, monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    targets = _fake_cameras(monkeypatch, clip["frames"])
    out = tmp_path / "out"
    rc = start.main(["0", "--output_path", str(out), "--no_progress", "--min_track_length", "2"],
                    detector_factory=_double(clip))
    assert rc == 0 and targets == [0, 0]  # checked before the model loads, then read
    summary = _summary(out / "camera0", "camera0")
    assert summary["video"] == "camera 0" and summary["source_kind"] == "camera"
    assert summary["frames"] + summary["frames_dropped"] == FRAMES
    assert summary["complete"] is True and summary["stopped"] == "lost" and summary["faces_saved"] > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"camera 0: no frame after frame {FRAMES}; ending it there"]


def test_a_missing_camera_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys):
    _fake_cameras(monkeypatch, [], opened=False)
    loaded = []
    rc = start.main(["3", "--output_path", str(tmp_path / "out")], detector_factory=loaded.append)
    assert rc == 2 and loaded == []
    assert capsys.readouterr().err == "error: camera 3: cannot be opened: no such camera, or it is in use\n"
    assert not (tmp_path / "out").exists()


class _SlowDetector(GroundTruthDetector):
    """Takes 3 ms a call, like a real detector slower than the camera; Ctrl-C on call `stop_at`."""

    def __init__(self, dets, stop_at=None):
        super().__init__(dets)
        self.stop_at = stop_at
        self.wait = threading.Event()

    def __call__(self, image, score_threshold=0.5):
        if self.calls + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.wait.wait(0.003)
        return super().__call__(image, score_threshold)


def test_ctrl_c_ends_the_last_live_source_normally(tmp_path, clip, monkeypatch, capsys):
    _fake_cameras(monkeypatch, clip["frames"] * 20)
    out = tmp_path / "out"
    double = _SlowDetector(clip["dets"], stop_at=6)
    rc = start.main(["0", "--output_path", str(out), "--no_progress"], detector_factory=lambda model: double)
    assert rc == 0
    summary = _summary(out / "camera0", "camera0")
    assert summary["stopped"] == "ctrl-c" and summary["complete"] is True and summary["frames"] == 5
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("total: 1 of 1 videos processed")

    # Before another source, Ctrl-C stops the run: one line, 130, the camera's results kept.
    double = _SlowDetector(clip["dets"], stop_at=6)
    rc = start.main(["0", clip["path"], "--output_path", str(out), "--no_progress"],
                    detector_factory=lambda model: double)
    assert rc == 130
    assert capsys.readouterr().err == (f"error: interrupted: camera 0: results for 5 frames in "
                                       f"{out / 'camera0__run2'}; 0 earlier source(s) complete, 1 not started\n")
    assert _summary(out / "camera0__run2", "camera0")["frames"] == 5 and not (out / "clip").exists()


def test_a_slow_detector_drops_camera_frames_instead_of_lagging(tmp_path, clip, monkeypatch):
    _fake_cameras(monkeypatch, clip["frames"] * 10)
    out = tmp_path / "out"
    rc = start.main(["0", "--output_path", str(out), "--no_progress"],
                    detector_factory=lambda model: _SlowDetector(clip["dets"]))
    assert rc == 0
    summary = _summary(out / "camera0", "camera0")
    assert summary["frames_dropped"] > 0 and summary["frames"] + summary["frames_dropped"] == 10 * FRAMES
    rc = start.main(["0", "--output_path", str(out), "--no_progress", "--max_frames", "7"],
                    detector_factory=_double(clip))
    summary = _summary(out / "camera0__run2", "camera0")
    assert rc == 0 and summary["stopped"] == "max_frames" and summary["frames"] <= 7


class _MjpegHandler(http.server.BaseHTTPRequestHandler):
    """Serves the server's `jpegs` as one MJPEG stream per request, then closes (a dropped stream)."""

    def do_GET(self):
        self.server.connections += 1
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for jpeg in self.server.jpegs:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (start.py's check before the model loads)

    def log_message(self, *args):
        pass


@pytest.fixture
def mjpeg_server(clip):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MjpegHandler)
    server.daemon_threads = True
    server.jpegs = [cv2.imencode(".jpg", frame)[1].tobytes() for frame in clip["frames"]]
    server.connections = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_stream_that_drops_is_reopened_a_bounded_number_of_times(tmp_path, clip, mjpeg_server, caplog):
    caplog.set_level(logging.WARNING)
    url = f"http://127.0.0.1:{mjpeg_server.server_address[1]}/live/video.mjpg"
    out = tmp_path / "out"
    rc = start.main([url, "--output_path", str(out), "--no_progress", "--reconnects", "2",
                     "--reconnect_delay", "0", "--min_track_length", "2"], detector_factory=_double(clip))
    assert rc == 0
    name = f"127.0.0.1_{mjpeg_server.server_address[1]}_live_video.mjpg"
    summary = _summary(out / name, name)
    assert summary["source_kind"] == "stream" and summary["reconnections"] == 2 and summary["stopped"] == "lost"
    assert summary["frames"] + summary["frames_dropped"] == 3 * FRAMES and summary["complete"] is True
    assert mjpeg_server.connections == 4  # the check, the first connection and two reconnections
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"{url}: no frame after frame {FRAMES}; reconnecting (1 of 2)",
                        f"{url}: no frame after frame {2 * FRAMES}; reconnecting (2 of 2)",
                        f"{url}: no frame after frame {3 * FRAMES} and 2 reconnection(s); ending it there"]
    assert summary["faces_saved"] > 0 and np.isfinite(summary["seconds"])
