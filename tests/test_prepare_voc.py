"""Pascal VOC -> annotation JSON: classes, ignore classes, clipping, malformed XML."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from src.annotations import read_annotation

VOC = """<annotation>
  <filename>{filename}</filename>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
{objects}</annotation>
"""
OBJECT = """  <object><name>{name}</name><difficult>{difficult}</difficult>
    <bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>
  </object>
"""


def write_voc(folder, stem, filename, objects, width=100, height=80):
    text = VOC.format(filename=filename, width=width, height=height,
                      objects="".join(OBJECT.format(name=n, box=b, difficult=d) for n, b, d in objects))
    (folder / f"{stem}.xml").write_text(text)


def run(*args):
    return subprocess.run([sys.executable, "prepare_data/prepare_voc.py", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_classes_ignore_classes_clipping_and_bad_xml(tmp_path):
    images, xml, out = tmp_path / "images", tmp_path / "xml", tmp_path / "out"
    images.mkdir(), xml.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.new("RGB", (100, 80)).save(images / name)
    write_voc(xml, "a", "a.jpg", [("with_mask", (10, 10, 30, 30), 0), ("head", (40, 5, 60, 25), 0),
                                  ("without_mask", (90, 70, 120, 95), 0),  # clipped to 90, 70, 100, 80
                                  ("without_mask", (120, 10, 130, 20), 0),  # outside: dropped
                                  ("car", (0, 0, 5, 5), 0),  # other class: left out
                                  ("with_mask", (50, 50, 60, 60), 1)])  # difficult
    write_voc(xml, "b", "b.jpg", [])
    (xml / "c.xml").write_text("<annotation>\n  <filename>c.jpg</filename>\n  <size><width>1</width>\n</annotation>\n")
    write_voc(xml, "d", "missing.jpg", [("with_mask", (1, 1, 5, 5), 0)])
    result = run("--annotations_dir", xml, "--image_dir", images, "--output_dir", out,
                 "--classes", "with_mask,without_mask", "--ignore_classes", "head", "--difficult_as_ignore")
    assert result.returncode == 0, result.stderr
    assert f"{xml / 'c.xml'}:4: malformed XML" in result.stderr
    assert "images=2, faces=2, ignore_regions=2, bad_xml=1, missing_image=1" in result.stderr
    assert "dropped_boxes=1, clipped_boxes=1" in result.stderr
    a = read_annotation(str(out / "a.json"))
    np.testing.assert_array_equal(a.boxes, [[10, 10, 30, 30], [90, 70, 100, 80]])
    np.testing.assert_array_equal(a.ignore_boxes, [[40, 5, 60, 25], [50, 50, 60, 60]])
    assert (a.filename, a.width, a.height) == ("a.jpg", 100, 80)
    assert read_annotation(str(out / "b.json")).boxes.shape == (0, 4)
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json"]


def test_every_class_by_default_and_one_line_errors(tmp_path):
    images, xml = tmp_path / "images", tmp_path / "xml"
    images.mkdir(), xml.mkdir()
    Image.new("RGB", (100, 80)).save(images / "a.jpg")
    write_voc(xml, "a", "a.jpg", [("x", (1, 2, 3, 4), 0), ("y", (5, 6, 7, 8), 0)])
    assert run("--annotations_dir", xml, "--image_dir", images, "--output_dir", tmp_path / "out").returncode == 0
    assert len(json.load(open(tmp_path / "out" / "a.json"))["object"]) == 2
    result = run("--annotations_dir", tmp_path / "none", "--image_dir", images, "--output_dir", tmp_path / "o2")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'none'}: folder not found"]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("--annotations_dir", empty, "--image_dir", images, "--output_dir", tmp_path / "o3")
    assert result.returncode == 2 and result.stderr.strip() == f"error: {empty}: no *.xml files"
