"""Reading Pascal VOC annotation XML (one file per image).

Box convention: pixels ``[xmin, ymin, xmax, ymax]`` (float64) as VOC writes them. VOC's
coordinates are 1-based inclusive pixel indices in the original devkit; most face data sets
in VOC form (made with labelImg and similar tools) write 0-based edges instead, so the
values are taken as edges, unchanged.

Errors are ``ValueError("<file>:<line>: <problem>")`` (line of the XML element at fault
where the parser knows it), so a batch tool can report and skip the file.
"""
from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ElementTree

import numpy as np

VOC_BOX_KEYS = ("xmin", "ymin", "xmax", "ymax")


@dataclasses.dataclass(frozen=True)
class VocObject:
    """One <object>: its class name, pixel box [xmin, ymin, xmax, ymax] and VOC flags."""

    name: str
    box: tuple
    difficult: bool


@dataclasses.dataclass(frozen=True)
class VocAnnotation:
    """One VOC file: image file name, size (0 when the file does not say) and objects."""

    filename: str
    width: int
    height: int
    objects: tuple


def _number(text, path, what):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}: {what} must be finite, got {text!r}")
    return value


def read_voc(path: str) -> VocAnnotation:
    """Parses one VOC XML file.

    Args:
        path: the .xml file.

    Returns:
        a VocAnnotation.

    Raises:
        ValueError: ``"<path>:<line>: <problem>"`` for XML that does not parse, or
            ``"<path>: <problem>"`` for a missing filename or a non-numeric box.
        OSError: the file cannot be read.
    """
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        line, column = error.position
        raise ValueError(f"{path}:{line}: malformed XML ({error.msg if hasattr(error, 'msg') else error}, "
                         f"column {column})") from None
    if root.tag != "annotation":
        raise ValueError(f"{path}: root element is <{root.tag}>, expected <annotation>")
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise ValueError(f"{path}: no <filename>")
    size = root.find("size")
    width = height = 0
    if size is not None:
        width = int(_number(size.findtext("width", "0"), path, "size/width"))
        height = int(_number(size.findtext("height", "0"), path, "size/height"))
    objects = []
    for index, item in enumerate(root.findall("object")):
        name = (item.findtext("name") or "").strip()
        bndbox = item.find("bndbox")
        if bndbox is None:
            raise ValueError(f"{path}: object {index} ({name or 'no name'}) has no <bndbox>")
        box = tuple(_number(bndbox.findtext(key), path, f"object {index} bndbox/{key}")
                    for key in VOC_BOX_KEYS)
        difficult = (item.findtext("difficult") or "0").strip() == "1"
        objects.append(VocObject(name, box, difficult))
    return VocAnnotation(filename, width, height, tuple(objects))


def select_boxes(objects, classes, ignore_classes=(), difficult_as_ignore=False):
    """Splits VOC objects into face boxes and ignore regions by class name.

    Args:
        objects: VocObjects.
        classes: class names that are faces (empty: every class not in ignore_classes).
        ignore_classes: class names that become ignore regions.
        difficult_as_ignore: faces flagged <difficult>1 become ignore regions.

    Returns:
        faces: float64 [F, 4], ignore: float64 [G, 4] (pixels xmin, ymin, xmax, ymax);
        objects of other classes are left out.
    """
    faces, ignore = [], []
    for item in objects:
        if item.name in ignore_classes:
            ignore.append(item.box)
        elif not classes or item.name in classes:
            (ignore if difficult_as_ignore and item.difficult else faces).append(item.box)
    return np.array(faces, np.float64).reshape(-1, 4), np.array(ignore, np.float64).reshape(-1, 4)
