"""Reader of the official WIDER FACE ground-truth text files.

Box convention: the file's own, pixels ``x1 y1 w h`` (top-left corner, width, height),
followed by six integer attributes. Nothing here converts boxes; callers do
(``prepare_data/prepare_wider.py`` turns them into ``xmin, ymin, xmax, ymax`` pixels).

File layout (``wider_face_split/wider_face_{train,val}_bbx_gt.txt``), repeated per image::

    0--Parade/0_Parade_marchingband_1_849.jpg
    1
    449 330 122 149 0 0 0 0 0 0

i.e. the image path relative to ``WIDER_<split>/images``, the number of faces, then one
line per face with the ten numbers
``x1 y1 w h blur expression illumination invalid occlusion pose``.
An image with 0 faces is still followed by one line of ten zeros.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

# Number of numeric fields on every box line of the official file.
NUM_FIELDS = 10
FIELD_NAMES = (
    "x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose",
)


@dataclasses.dataclass(frozen=True)
class WiderEntry:
    """One image of a WIDER ground-truth file.

    Attributes:
        relpath: the image path relative to ``WIDER_<split>/images``, with forward
            slashes, e.g. ``'0--Parade/0_Parade_marchingband_1_849.jpg'``.
        boxes: float64 array [N, 10], all ten numbers of each face line in file order
            (``x1 y1 w h`` in pixels, then the six attributes). N is 0 for an image
            listed with 0 faces (its line of zeros is not a face). Degenerate boxes
            (w or h <= 0) are kept exactly as in the file; filtering them is the caller's job.
    """

    relpath: str
    boxes: np.ndarray


def _numbered_lines(path: str) -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, stripped text) for every non-blank line of `path`."""
    with open(path, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            text = line.strip()
            if text:
                yield number, text


def _parse_numbers(text: str) -> np.ndarray | None:
    """Returns the float64 [NUM_FIELDS] values of a box line, or None if it is not one."""
    fields = text.split()
    if len(fields) != NUM_FIELDS:
        return None
    try:
        values = np.array([float(field) for field in fields], dtype=np.float64)
    except ValueError:
        return None
    if not np.all(np.isfinite(values)):
        return None
    return values


def _looks_numeric(text: str) -> bool:
    """True if every whitespace-separated field of `text` parses as a number."""
    try:
        for field in text.split():
            float(field)
    except ValueError:
        return False
    return True


def parse_wider_gt(path: str) -> list[WiderEntry]:
    """Parses a WIDER FACE ground-truth file.

    Args:
        path: path to e.g. ``wider_face_train_bbx_gt.txt``.

    Returns:
        One `WiderEntry` per listed image, in file order.

    Raises:
        ValueError: ``"<path>:<line>: <problem>"`` on a count line that is not a
            non-negative integer, a box line without exactly ten numeric fields
            (non-numeric field, wrong field count, fewer box lines than the count says),
            a non-zero line after a count of 0, or a file that ends inside an entry.
        OSError: if the file cannot be read.
    """
    lines = list(_numbered_lines(path))
    entries: list[WiderEntry] = []
    i = 0
    while i < len(lines):
        path_line, relpath = lines[i]
        if _looks_numeric(relpath):
            raise ValueError(f"{path}:{path_line}: expected an image path, found '{relpath}'")
        if i + 1 >= len(lines):
            raise ValueError(
                f"{path}:{path_line}: truncated file: no face count after '{relpath}'")
        count_line, count_text = lines[i + 1]
        try:
            count = int(count_text)
        except ValueError:
            raise ValueError(
                f"{path}:{count_line}: bad face count '{count_text}' for '{relpath}' "
                "(expected a non-negative integer)") from None
        if count < 0:
            raise ValueError(f"{path}:{count_line}: negative face count {count} for '{relpath}'")
        i += 2

        if count == 0:
            # The official file follows a 0 with one line of ten zeros. Tolerate its absence
            # (the next line is then the next image path), but not a real box.
            if i < len(lines) and _looks_numeric(lines[i][1]):
                zero_line, zero_text = lines[i]
                values = _parse_numbers(zero_text)
                if values is None or np.any(values != 0):
                    raise ValueError(
                        f"{path}:{zero_line}: face count is 0 for '{relpath}' but the next "
                        f"line is not ten zeros: '{zero_text}'")
                i += 1
            entries.append(WiderEntry(relpath, np.zeros((0, NUM_FIELDS), dtype=np.float64)))
            continue

        boxes = np.zeros((count, NUM_FIELDS), dtype=np.float64)
        for k in range(count):
            if i >= len(lines):
                raise ValueError(
                    f"{path}:{count_line}: truncated file: '{relpath}' announces {count} "
                    f"faces but the file ends after {k}")
            box_line, box_text = lines[i]
            values = _parse_numbers(box_text)
            if values is None:
                raise ValueError(
                    f"{path}:{box_line}: box {k + 1} of {count} for '{relpath}' must be "
                    f"{NUM_FIELDS} numbers ({' '.join(FIELD_NAMES)}), found '{box_text}'")
            boxes[k] = values
            i += 1
        entries.append(WiderEntry(relpath, boxes))
    return entries
