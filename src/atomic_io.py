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


def write_with(path, writer):
    """Lets `writer` write `path` atomically, for libraries that want a file name to write to.

    `writer(temporary_path)` is called with a fresh `temporary_sibling` of `path` (same folder,
    same extension, so format-by-extension writers such as matplotlib's savefig or cv2.imwrite
    keep working); when it returns, the temporary file is renamed to `path`. If it raises (or
    the rename fails), the temporary file is removed and `path` is left as it was. The folder
    is created if needed.

    Args:
        path: str, the destination file.
        writer: callable(str) that writes the complete file at the path it is given.

    Returns:
        what `writer` returned.

    Example:
        write_with('plots/roc.png', lambda tmp: figure.savefig(tmp, format='png'))
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        result = writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.remove(tmp)
        raise
    return result


def write_bytes_atomic(path, data):
    """Writes `data` (bytes) to `path` atomically; the folder is created if needed."""

    def write(tmp):
        with open(tmp, "xb") as f:
            f.write(data)

    write_with(path, write)


def write_text_atomic(path, text):
    """Writes UTF-8 `text` to `path` atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))
