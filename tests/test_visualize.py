"""Tests for src/visualize/: anchor read-out, drawing helpers and the three PNG subcommands.

Box conventions as in the package: anchors / pipeline boxes normalized [ymin, xmin, ymax, xmax],
FaceDetector boxes pixel [ymin, xmin, ymax, xmax], drawing in pixel [x1, y1, x2, y2].
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from src import visualize
from src.cli import UserError
from src.datasets.image_io import encode_jpeg
from src.tfrecords import AtomicShardWriter, encode_example, shard_name, write_manifest

GREEN = np.array(visualize.BOX_COLOUR)


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.height, image.width


def test_anchor_groups_of_the_centre_cell_at_1024():
    groups = visualize.anchor_cell_groups(1024)
    assert [len(g.boxes) for g in groups] == [16, 4, 1, 1, 1]
    assert [g.scale for g in groups] == [32, 64, 128, 256, 512]
    assert [g.feature_map for g in groups] == [0, 0, 0, 1, 2]
    assert [g.cell for g in groups] == [(15, 15), (15, 15), (15, 15), (7, 7), (3, 3)]
    # Map-0 cell (15, 15) is centred at 496; 32-px sub-centres at offsets (k + 0.5) / 4 - 0.5 of 32 px.
    small = groups[0]
    assert sorted(set(small.centres[:, 0])) == [484, 492, 500, 508]
    assert sorted(set(small.centres[:, 1])) == [484, 492, 500, 508]
    np.testing.assert_allclose(small.boxes, np.concatenate([small.centres - 16, small.centres + 16], axis=1),
                               atol=1e-3)
    # Emission order: x sub-index outer, y inner.
    np.testing.assert_allclose(small.centres[:4], [[484, 484], [484, 492], [484, 500], [484, 508]])
    assert sorted(set(groups[1].centres[:, 0])) == [480, 512]
    np.testing.assert_allclose(groups[2].boxes, [[432, 432, 560, 560]], atol=1e-3)
    np.testing.assert_allclose(groups[3].boxes, [[352, 352, 608, 608]], atol=1e-3)
    np.testing.assert_allclose(groups[4].boxes, [[192, 192, 704, 704]], atol=1e-3)


def test_anchor_groups_are_clipped_like_the_generator_and_validated():
    groups = visualize.anchor_cell_groups(512, cell=(0, 0))
    np.testing.assert_allclose(groups[2].boxes, [[0, 0, 80, 80]], atol=1e-3)  # 128 px around (16, 16)
    np.testing.assert_allclose(groups[2].centres, [[16, 16]])
    with pytest.raises(ValueError, match="outside the 16x16 grid"):
        visualize.anchor_cell_groups(512, cell=(16, 0))
    with pytest.raises(ValueError, match="multiple of 128"):
        visualize.anchor_cell_groups(1000)


def test_box_conversions():
    np.testing.assert_allclose(visualize.normalized_to_pixel_xyxy([[0.1, 0.2, 0.5, 1.0]], 100, 200),
                               [[40, 10, 200, 50]])
    np.testing.assert_allclose(visualize.pixel_yxyx_to_xyxy(np.zeros((2, 3, 4)) + [1, 2, 3, 4]),
                               np.zeros((2, 3, 4)) + [2, 1, 4, 3])
    with pytest.raises(ValueError, match=r"\[\.\.\., 4\]"):
        visualize.normalized_to_pixel_xyxy(np.zeros((3, 5)), 10, 10)


def test_draw_boxes_puts_edges_on_the_box_pixels_and_leaves_the_input_alone():
    image = np.zeros((20, 20, 3), np.uint8)
    out = visualize.draw_boxes(image, [[2, 3, 10, 12]], thickness=1)
    assert not image.any()
    drawn = np.all(out == GREEN, axis=2)
    assert drawn[3, 2] and drawn[11, 9] and drawn[3, 9] and drawn[11, 2]
    assert not drawn[3, 10] and not drawn[12, 9] and not drawn[6, 6]
    assert drawn.sum() == 2 * 8 + 2 * 7  # perimeter of an 8 x 9 pixel box


def test_tile_grid_layout():
    tiles = [np.full((10, 20, 3), k * 50, np.uint8) for k in range(1, 4)]
    grid = visualize.tile_grid(tiles, cols=2, gap=2)
    assert grid.shape == (2 * 10 + 3 * 2, 2 * 20 + 3 * 2, 3)
    assert grid[2, 2, 0] == 50 and grid[2, 24, 0] == 100 and grid[14, 2, 0] == 150
    assert grid[14, 24, 0] == 255 and grid[0, 0, 0] == 255  # empty cell, gap
    with pytest.raises(ValueError, match="tile 1 has size"):
        visualize.tile_grid([tiles[0], np.zeros((5, 5, 3), np.uint8)], cols=2)


def test_anchors_command_writes_a_png_of_the_figure_size(tmp_path):
    output = tmp_path / "anchors.png"
    assert visualize.main(["anchors", "--output", str(output), "--image_size", "256", "--dpi", "40"]) == 0
    assert _png_size(output) == (6 * 40, 12 * 40)
    assert os.listdir(tmp_path) == ["anchors.png"]  # no temporary file left
    background = tmp_path / "bg.jpg"
    background.write_bytes(encode_jpeg(np.full((50, 70, 3), 90, np.uint8)))
    full = tmp_path / "full.png"
    assert visualize.main(["anchors", "--output", str(full), "--image", str(background), "--dpi", "40",
                           "--colours", "0", "--cell", "0", "0"]) == 0
    with Image.open(full) as image:
        assert image.mode == "RGB" and image.size == (480, 240)


def test_commands_reject_bad_arguments(tmp_path):
    assert visualize.main(["anchors", "--output", str(tmp_path / "a.jpg")]) == 2
    assert visualize.main(["anchors", "--output", str(tmp_path / "a.png"), "--cell", "40", "0"]) == 2
    assert visualize.main(["anchors", "--output", str(tmp_path / "a.png"), "--colours", "300"]) == 2
    assert os.listdir(tmp_path) == []


def test_python_dash_m_runs_the_package_and_output_has_no_default(tmp_path, capsys):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "src.visualize", *args], cwd=root, capture_output=True,
                              text=True, timeout=300)

    output = tmp_path / "anchors.png"
    result = run("anchors", "--output", str(output), "--image_size", "128", "--dpi", "20")
    assert result.returncode == 0, result.stderr
    assert _png_size(output) == (6 * 20, 12 * 20)
    assert run("anchors", "--output", str(tmp_path / "a.jpg")).returncode == 2
    # --output is required, so no command writes over a tracked picture (media/pictures) by default.
    minimal = {"anchors": [], "augmentations": ["--tfrecords", "x"], "detections": ["--model", "m", "--images", "a"]}
    for command, rest in minimal.items():
        assert visualize.build_parser().parse_args([command, *rest, "--output", "o.png"]).output == "o.png"
        with pytest.raises(UserError, match="the following arguments are required: --output"):
            visualize.build_parser().parse_args([command, *rest])


def _write_shard(folder, count=3):
    """One shard of `count` 96x128 images, image k with k faces (normalized ymin, xmin, ymax, xmax)."""
    rng = np.random.default_rng(0)
    os.makedirs(folder)
    with AtomicShardWriter(os.path.join(folder, shard_name(0))) as writer:
        for k in range(count):
            image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
            boxes = np.array([[0.2, 0.1 + 0.25 * j, 0.6, 0.3 + 0.25 * j] for j in range(k)]).reshape(-1, 4)
            writer.write(encode_example(f"img{k}.jpg", encode_jpeg(image), boxes))
    write_manifest(folder, [(writer.path, writer.num_written)])


def test_augmentations_command_and_tiles(tmp_path):
    shards = str(tmp_path / "shards")
    _write_shard(shards)
    output = tmp_path / "out" / "aug.png"
    assert visualize.main(["augmentations", "--tfrecords", shards, "--rows", "2", "--cols", "3",
                           "--image_size", "64", "--output", str(output)]) == 0
    gap = visualize.TILE_GAP
    assert _png_size(output) == (2 * 64 + 3 * gap, 3 * 64 + 4 * gap)
    tiles = visualize.augmentation_tiles([os.path.join(shards, shard_name(0))], 4, (48, 40), seed=5)
    again = visualize.augmentation_tiles(shards, 4, (48, 40), seed=5)
    assert len(tiles) == 4 and all(t.shape == (48, 40, 3) and t.dtype == np.uint8 for t in tiles)
    for a, b in zip(tiles, again):
        np.testing.assert_array_equal(a, b)
    # Images 1 and 2 have faces: boxes are drawn in pure green on some tiles (noise images rarely
    # hold that exact colour, and never on a whole box edge).
    assert any(np.all(t == GREEN, axis=2).sum() >= 20 for t in tiles)
    assert visualize.main(["augmentations", "--tfrecords", str(tmp_path / "nothing"),
                           "--output", str(tmp_path / "x.png")]) == 2


def test_detection_tiles_draw_the_detector_boxes_where_they_belong(tmp_path):
    good = tmp_path / "wide.png"
    Image.fromarray(np.full((100, 200, 3), 40, np.uint8)).save(good)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    named, failures = visualize.read_images([str(bad), str(good)])
    assert len(failures) == 1 and failures[0].startswith(f"{bad}: cannot decode image")
    assert [name for name, _ in named] == ["wide.png"]
    calls = []

    def fake_detector(image, score_threshold):
        calls.append((image.shape, image.dtype, score_threshold))
        return np.array([[20.0, 40.0, 60.0, 120.0]]), np.array([0.9])  # pixel ymin, xmin, ymax, xmax

    tall = ("tall", np.full((100, 50, 3), 40, np.uint8))
    tiles = visualize.detection_tiles(fake_detector, named + [tall], 0.3, 100)
    assert calls == [((100, 200, 3), np.uint8, 0.3), ((100, 50, 3), np.uint8, 0.3)]
    # Tiles are 100 wide and as tall as the tallest image needs (100 / 50 x 100 = 200).
    assert [t.shape for t in tiles] == [(200, 100, 3), (200, 100, 3)]
    # The wide image: scale 0.5, centred vertically (top 75); the box lands at x 20..60, y 85..105.
    drawn = np.all(tiles[0] == GREEN, axis=2)
    assert drawn[95, 20] and drawn[95, 59] and drawn[104, 40]
    assert not drawn[95, 30:50].any() and not drawn[110:, :].any()


def _write_clip(folder):
    """A 4-frame 32x24 MJPG clip whose frame k is uniformly red 60 k; returns its path."""
    import cv2

    path = str(folder / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    for k in range(4):
        writer.write(np.full((24, 32, 3), (0, 0, 60 * k), np.uint8))  # BGR
    writer.release()
    return path


def test_read_video_frames(tmp_path):
    path = _write_clip(tmp_path)
    frames = visualize.read_video_frames(path, [3, 1])
    assert [f.shape for f in frames] == [(24, 32, 3)] * 2
    assert abs(int(frames[0][..., 0].mean()) - 180) < 8 and abs(int(frames[1][..., 0].mean()) - 60) < 8
    with pytest.raises(ValueError, match="frame 9 is past the end of the video \\(4 frames\\)"):
        visualize.read_video_frames(path, [0, 9])
    with pytest.raises(ValueError, match="cannot open the video"):
        visualize.read_video_frames(str(tmp_path / "missing.mp4"), [0])


def test_detections_command_with_an_untrained_frozen_graph(tmp_path):
    from src import export
    from src.detector import FaceBoxes

    export.save_saved_model(FaceBoxes(seed=0), str(tmp_path / "saved"), 0.05, 0.3, 20)
    model_path = str(tmp_path / "model.pb")
    export.write_graph_def(export.freeze_saved_model(str(tmp_path / "saved")), model_path)
    images = []
    for k, shape in enumerate([(60, 80, 3), (90, 50, 3)]):
        path = tmp_path / f"img{k}.jpg"
        path.write_bytes(encode_jpeg(np.random.default_rng(k).integers(0, 255, shape, dtype=np.uint8)))
        images.append(str(path))
    output = tmp_path / "dets.png"
    assert visualize.main(["detections", "--model", model_path, "--images", *images, str(tmp_path / "missing.jpg"),
                           "--tile_width", "64", "--cols", "2", "--score_threshold", "0.0",
                           "--output", str(output)]) == 0
    gap = visualize.TILE_GAP
    tile_height = int(round(64 * 90 / 50))  # the tallest image sets the tile height
    assert _png_size(output) == (tile_height + 2 * gap, 2 * 64 + 3 * gap)
    video = _write_clip(tmp_path)
    assert visualize.main(["detections", "--model", model_path, "--video", video, "--frames", "0", "2", "3",
                           "--tile_width", "32", "--cols", "2", "--output", str(output), "--overwrite"]) == 0
    assert _png_size(output) == (2 * 24 + 3 * gap, 2 * 32 + 3 * gap)
    assert visualize.main(["detections", "--model", model_path, "--video", video, "--frames", "7",
                           "--output", str(tmp_path / "late.png")]) == 2
    assert visualize.main(["detections", "--model", model_path, "--images", str(tmp_path / "missing.jpg"),
                           "--output", str(tmp_path / "none.png")]) == 2
    assert not (tmp_path / "none.png").exists()


def test_detections_command_passes_the_precision(tmp_path, monkeypatch):
    import src.frozen_graph

    made = []

    class Recorder(src.frozen_graph.FrozenGraphDetector):
        def __init__(self, path, precision="float32"):
            made.append(precision)
            super().__init__(path, precision)

    monkeypatch.setattr(src.frozen_graph, "FrozenGraphDetector", Recorder)
    image = tmp_path / "img.jpg"
    image.write_bytes(encode_jpeg(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)))
    model = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "model", "facebox.pb")
    for precision in ("bfloat16", None):
        extra = ["--precision", precision] if precision else []
        assert visualize.main(["detections", "--model", model, "--images", str(image),
                               "--output", str(tmp_path / "d.png"), "--overwrite", *extra]) == 0
    assert made == ["bfloat16", "float32"]
