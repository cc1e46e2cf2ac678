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


def _set(group, key, value):
    return lambda r: r[group].update({key: value})


@pytest.mark.parametrize("group, key, value, message", [
    ("training", "lr_values", [0.004, -0.0004, 0.00004], "must be positive numbers"),
    ("training", "lr_values", [0.004, 0.0, 0.00004], "must be positive numbers"),
    ("training", "lr_boundaries", [200000, 160000], "must be strictly increasing positive integers"),
    ("training", "lr_boundaries", [160000, 160000], "must be strictly increasing positive integers"),
    ("training", "lr_boundaries", [0, 160000], "must be strictly increasing positive integers"),
    ("training", "lr_boundaries", [1.5, 160000], "must be strictly increasing positive integers"),
    ("training", "num_steps", 0, "must be positive"),
    ("training", "momentum", 1.0, "must be in [0, 1)"),
    ("training", "momentum", -0.1, "must be in [0, 1)"),
    ("training", "log_every", 0, "must be positive"),
    ("training", "checkpoint_every", -5, "must be positive"),
    ("training", "eval_every", -1, "must be >= 0"),
    ("training", "max_checkpoints", 0, "must be positive"),
    ("training", "num_eval_images", -1, "must be >= 0"),
    ("input", "batch_size", 0, "must be positive"),
    ("input", "shuffle_buffer", 0, "must be positive"),
    ("input", "partial_face_ignore_below", 0.0, "must be null or in (0, 1]"),
    ("input", "partial_face_ignore_below", 1.5, "must be null or in (0, 1]"),
    ("input", "face_box_top_extension", -0.1, "must be in [0, 1]"),
    ("input", "face_box_top_extension", 1.5, "must be in [0, 1]"),
    ("input", "image_size", [1024, 0], "must be [height, width] of positive integers"),
    ("matching", "threshold", 0.0, "must be in (0, 1]"),
    ("matching", "threshold", 1.5, "must be in (0, 1]"),
    ("ohem", "nms_threshold", 0.0, "must be in (0, 1]"),
    ("ohem", "nms_threshold", 1.01, "must be in (0, 1]"),
    ("ohem", "num_hard_examples", 0, "must be positive"),
    ("ohem", "max_negatives_per_positive", -1.0, "must be >= 0"),
    ("ohem", "min_negatives_per_image", -1, "must be >= 0"),
    ("loss", "localization_loss_weight", -1.0, "must be >= 0"),
    ("loss", "classification_loss_weight", -0.5, "must be >= 0"),
    ("loss", "weight_decay", -0.001, "must be >= 0"),
    ("postprocessing", "score_threshold", 1.5, "must be in [0, 1]"),
    ("postprocessing", "score_threshold", -0.05, "must be in [0, 1]"),
    ("postprocessing", "iou_threshold", 0.0, "must be in (0, 1]"),
    ("postprocessing", "max_boxes", 0, "must be positive"),
])
def test_out_of_range_values_name_the_file_and_key(tmp_path, group, key, value, message):
    data = recipe()
    data[group][key] = value
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    text = str(error.value)
    assert text.startswith(f"{path}: {group}.{key}: {message}") and "\n" not in text, text


@pytest.mark.parametrize("group, key, value", [
    ("training", "momentum", 0.0), ("training", "eval_every", 0), ("training", "num_eval_images", 0),
    ("training", "lr_boundaries", []), ("ohem", "max_negatives_per_positive", 0.0),
    ("ohem", "min_negatives_per_image", 0), ("loss", "weight_decay", 0.0), ("loss", "localization_loss_weight", 0),
    ("matching", "threshold", 1.0), ("ohem", "nms_threshold", 1.0), ("postprocessing", "score_threshold", 0.0),
    ("postprocessing", "score_threshold", 1.0), ("postprocessing", "iou_threshold", 1.0),
])
def test_values_at_the_edges_of_their_ranges_are_accepted(tmp_path, group, key, value):
    data = recipe()
    data[group][key] = value
    if key == "lr_boundaries":
        data["training"]["lr_values"] = [0.004]
    load_config(write(tmp_path, data))


def test_non_finite_numbers_and_unreadable_files(tmp_path):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(recipe()).replace('"momentum": 0.9', '"momentum": NaN'))
    with pytest.raises(ConfigError, match=r"nan.json: training.momentum: expected a finite number, got nan"):
        load_config(str(path))
    latin = tmp_path / "latin1.json"
    latin.write_bytes(json.dumps(recipe()).replace("models/run00", "mod\u00e8les").encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.json: not UTF-8 text"):
        load_config(str(latin))
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(str(tmp_path))  # a folder


def test_config_error_is_a_one_line_user_error():
    from src.cli import USER_ERRORS
    assert issubclass(ConfigError, USER_ERRORS) and issubclass(ConfigError, ValueError)


def test_frozen_layers_name_the_networks_layers(tmp_path):
    import json

    from src.config import LAYERS, ConfigError, load_config
    from src.detector import FaceBoxes
    assert sorted(LAYERS) == sorted({name.split("/")[0] for name in FaceBoxes(seed=0).named_variables()})
    recipe = json.loads(open(os.path.join(ROOT, "configs", "sample.json")).read())
    recipe["training"]["frozen_layers"] = ["conv1", "conv9"]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(ConfigError, match=r"training.frozen_layers: 'conv9' is no layer \(layers: conv1, conv2, "):
        load_config(str(path))


@pytest.mark.parametrize("weight, teacher, message", [
    (1.0, None, "loss.distillation_weight: is positive but training.teacher_checkpoint is null"),
    (0.0, "models/wider_weights.ckpt", "training.teacher_checkpoint: is set but loss.distillation_weight is 0"),
])
def test_distillation_needs_both_a_weight_and_a_teacher(tmp_path, weight, teacher, message):
    recipe = json.loads(open(os.path.join(ROOT, "configs", "sample.json")).read())
    recipe["loss"]["distillation_weight"] = weight
    recipe["training"]["teacher_checkpoint"] = teacher
    path = tmp_path / "c.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))
