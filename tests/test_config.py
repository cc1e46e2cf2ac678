import dataclasses
import json
import os

import pytest

from src.config import ConfigError, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recipe():
    with open(os.path.join(ROOT, "configs", "config.json")) as f:
        return json.load(f)


def write(tmp_path, data):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_shipped_recipes_load_with_upstream_values():
    config = load_config(os.path.join(ROOT, "configs", "config.json"))
    assert config.matching.threshold == 0.35
    assert (config.ohem.num_hard_examples, config.ohem.nms_threshold) == (500, 0.99)
    assert (config.ohem.max_negatives_per_positive, config.ohem.min_negatives_per_image) == (3.0, 30)
    assert config.input.image_size == (1024, 1024) and config.input.batch_size == 16
    assert config.training.lr_boundaries == (160000, 200000)
    assert config.training.lr_values == (0.004, 0.0004, 0.00004)
    assert config.training.num_steps == 240000 and config.loss.weight_decay == 0.001
    assert (config.postprocessing.score_threshold, config.postprocessing.iou_threshold,
            config.postprocessing.max_boxes) == (0.05, 0.3, 200)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.num_steps = 1
    load_config(os.path.join(ROOT, "configs", "sample.json"))


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["ohem"].pop("nms_threshold"), "missing key 'ohem.nms_threshold'"),
    (lambda r: r["training"].update(num_step=5), "unknown key 'training.num_step'"),
    (lambda r: r.update(extra={}), "unknown key 'extra'"),
    (lambda r: r["input"].update(batch_size="16"), "input.batch_size: expected an integer"),
    (lambda r: r["training"].update(xla="yes"), "training.xla: expected bool"),
    (lambda r: r["loss"].update(weight_decay=True), "loss.weight_decay: expected a number"),
    (lambda r: r["training"].update(lr_values=[0.1]), "training.lr_values: needs exactly one more"),
    (lambda r: r["ohem"].update(loss_to_use="all"), "ohem.loss_to_use: must be"),
    (lambda r: r["training"].update(strategy="tpu"), "training.strategy: must be"),
])
def test_bad_recipes_name_the_file_and_key(tmp_path, mutate, message):
    data = recipe()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    text = str(error.value)
    assert text.startswith(path) and message in text and "\n" not in text


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(str(tmp_path / "nope.json"))
    path = tmp_path / "broken.json"
    path.write_text('{"matching": ')
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_config(str(path))
