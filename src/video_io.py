"""Video I/O for start.py: threaded frame reading (files, cameras, streams) and writing, atomic writers.

Frames are numpy uint8 arrays [H, W, 3] in OpenCV's BGR order. Boxes do not appear here.
Every file is written under a temporary name in its destination folder and renamed into
place, so an interrupted run never leaves a truncated image, text file or video.
"""
import logging
import os
import queue
import threading

import cv2

from src.atomic_io import temporary_sibling, write_bytes_atomic

LOGGER = logging.getLogger(__name__)

# Frames buffered by the reader thread: enough to hide decode jitter, small in memory.
READ_AHEAD_FRAMES = 8
# Frames the writer thread may lag behind write().
WRITE_BEHIND_FRAMES = 8
# How long opening or reading a stream may block before it counts as dropped (FFmpeg's
# defaults are 30 s or more, during which Ctrl-C is the only way out).
STREAM_TIMEOUT_MS = 10000
# Seconds between a stream's reconnection attempts (start.py --reconnect_delay).
RECONNECT_DELAY_SECONDS = 2.0


class VideoReadError(Exception):
    """A video, camera or stream cannot be opened or holds no frame."""


def open_capture(target):
    """A cv2.VideoCapture of a file path, a camera index (int) or a stream URL (str with '://').

    Streams are opened with FFmpeg and STREAM_TIMEOUT_MS for opening and for each read.
    """
    if isinstance(target, str) and "://" in target:
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                         cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
    return cv2.VideoCapture(target)


class FrameReader:
    """Decodes a video, camera or stream in a background thread; iterate to get (index, frame_bgr).

    Opening reads the first frame, so an unreadable or frameless source fails here rather
    than halfway through processing. A live reader (camera, stream) never makes its source
    wait: when the consumer is slower than the source, the oldest buffered frame is dropped
    (counted in `dropped`), so the frames processed stay current. A stream that stops
    delivering frames is reopened up to `reconnects` times, with one warning line each.

    Attributes:
        fps: float, frames per second from the container (25.0 when it is missing).
        width, height: int, frame size in pixels.
        frame_count: int, the container's frame count (may be approximate; 0 if unknown,
            always 0 for a live source).
        ended: why the frames ended, once iteration is over: 'end' (the file or stream
            ended), 'max_frames', 'lost' (a live source stopped delivering frames and could not
            be reopened) or 'stopped' (close() was called).
        dropped: int, frames a live reader dropped because the consumer was slower.
        reconnections: int, times a stream was reopened.
    """

    def __init__(self, target, max_frames=None, *, name=None, live=False, reconnects=0,
                 reconnect_delay=RECONNECT_DELAY_SECONDS):
        """Args:
            target: what cv2.VideoCapture opens: a file path, a camera index (int) or a URL.
            max_frames: int or None, stop after this many frames.
            name: str, how messages name the source (default: str(target)).
            live: bool, a camera or stream (drop frames rather than wait; see the class).
            reconnects: int >= 0, times to reopen the source after it stops delivering frames.
            reconnect_delay: float, seconds to wait before each reopening.

        Raises:
            VideoReadError: if OpenCV cannot open the source or it yields no frame.
        """
        self.path = target
        self.name = str(target) if name is None else name
        self.live = live
        self._reconnects = reconnects
        self._reconnect_delay = reconnect_delay
        self.ended = None
        self.dropped = 0
        self.reconnections = 0
        what = "a video" if not live else ("a camera" if isinstance(target, int) else "a stream")
        self._cap = open_capture(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoReadError(f"{self.name}: cannot be opened as {what}")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise VideoReadError(f"{self.name}: no frame could be read"
                                 + (" (empty or corrupt video)" if not live else ""))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 and fps < 1000 else 25.0
        self.height, self.width = first.shape[:2]
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = 0 if live or not count or count < 0 else int(count)
        if max_frames is not None:
            self.frame_count = min(self.frame_count, max_frames) if self.frame_count else max_frames
        self._max_frames = max_frames
        self._first = first
        self._queue = queue.Queue(maxsize=READ_AHEAD_FRAMES)
        self._stop = threading.Event()
        self._thread = None

    def _put(self, item):
        """Queues a frame; a live reader drops the oldest queued frame instead of waiting."""
        if not self.live:
            self._queue.put(item)
            return
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _reopen(self, index):
        """The first frame after reopening a dropped live source, or None (self.ended says why)."""
        while self.live and self.reconnections < self._reconnects and not self._stop.is_set():
            self.reconnections += 1
            LOGGER.warning("%s: no frame after frame %d; reconnecting (%d of %d)", self.name, index,
                           self.reconnections, self._reconnects)
            self._cap.release()
            if self._stop.wait(self._reconnect_delay):
                break
            self._cap = open_capture(self.path)
            ok, frame = self._cap.read() if self._cap.isOpened() else (False, None)
            if ok and frame is not None:
                return frame
        if self._stop.is_set():
            self.ended = "stopped"
        elif self.live:
            self.ended = "lost"
            tried = f" and {self._reconnects} reconnection(s)" if self._reconnects else ""
            LOGGER.warning("%s: no frame after frame %d%s; ending it there", self.name, index, tried)
        else:
            self.ended = "end"
        return None

    def _run(self):
        index = 0
        frame = self._first
        self._first = None
        try:
            while True:
                if self._stop.is_set():
                    self.ended = "stopped"
                    break
                if frame is None:
                    frame = self._reopen(index)
                    if frame is None:
                        break
                if self._max_frames is not None and index >= self._max_frames:
                    self.ended = "max_frames"
                    break
                self._put((index, frame))
                index += 1
                ok, frame = self._cap.read()
                if not ok:
                    frame = None
        finally:
            self._queue.put(None)

    def __iter__(self):
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: a FrameReader can be iterated only once")
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield item

    def close(self):
        """Stops the reader thread and releases the source."""
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._thread.join()
        self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_image_atomic(path, image_bgr, jpeg_quality=95):
    """Encodes an image (format from the extension) and writes it atomically.

    Args:
        path: str, destination, e.g. '.../track_3_1.jpg'.
        image_bgr: uint8 array [H, W, 3] (BGR) or [H, W].
        jpeg_quality: int 0..100, used for .jpg/.jpeg.

    Raises:
        ValueError: if OpenCV cannot encode the image.
    """
    ext = os.path.splitext(path)[1] or ".jpg"
    ok, buf = cv2.imencode(ext, image_bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)])
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode an image of shape {image_bgr.shape}")
    write_bytes_atomic(path, buf.tobytes())


