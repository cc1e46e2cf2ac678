"""rotate_photos.py: the angles, the inner rectangle, the direction of rotation, the folder run, the CLI.

Every photo here is made by the test; the expected sizes are worked out by hand.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from prepare_data import rotate_photos as rp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- photo_angle ------------------------------------------------------------------------------

def test_photo_angle_is_seeded_by_name_in_range_and_takes_both_signs():
    angles = [rp.photo_angle(0, f"person_{i}/photo.jpg", 5.0, 40.0) for i in range(400)]
    assert all(5.0 <= abs(a) <= 40.0 for a in angles)
    assert 150 < sum(a > 0 for a in angles) < 250
    assert rp.photo_angle(0, "a/b.jpg", 5, 40) == rp.photo_angle(0, "a/b.jpg", 5, 40)
    assert rp.photo_angle(0, "a/b.jpg", 5, 40) != rp.photo_angle(1, "a/b.jpg", 5, 40)
    assert abs(rp.photo_angle(3, "x.png", 12.5, 12.5)) == 12.5


# --- inner_scale and rotate_and_crop ----------------------------------------------------------

def test_inner_scale_by_hand():
    assert rp.inner_scale(100, 100, 0) == pytest.approx(1.0)
    assert rp.inner_scale(100, 100, 45) == pytest.approx(1 / math.sqrt(2))
    assert rp.inner_scale(100, 100, -30) == pytest.approx(1 / (math.cos(math.pi / 6) + 0.5))
    # 200 x 100 turned a quarter: the centred rectangle of aspect 2:1 inside a 100 x 200 one is 100 x 50.
    assert rp.inner_scale(200, 100, 90) == pytest.approx(0.5)


def test_inner_rectangle_corners_lie_inside_the_rotated_photo():
    for width, height, angle in [(250, 250, 33.0), (300, 180, -17.0), (120, 400, 40.0)]:
        s = rp.inner_scale(width, height, angle)
        t = math.radians(angle)
        for cx, cy in [(1, 1), (1, -1), (-1, 1), (-1, -1)]:
            x, y = cx * s * width / 2, cy * s * height / 2
            # In the rotated photo's own axes, the corner is within its half sizes (equal for the worst corner).
            u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
            assert abs(u) <= width / 2 + 1e-9 and abs(v) <= height / 2 + 1e-9
        assert max(abs(s * width / 2 * math.cos(t)) + abs(s * height / 2 * math.sin(t)) - width / 2,
                   abs(s * width / 2 * math.sin(t)) + abs(s * height / 2 * math.cos(t)) - height / 2) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("size,angle", [((250, 250), 40.0), ((320, 200), -25.0), ((180, 300), 7.5), ((64, 64), 90.0)])
def test_rotate_and_crop_takes_no_pixel_from_outside(size, angle):
    width, height = size
    white = np.full((height, width, 3), 255, np.uint8)
    out = rp.rotate_and_crop(white, angle)
    s = rp.inner_scale(width, height, angle)
    assert out.shape == (math.floor(height * s + 1e-6) - 2, math.floor(width * s + 1e-6) - 2, 3)
    if angle == 90.0:
        assert out.shape == (62, 62, 3)
    assert out.min() == 255  # a filled (black) corner would show here


def test_rotation_is_counter_clockwise_for_positive_angles():
    image = np.zeros((101, 101, 3), np.uint8)
    image[48:53, 80:85] = 255                      # a bright square right of the centre (50, 50)
    out = rp.rotate_and_crop(image, 90.0)          # 99 x 99, centre (49, 49)
    ys, xs = np.nonzero(out[..., 0] > 127)
    assert out.shape[:2] == (99, 99)
    # Counter-clockwise on screen: right of the centre goes above it (rows 16-20, minus the 1-px crop).
    assert 15 <= ys.min() and ys.max() <= 20 and 46 <= xs.min() and xs.max() <= 52


# --- rotate_folder and the CLI ----------------------------------------------------------------

def make_photos(folder):
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (200, 120), (200, 30, 30)).save(folder / "sub" / "a.jpg")
    Image.new("RGB", (90, 90), (0, 120, 0)).save(folder / "b.png")
    Image.new("RGB", (50, 50), (0, 0, 120)).save(folder / "b.bmp")  # its output would be b.jpg too
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")


def run(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "prepare_data", "rotate_photos.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_cli_rotates_keeps_the_layout_skips_bad_files_and_resumes(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    make_photos(photos)
    result = run("--image_dir", photos, "--output_dir", out, "--min_angle", 10, "--max_angle", 30, "--num_workers", 1)
    assert result.returncode == 0, result.stderr
    assert "images=4, rotated=2, already_rotated=0, unreadable=1, name_clash=1" in result.stderr
    assert "broken.jpg" in result.stderr and "b.png: its output b.jpg is taken by another photo" in result.stderr
    manifest = json.loads((out / "rotations.json").read_text())
    assert {key: manifest[key] for key in ("seed", "min_angle", "max_angle")} == {
        "seed": 0, "min_angle": 10.0, "max_angle": 30.0}
    angles = manifest["angles"]
    # BMP in (sorted first), JPEG out; the clashing PNG and the unreadable photo are not listed.
    assert sorted(angles) == ["b.jpg", "sub/a.jpg"]
    for name, source_size in (("sub/a.jpg", (200, 120)), ("b.jpg", (50, 50))):
        angle = angles[name]
        assert 10 <= abs(angle) <= 30 and angle == round(rp.photo_angle(0, name.replace("b.jpg", "b.bmp"), 10, 30), 3)
        s = rp.inner_scale(*source_size, angle)
        with Image.open(out / name) as image:
            assert image.format == "JPEG"
            assert image.size == (math.floor(source_size[0] * s + 1e-6) - 2, math.floor(source_size[1] * s + 1e-6) - 2)
    before = (out / "b.jpg").stat().st_mtime_ns
    again = run("--image_dir", photos, "--output_dir", out, "--min_angle", 10, "--max_angle", 30, "--num_workers", 1)
    assert again.returncode == 0, again.stderr
    assert "images=4, rotated=0, already_rotated=2, unreadable=1, name_clash=1" in again.stderr
    assert (out / "b.jpg").stat().st_mtime_ns == before
    assert json.loads((out / "rotations.json").read_text()) == manifest
    # Other settings into the same folder: refused, nothing written.
    other = run("--image_dir", photos, "--output_dir", out, "--min_angle", 10, "--max_angle", 35, "--num_workers", 1)
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert other.stderr.startswith(f"error: {out / 'rotations.json'}: written with ") and "max_angle': 35.0" in other.stderr
    assert json.loads((out / "rotations.json").read_text()) == manifest
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no temporary files left


def test_cli_user_errors_are_one_line(tmp_path):
    missing, empty, out = tmp_path / "nowhere", tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.jpg")
    cases = [
        (["--image_dir", missing], f"error: --image_dir {missing}: not a folder"),
        (["--image_dir", empty], f"error: --image_dir {empty}: no images (.jpg, .jpeg, .png, .bmp)"),
        (["--image_dir", tmp_path / "photos", "--min_angle", 30, "--max_angle", 20],
         "error: --min_angle 30.0, --max_angle 20.0: need 0 <= min <= max <= 90"),
        (["--image_dir", tmp_path / "photos", "--max_angle", "nan"],
         "error: --min_angle 5.0, --max_angle nan: need 0 <= min <= max <= 90"),
    ]
    for args, line in cases:
        result = run(*args, "--output_dir", out)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [line], result.stderr
    assert not out.exists()


def test_help_runs_as_a_script():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert "--max_angle" in result.stdout and "--image_dir" in result.stdout
