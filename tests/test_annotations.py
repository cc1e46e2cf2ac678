"""Tests of src/annotations.py (JSON annotation reader/writer, boxes xmin, ymin, xmax, ymax pixels)."""
import json
import os

import numpy as np
import pytest

from src.annotations import Annotation, read_annotation, write_annotation


def test_round_trip_is_exact(tmp_path):
    boxes = np.array([[172.0, 58.0, 272.0, 178.0], [0.1, 1.0 / 3.0, 10.25, 99.999999999]])
    path = str(tmp_path / "a.json")
    write_annotation(path, Annotation("x.jpg", 640, 480, 3, boxes))
    back = read_annotation(path)
    assert (back.filename, back.width, back.height, back.depth) == ("x.jpg", 640, 480, 3)
    assert back.boxes.dtype == np.float64
    np.testing.assert_array_equal(back.boxes, boxes)
    assert os.listdir(tmp_path) == ["a.json"]  # no temporary file left behind


def test_written_file_is_the_upstream_format(tmp_path):
    path = str(tmp_path / "a.json")
    write_annotation(path, Annotation("x.jpg", 20, 10, 3, [[1, 2, 3, 4]]))
    with open(path) as f:
        data = json.load(f)
    assert data == {"filename": "x.jpg", "size": {"width": 20, "height": 10, "depth": 3},
                    "object": [{"name": "face", "bndbox": {"xmin": 1.0, "ymin": 2.0, "xmax": 3.0, "ymax": 4.0}}]}


def test_no_objects_gives_empty_boxes(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"filename": "x.jpg", "size": {"width": 5, "height": 6, "depth": 3}, "object": []}))
    annotation = read_annotation(str(path))
    assert annotation.boxes.shape == (0, 4)
    write_annotation(str(tmp_path / "b.json"), annotation)
    assert read_annotation(str(tmp_path / "b.json")).boxes.shape == (0, 4)


def test_degenerate_boxes_are_read_as_they_are(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"filename": "x.jpg", "size": {"width": 5, "height": 6},
                                "object": [{"name": "face", "bndbox": {"xmin": 3, "ymin": 2, "xmax": 3, "ymax": -1}}]}))
    annotation = read_annotation(str(path))
    np.testing.assert_array_equal(annotation.boxes, [[3, 2, 3, -1]])
    assert annotation.depth == 3  # depth defaults to 3 when absent


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON (line 1"),
    ("[]", "top level must be a JSON object"),
    ('{"size": {"width": 5, "height": 6}}', "'filename' must be a non-empty string"),
    ('{"filename": "x.jpg"}', "'size' must be an object"),
    ('{"filename": "x.jpg", "size": {"width": 0, "height": 6}}', "size.width must be a positive integer"),
    ('{"filename": "x.jpg", "size": {"width": 5, "height": 6.5}}', "size.height must be a positive integer"),
    ('{"filename": "x.jpg", "size": {"width": 5, "height": 6}, "object": {}}', "'object' must be a list"),
    ('{"filename": "x.jpg", "size": {"width": 5, "height": 6}, "object": [{"name": "face"}]}',
     "object 0 has no 'bndbox'"),
    ('{"filename": "x.jpg", "size": {"width": 5, "height": 6}, "object": '
     '[{"bndbox": {"xmin": 1, "ymin": 1, "xmax": 2, "ymax": 2}}, '
     '{"bndbox": {"xmin": "1", "ymin": 1, "xmax": 2, "ymax": 2}}]}', "object 1 bndbox.xmin must be a finite number"),
    ('{"filename": "x.jpg", "size": {"width": 5, "height": 6}, "object": '
     '[{"bndbox": {"xmin": 1, "ymin": true, "xmax": 2, "ymax": 2}}]}', "object 0 bndbox.ymin must be a finite number"),
    ('{"filename": "x.jpg", "size": {"width": 5, "height": 6}, "object": '
     '[{"bndbox": {"xmin": 1, "ymin": 1, "xmax": NaN, "ymax": 2}}]}', "object 0 bndbox.xmax must be a finite number"),
])
def test_malformed_annotation_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError) as error:
        read_annotation(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert problem in message


def test_boxes_of_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"boxes must have shape \[N, 4\], got \(2, 3\)"):
        Annotation("x.jpg", 5, 6, 3, np.zeros((2, 3)))
