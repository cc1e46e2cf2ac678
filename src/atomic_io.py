"""Atomic file writes: a temporary file in the destination's folder, then a rename.

An interrupted run never leaves a truncated file at the destination, and an existing file is
replaced only by a complete new one. Files get the usual permissions (0o666 minus the umask;
tempfile.mkstemp would make them owner-only).
"""
import os
import uuid


def temporary_sibling(path):
    """A fresh hidden temporary name next to `path` that keeps its extension.

    The name starts with '.', so globs such as ``*.jpg`` or ``shard-*.tfrecords`` never match
    it, and keeps the extension, so writers that choose a format by extension (OpenCV's
    VideoWriter, cv2.imwrite) still work.
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{ext}")


def write_bytes_atomic(path, data):
    """Writes `data` (bytes) to `path` atomically; the folder is created if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text_atomic(path, text):
    """Writes UTF-8 `text` to `path` atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))