def create_run_dir(output_root, name):
    """Creates a new, empty output folder for one video; never reuses an existing one.

    The first run gets `output_root/name`; if that exists, `name__run2`, `name__run3`, ...
    The folder is created with os.mkdir, so two concurrent runs cannot share it.

    Args:
        output_root: str, parent folder (created if missing).
        name: str, usually the video's file stem; may hold '/' (subfolders, created if missing).

    Returns:
        str, path of the new folder.
    """
    os.makedirs(os.path.dirname(os.path.join(output_root, name)) or output_root, exist_ok=True)
    attempt = 1
    while True:
        folder = os.path.join(output_root, name if attempt == 1 else f"{name}__run{attempt}")
        try:
            os.mkdir(folder)
            return folder
        except FileExistsError:
            attempt += 1


class AtomicVideoWriter:
    """cv2.VideoWriter that encodes on a thread and renames the file into place on close().

    write() hands the frame to a writer thread (at most WRITE_BEHIND_FRAMES wait), so the
    encoding (1-3 ms a frame at 640x480 with mp4v on a 2-core CPU; OpenCV releases the GIL
    while it encodes) overlaps the caller's next frame. The caller must not change a frame
    after passing it. The file is written under a temporary name; close() waits for the
    thread and renames it, abort() (after an exception) drops it. An encoding error is raised
    by the next write() or by close().
    """

    def __init__(self, path, fps, width, height, fourcc="mp4v"):
        """Args:
            path: str, destination video path (its extension picks the container).
            fps: float, frames per second.
            width, height: int, frame size in pixels.
            fourcc: str of 4 characters, codec ('mp4v' for .mp4).

        Raises:
            OSError: if OpenCV cannot open a writer for that path and codec.
        """
        self.path = path
        self._tmp = temporary_sibling(path)
        self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*fourcc), float(fps),
                                       (int(width), int(height)))
        if not self._writer.isOpened():
            if os.path.exists(self._tmp):
                os.remove(self._tmp)
            raise OSError(f"{path}: OpenCV cannot open a video writer with fourcc {fourcc!r}")
        self.frames_written = 0
        self._queue = queue.Queue(maxsize=WRITE_BEHIND_FRAMES)
        self._error = None
        self._thread = threading.Thread(target=self._run, name="frame-writer", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is None:
                try:
                    self._writer.write(frame)
                except Exception as error:  # noqa: BLE001 (re-raised in the caller's thread)
                    self._error = error

    def _raise_error(self):
        if self._error is not None:
            raise OSError(f"{self.path}: encoding a frame failed: {self._error}")

    def write(self, frame_bgr):
        """Queues one uint8 BGR frame [height, width, 3] for encoding (not to be changed after)."""
        self._raise_error()
        self._queue.put(frame_bgr)
        self.frames_written += 1

    def _finish(self):
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._writer.release()

    def close(self):
        """Waits for the queued frames, finishes the file and moves it into place.

        Raises:
            OSError: a frame could not be encoded (the partial file is removed).
        """
        self._finish()
        if self._error is not None:
            self.abort()
            self._raise_error()
        os.replace(self._tmp, self.path)

    def abort(self):
        """Drops the partial file (the queued frames are encoded first, then removed)."""
        self._finish()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)
