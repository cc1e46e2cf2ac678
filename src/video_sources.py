"""What start.py reads: video files, folders (optionally their subfolders), cameras and streams.

A SOURCE on the command line is
  - an integer such as ``0``: a camera index (what ``cv2.VideoCapture(0)`` opens);
  - anything with ``://`` (``rtsp://...``, ``http://.../video.mjpg``): a stream URL;
  - a folder: the files in it with a video extension (and in its subfolders with ``recursive``);
  - a file: a video, whatever its extension (OpenCV decides when it is opened).
Cameras and streams are *live*: they have no end of their own. Boxes do not appear here.
"""
import dataclasses
import os
import re
import urllib.parse

from src.cli import UserError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".flv")
FILE, CAMERA, STREAM = "file", "camera", "stream"
# Characters kept in an output folder name made from a URL; the rest become '_'.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class Source:
    """One thing to read frames from.

    Attributes:
        kind: FILE, CAMERA or STREAM.
        target: what cv2.VideoCapture opens: a path (str), a camera index (int) or a URL (str).
        name: the output folder name, unique in the run; may hold '/' (a subfolder of a folder
            tree, mirrored under the output folder).
    """
    kind: str
    target: object
    name: str

    @property
    def live(self):
        """True for cameras and streams (no end of their own; Ctrl-C ends them normally)."""
        return self.kind != FILE

    def __str__(self):
        if self.kind == CAMERA:
            return f"camera {self.target}"
        return _hides_password(self.target) if self.kind == STREAM else self.target


def _hides_password(url):
    """The URL without a password (it ends up in logs and summaries)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def stream_name(url):
    """An output folder name for a stream URL: host, port and path, e.g. 'cam.local_554_live'."""
    parts = urllib.parse.urlsplit(url)
    text = "_".join(str(p) for p in (parts.hostname, parts.port, parts.path.strip("/")) if p)
    return _UNSAFE.sub("_", text).strip("_.") or "stream"


def _folder_videos(folder, recursive):
    """(videos, number of other files) under `folder`, sorted; subfolders only if `recursive`."""
    videos, others = [], 0
    for parent, subfolders, names in os.walk(folder):
        subfolders.sort()
        if not recursive:
            subfolders.clear()
        for name in sorted(names):
            path = os.path.join(parent, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            if name.lower().endswith(VIDEO_EXTENSIONS):
                videos.append(path)
            else:
                others += 1
    return videos, others


def resolve_sources(texts, recursive=False):
    """Turns command-line SOURCEs into Sources with output names unique in the run.

    A folder's videos are named by their path relative to the folder without the extension
    (``sub/clip``); a file by its stem; a camera ``camera<index>``; a stream by its host, port
    and path. Sources with the same name get their extension added when that tells them apart
    (``clip_avi``, ``clip_mp4``), else a number (``clip``, ``clip_2``).

    Args:
        texts: list of str, the SOURCE arguments.
        recursive: bool, include the videos in the folders' subfolders.

    Returns:
        (sources, ignored): list of Source in the order given (a folder's videos sorted), and
        the number of files in the folders that are not videos (ignored).

    Raises:
        UserError: a path that does not exist, a folder with no video, a negative camera index.
    """
    found, ignored = [], 0
    for text in texts:
        if re.fullmatch(r"[+-]?\d+", text.strip()):
            index = int(text)
            if index < 0:
                raise UserError(f"{text}: a camera index must be >= 0")
            found.append((CAMERA, index, f"camera{index}", None))
        elif "://" in text:
            found.append((STREAM, text, stream_name(text), None))
        elif os.path.isdir(text):
            videos, others = _folder_videos(text, recursive)
            ignored += others
            if not videos:
                where = "in it or its subfolders" if recursive else "in it (--recursive also looks in subfolders)"
                raise UserError(f"{text}: no video file {where}; extensions: {' '.join(VIDEO_EXTENSIONS)}")
            for path in videos:
                stem, ext = os.path.splitext(os.path.relpath(path, text))
                found.append((FILE, path, stem, ext))
        elif os.path.isfile(text):
            stem, ext = os.path.splitext(os.path.basename(text))
            found.append((FILE, text, stem, ext))
        elif os.path.lexists(text):
            raise UserError(f"{text}: neither a file nor a folder")
        else:
            parent = os.path.dirname(text) or "."
            why = "no such file or folder" if os.path.isdir(parent) else f"no such folder: {parent}"
            raise UserError(f"{text}: {why}")
    return _unique(found), ignored


def _unique(found):
    """Sources from (kind, target, name, extension) tuples, names made unique in the run."""
    counts, with_ext = {}, {}
    for _, _, name, ext in found:
        counts[name] = counts.get(name, 0) + 1
        with_ext[name, ext] = with_ext.get((name, ext), 0) + 1
    sources, used = [], set()
    for kind, target, name, ext in found:
        if counts[name] > 1 and ext and with_ext[name, ext] == 1:
            name = f"{name}_{ext.lstrip('.').lower()}"
        candidate, number = name, 2
        while candidate in used:
            candidate, number = f"{name}_{number}", number + 1
        used.add(candidate)
        sources.append(Source(kind, target, candidate))
    return sources
