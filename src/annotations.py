"""The one reader/writer of the per-image JSON annotation format (the upstream's).

Box convention: pixels, ``[xmin, ymin, xmax, ymax]`` (float64), as stored in the JSON's
``bndbox``. Nothing here clips or drops boxes: a degenerate or out-of-image box is read as
it is, so that each tool can decide (and count) what to do with it.

File format, one file per image::

    {"filename": "x.jpg",
     "size": {"width": W, "height": H, "depth": 3},
     "object": [{"name": "face",
                 "bndbox": {"xmin": .., "ymin": .., "xmax": .., "ymax": ..}}, ...],
     "ignore": [{"name": "ignore",
                 "bndbox": {"xmin": .., "ymin": .., "xmax": .., "ymax": ..}}, ...]}

``"ignore"`` is this project's optional addition to the upstream format: regions that hold
a face nobody is sure of (a teacher's low-confidence box, WIDER's ``invalid`` faces).
Training treats anchors on them as neither face nor background. Files without the key are
valid (no ignore regions), and the key is only written when there is a region, so files
without any stay byte-identical to the upstream's format; upstream tools read ``"object"``
only and never see the regions.
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers

import numpy as np

from src.atomic_io import write_text_atomic

# Every object in this project's annotations is a face (the upstream wrote the same name).
OBJECT_NAME = "face"
IGNORE_NAME = "ignore"
BOX_KEYS = ("xmin", "ymin", "xmax", "ymax")


@dataclasses.dataclass(frozen=True)
class Annotation:
    """One image's annotation.

    Attributes:
        filename: the image file name, relative to the image folder, e.g. ``'x.jpg'``.
        width: image width in pixels (positive).
        height: image height in pixels (positive).
        depth: number of channels (3 for everything our tools write).
        boxes: float64 array [N, 4], ``xmin, ymin, xmax, ymax`` in pixels; N may be 0.
        ignore_boxes: float64 array [M, 4], the ignore regions in the same convention
            (default: none).
    """

    filename: str
    width: int
    height: int
    depth: int
    boxes: np.ndarray
    ignore_boxes: np.ndarray = None

    def __post_init__(self):
        for name in ("boxes", "ignore_boxes"):
            value = getattr(self, name)
            boxes = np.asarray([] if value is None else value, dtype=np.float64)
            if boxes.size == 0:
                boxes = boxes.reshape(0, 4)
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise ValueError(f"Annotation of '{self.filename}': {name} must have shape [N, 4], "
                                 f"got {boxes.shape}")
            object.__setattr__(self, name, boxes)

    def to_dict(self) -> dict:
        """Returns the JSON-ready dictionary (the upstream format, plus "ignore" if any)."""
        def objects(boxes, name):
            return [{"name": name, "bndbox": {key: float(value) for key, value in zip(BOX_KEYS, box)}}
                    for box in boxes]
        data = {
            "filename": self.filename,
            "size": {"width": int(self.width), "height": int(self.height), "depth": int(self.depth)},
            "object": objects(self.boxes, OBJECT_NAME),
        }
        if len(self.ignore_boxes):
            data["ignore"] = objects(self.ignore_boxes, IGNORE_NAME)
        return data


def _require(condition: bool, path: str, problem: str) -> None:
    if not condition:
        raise ValueError(f"{path}: {problem}")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive_int(value) -> bool:
    return _is_number(value) and float(value) == int(value) and int(value) > 0


def parse_annotation(data, path: str = "<annotation>") -> Annotation:
    """Validates a decoded JSON object and turns it into an `Annotation`.

    Args:
        data: the object produced by `json.load`.
        path: a name for error messages.

    Returns:
        The `Annotation`.

    Raises:
        ValueError: ``"<path>: <problem>"`` for a missing key, a wrong type, a non-positive
            size or a non-finite box coordinate.
    """
    _require(isinstance(data, dict), path, "top level must be a JSON object")
    filename = data.get("filename")
    _require(isinstance(filename, str) and filename != "", path, "'filename' must be a non-empty string")
    size = data.get("size")
    _require(isinstance(size, dict), path, "'size' must be an object with width, height, depth")
    for key in ("width", "height"):
        _require(_is_positive_int(size.get(key)), path, f"size.{key} must be a positive integer, got {size.get(key)!r}")
    depth = size.get("depth", 3)
    _require(_is_positive_int(depth), path, f"size.depth must be a positive integer, got {depth!r}")
    boxes = _parse_boxes(data, "object", path)
    ignore_boxes = _parse_boxes(data, "ignore", path)
    return Annotation(filename, int(size["width"]), int(size["height"]), int(depth), boxes, ignore_boxes)


def _parse_boxes(data: dict, key: str, path: str) -> np.ndarray:
    """The float64 [N, 4] boxes of the list ``data[key]`` (missing: none)."""
    objects = data.get(key, [])
    _require(isinstance(objects, list), path, f"'{key}' must be a list")
    boxes = np.zeros((len(objects), 4), dtype=np.float64)
    for index, item in enumerate(objects):
        _require(isinstance(item, dict) and isinstance(item.get("bndbox"), dict), path,
                 f"{key} {index} has no 'bndbox' object")
        bndbox = item["bndbox"]
        for column, name in enumerate(BOX_KEYS):
            value = bndbox.get(name)
            _require(_is_number(value), path, f"{key} {index} bndbox.{name} must be a finite number, got {value!r}")
            boxes[index, column] = float(value)
    return boxes


def read_annotation(path: str) -> Annotation:
    """Reads one annotation JSON file.

    Args:
        path: path of the ``.json`` file.

    Returns:
        The `Annotation` (boxes float64 [N, 4] xmin, ymin, xmax, ymax pixels).

    Raises:
        ValueError: ``"<path>: <problem>"`` if the file is not valid JSON or not in the format.
        OSError: if the file cannot be read.
    """
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    return parse_annotation(data, path)


def write_annotation(path: str, annotation: Annotation) -> None:
    """Writes an annotation JSON file atomically (temporary name in the same folder, then rename).

    Coordinates are written as JSON floats with full precision, so
    ``read_annotation(path)`` returns exactly the boxes written.

    Args:
        path: destination ``.json`` file; its folder is created if needed.
        annotation: the `Annotation` to write.
    """
    write_text_atomic(path, json.dumps(annotation.to_dict(), indent=1) + "\n")
