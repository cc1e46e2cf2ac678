"""Tests for src/datasets/image_io.py's read_checked_jpeg (the converters' read-and-check step)."""
import collections
import io
import logging

import numpy as np
from PIL import Image

from src.datasets.image_io import encode_jpeg, read_checked_jpeg

LOGGER = logging.getLogger("test_image_io")


def test_read_checked_jpeg_passes_jpegs_reencodes_pngs_and_skips_the_rest(tmp_path, caplog):
    pixels = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    jpeg = tmp_path / "a.jpg"
    jpeg.write_bytes(encode_jpeg(pixels))
    png = tmp_path / "b.png"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    png.write_bytes(buffer.getvalue())
    corrupt = tmp_path / "c.jpg"
    corrupt.write_bytes(jpeg.read_bytes()[:100])
    counts = collections.Counter()

    checked = read_checked_jpeg(str(jpeg), counts, LOGGER)
    assert (checked.width, checked.height, checked.reencoded) == (20, 12, False)
    assert checked.data == jpeg.read_bytes()
    checked = read_checked_jpeg(str(png), counts, LOGGER)
    assert checked.reencoded and checked.data[:3] == b"\xff\xd8\xff"
    assert not counts

    with caplog.at_level(logging.WARNING, logger="test_image_io"):
        assert read_checked_jpeg(str(tmp_path / "missing.jpg"), counts, LOGGER) is None
        assert read_checked_jpeg(str(corrupt), counts, LOGGER) is None
    assert counts == {"missing": 1, "corrupt": 1}
    messages = [record.getMessage() for record in caplog.records if record.name == "test_image_io"]
    assert len(messages) == 2
    assert "missing.jpg: skipped, cannot read image" in messages[0]
    assert messages[1].startswith("skipped: ") and "c.jpg: cannot decode image" in messages[1]
