"""--display: a window shows start.py's annotated frames, with the headless OpenCV too (Tk).

Runs under a virtual screen: Xvfb (Debian's `xvfb` package), started here on a free display
number; the tests skip where Xvfb is not installed. The screenshot is taken with Pillow's
ImageGrab from that X display. Without any screen, src.display opens nothing (and start.py says
so: tests/test_start.py).
"""
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

import start
from src import display
from src.tracking.synthetic import GroundTruthDetector
from tests.test_start import _video_dir, clip  # noqa: F401  (the module's synthetic video fixture)

GREEN = (0, 255, 0)  # BGR; track id 0's colour in start.PALETTE
SCREEN = (800, 600)


@pytest.fixture(scope="module")
def virtual_screen():
    """':N' of an Xvfb server running for this module."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    for number in range(91, 120):
        if os.path.exists(f"/tmp/.X11-unix/X{number}") or os.path.exists(f"/tmp/.X{number}-lock"):
            continue
        server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten",
                                   "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(f"/tmp/.X11-unix/X{number}"):
            if server.poll() is not None:
                break
            time.sleep(0.05)
        if server.poll() is None and os.path.exists(f"/tmp/.X11-unix/X{number}"):
            yield f":{number}"
            server.terminate()
            server.wait(timeout=10)
            return
    pytest.skip("no free X display number for Xvfb")


def test_a_tk_window_shows_the_boxes_on_the_virtual_screen(virtual_screen, monkeypatch, tmp_path):
    from PIL import ImageGrab
    monkeypatch.setenv("DISPLAY", virtual_screen)
    window = display.open_window("start.py test")
    assert window is not None and window.toolkit == "tk"  # the pinned OpenCV has no GUI
    frame = np.full((240, 320, 3), 90, np.uint8)
    start.draw_tracks(frame, np.array([[100.0, 60.0, 200.0, 180.0, 0]]))  # track 0: a green box
    for _ in range(5):  # let the window manager-less server map and draw it
        assert window.show(frame)
        time.sleep(0.05)
    shot = np.asarray(ImageGrab.grab(xdisplay=virtual_screen).convert("RGB"))
    ImageGrab.grab(xdisplay=virtual_screen).save(tmp_path / "screenshot.png")
    green = np.all(shot == (0, 255, 0), axis=-1)
    ys, xs = np.nonzero(green)
    assert len(ys) > 0, "no green box on the screen"
    # The box's outline (2 px, 101 x 121 px) and its id, where the frame landed on the screen.
    assert 100 <= xs.max() - xs.min() + 1 <= 104 and 120 <= ys.max() - ys.min() + 1 <= 140
    assert np.sum(np.all(shot == (90, 90, 90), axis=-1)) > 0.8 * 240 * 320  # the frame's grey
    window.close()


def test_start_displays_every_frame_and_q_ends_the_source(virtual_screen, clip, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DISPLAY", virtual_screen)
    shown = []
    real_open = display.open_window

    def recording_window(title):
        window = real_open(title)
        show = window.show
        window.show = lambda frame: shown.append(frame.copy()) or (show(frame) and len(shown) < 4)  # "q" at frame 4
        return window

    monkeypatch.setattr(display, "open_window", recording_window)
    rc = start.main([str(_video_dir(tmp_path, clip)), "--display", "--no_progress",
                     "--output_path", str(tmp_path / "o")],
                    detector_factory=lambda model: GroundTruthDetector(clip["dets"]))
    assert rc == 0 and len(shown) == 4
    import json
    summary = json.loads((tmp_path / "o" / "people" / "people_summary.json").read_text())
    assert summary["stopped"] == "user" and summary["frames"] == 4


def test_window_choice_without_a_real_screen(monkeypatch):
    # Runs everywhere (no Xvfb needed): no screen -> no window; a screen where OpenCV has a GUI ->
    # OpenCV's window; a screen where neither toolkit works -> None, not an exception.
    import cv2
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display.sys.platform.startswith("linux"):
        assert not display.has_screen() and display.open_window("t") is None
    monkeypatch.setenv("DISPLAY", ":12345")  # nothing listens there
    opened = []
    monkeypatch.setattr(cv2, "namedWindow", lambda title: opened.append(title))
    window = display.open_window("t")
    assert window.toolkit == "opencv" and opened == ["t"]

    def no_gui(title):
        raise cv2.error("The function is not implemented")
    monkeypatch.setattr(cv2, "namedWindow", no_gui)
    assert display.open_window("t") is None  # and Tk cannot reach display :12345
