"""A window that shows start.py's annotated frames (--display), with or without OpenCV's GUI.

The pinned `opencv-python-headless` has no GUI (cv2.imshow cannot open a window). So a window
is, in order of preference:
  - OpenCV's own (cv2.namedWindow / imshow), where the installed OpenCV has a GUI;
  - a Tk window (tkinter from the Python standard library, frames drawn through Pillow's
    ImageTk), which needs nothing beyond the pinned requirements and a screen.
Both close on the q key or the window's close button. Frames are uint8 BGR [H, W, 3], as
OpenCV reads them; nothing here looks at boxes (they are drawn into the frame beforehand).
"""
import logging
import os
import sys

import cv2
import numpy as np

LOGGER = logging.getLogger(__name__)
QUIT_KEY = "q"


def has_screen():
    """False on Linux without DISPLAY / WAYLAND_DISPLAY (no window can open); True elsewhere."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_window(title):
    """A FrameWindow titled `title`, or None (with the reason logged at debug level) when no window
    can open here: no screen, and neither OpenCV's GUI nor Tk works."""
    if not has_screen():
        LOGGER.debug("no screen (DISPLAY / WAYLAND_DISPLAY unset)")
        return None
    for kind in (OpenCVWindow, TkWindow):
        try:
            return kind(title)
        except Exception as error:  # each toolkit fails in its own way (cv2.error, TclError, ImportError)
            LOGGER.debug("%s unavailable: %s", kind.__name__, error)
    return None


class OpenCVWindow:
    """cv2.imshow in a named window (needs an OpenCV build with a GUI)."""

    toolkit = "opencv"

    def __init__(self, title):
        cv2.namedWindow(title)
        self._title = title

    def show(self, frame):
        """Shows uint8 BGR [H, W, 3]; False once the user pressed q."""
        cv2.imshow(self._title, frame)
        return (cv2.waitKey(1) & 0xFF) != ord(QUIT_KEY)

    def close(self):
        cv2.destroyWindow(self._title)


class TkWindow:
    """A Tk window (tkinter + Pillow's ImageTk): works with the headless OpenCV."""

    toolkit = "tk"

    def __init__(self, title):
        import tkinter  # noqa: PLC0415  (only when a window is wanted)

        from PIL import ImageTk  # noqa: PLC0415
        self._image_tk = ImageTk
        self._root = tkinter.Tk()  # TclError without a usable screen
        self._root.title(title)
        self._label = tkinter.Label(self._root)
        self._label.pack()
        self._open = True
        self._root.bind(f"<KeyPress-{QUIT_KEY}>", lambda event: self._closed())
        self._root.protocol("WM_DELETE_WINDOW", self._closed)
        self._photo = None
        self._tcl_error = tkinter.TclError

    def _closed(self):
        self._open = False

    def show(self, frame):
        """Shows uint8 BGR [H, W, 3]; False once the user pressed q or closed the window."""
        if not self._open:
            return False
        from PIL import Image  # noqa: PLC0415
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        self._photo = self._image_tk.PhotoImage(Image.fromarray(rgb), master=self._root)
        self._label.configure(image=self._photo)
        self._root.update()  # draws and handles the key and close events
        return self._open

    def close(self):
        try:
            self._root.destroy()
        except self._tcl_error:  # already destroyed
            pass
