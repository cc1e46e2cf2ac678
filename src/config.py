"""JSON training/export recipes -> validated, frozen, nested dataclasses.

A recipe is a JSON object with one group per concern (see configs/config.json). Every key of
every group is required, unknown keys are rejected, and each value is type checked, so a typo
is a one-line `ConfigError` naming the file and the key instead of a silently ignored setting.
Values are also range checked (a positive learning rate, a momentum in [0, 1), thresholds in
(0, 1], ...; see `_validate`), so a bad value stops before anything is built or written.
"""
import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from typing import Optional

from src.cli import UserError


# The network's layers, as the first component of the upstream variable names (what
# training.frozen_layers may name; tests/test_config.py keeps it equal to FaceBoxes's).
LAYERS = ("conv1", "conv2", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "inception1", "inception2",
          "inception3", "prediction_layers")


class ConfigError(UserError, ValueError):
    """A recipe file is missing a key, has an unknown key, or a value of the wrong type or range."""


@dataclass(frozen=True)
class MatchingConfig:
    threshold: float  # IoU for a positive anchor (0.35 upstream)


@dataclass(frozen=True)
class OHEMParams:
    """Hard example mining settings; the defaults are the upstream config.json's values.

    The one home of these settings: a recipe's "ohem" group is loaded into this class (every
    key still required there), and src/losses_and_ohem.py takes it as it is.
    """
    loss_to_use: str = "classification"  # 'classification' or 'both'
    num_hard_examples: int = 500
    nms_threshold: float = 0.99
    max_negatives_per_positive: float = 3.0
    min_negatives_per_image: int = 30


OHEMConfig = OHEMParams  # the recipe group's name


@dataclass(frozen=True)
class LossConfig:
    localization_loss_weight: float
    classification_loss_weight: float
    weight_decay: float  # L2 on conv kernels: weight_decay * sum(w^2) / 2
    # Weight of the distillation losses (src/losses_and_ohem.py distillation_losses) towards
    # training.teacher_checkpoint's outputs; 0: no teacher.
    distillation_weight: float


@dataclass(frozen=True)
class PostprocessingConfig:
    score_threshold: float
    iou_threshold: float
    max_boxes: int


@dataclass(frozen=True)
class InputConfig:
    train_dataset: str  # folder of shard-NNNN.tfrecords
    val_dataset: str
    image_size: tuple  # (height, width) of training images
    batch_size: int  # global batch (split across replicas)
    shuffle_buffer: int
    # null: the upstream crop rule (a face at least 0.4 inside the crop stays a face, clipped; a
    # face less inside is dropped, i.e. trained as background). A number v in (0, 1]: faces less
    # than v inside the crop become ignore regions (src/input_pipeline/augmentations.py).
    partial_face_ignore_below: Optional[float]
    # 0: face boxes as labelled. A number f in (0, 1]: every face box's top edge moves up by f of
    # its height before augmentation (the forehead; src/input_pipeline/augmentations.py).
    face_box_top_extension: float


@dataclass(frozen=True)
class TrainingConfig:
    model_dir: str
    num_steps: int
    lr_boundaries: tuple
    lr_values: tuple
    momentum: float
    strategy: str  # 'default', 'mirrored' or 'multi_worker_mirrored'
    mixed_precision: bool
    xla: bool
    log_every: int
    checkpoint_every: int
    eval_every: int
    max_checkpoints: int
    num_eval_images: int  # 0: the whole val set
    init_from_upstream_checkpoint: Optional[str]
    # true: batch norm trains with the loaded moving statistics and never updates them
    # (src/network.py freeze_batch_norm_statistics), for fine-tuning; false: the upstream's batch norm.
    freeze_batch_norm_statistics: bool
    # Layers whose weights do not train (first component of the upstream variable names, e.g.
    # "conv1"; src/training.py trained_variables); [] trains every layer.
    frozen_layers: tuple
    # An upstream-format checkpoint of the same network (e.g. the converted WIDER weights) whose
    # outputs the model is distilled towards, with weight loss.distillation_weight; null: none.
    teacher_checkpoint: Optional[str]
    seed: Optional[int]


@dataclass(frozen=True)
class Config:
    matching: MatchingConfig
    ohem: OHEMConfig
    loss: LossConfig
    postprocessing: PostprocessingConfig
    input: InputConfig
    training: TrainingConfig


def _check_value(value, annotation, where):
    origin = typing.get_origin(annotation)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _check_value(value, inner, where)
    if annotation is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def _build(cls, data, path, prefix=""):
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {prefix.rstrip('.') or 'top level'}: expected an object, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{path}: unknown key '{prefix}{unknown[0]}'")
    values = {}
    for name in names:
        if name not in data:
            raise ConfigError(f"{path}: missing key '{prefix}{name}'")
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            values[name] = _build(annotation, data[name], path, f"{prefix}{name}.")
        else:
            values[name] = _check_value(data[name], annotation, f"{path}: {prefix}{name}")
    return cls(**values)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(config, path):
    """Checks the values' ranges; raises ConfigError ``<file>: <group>.<key>: <problem>``."""
    def fail(key, problem):
        raise ConfigError(f"{path}: {key}: {problem}")

    def check(key, value, ok, problem):
        if not ok(value):
            fail(key, f"{problem}, got {value!r}")

    def positive(value):
        return value > 0

    def non_negative(value):
        return value >= 0

    def unit_open_closed(value):  # (0, 1]
        return 0 < value <= 1

    if config.ohem.loss_to_use not in ("classification", "both"):
        fail("ohem.loss_to_use", "must be 'classification' or 'both'")
    if config.training.strategy not in ("default", "mirrored", "multi_worker_mirrored"):
        fail("training.strategy", "must be 'default', 'mirrored' or 'multi_worker_mirrored'")
    if len(config.training.lr_values) != len(config.training.lr_boundaries) + 1:
        fail("training.lr_values", "needs exactly one more value than lr_boundaries")
    if len(config.input.image_size) != 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in config.input.image_size):
        fail("input.image_size", "must be [height, width] of positive integers")

    t = config.training
    if not all(_is_number(value) and value > 0 for value in t.lr_values):
        fail("training.lr_values", f"must be positive numbers, got {list(t.lr_values)!r}")
    boundaries = list(t.lr_boundaries)
    if not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in boundaries) or any(
            later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
        fail("training.lr_boundaries", f"must be strictly increasing positive integers (steps), got {boundaries!r}")
    check("training.num_steps", t.num_steps, positive, "must be positive")
    check("training.momentum", t.momentum, lambda m: 0 <= m < 1, "must be in [0, 1)")
    check("training.log_every", t.log_every, positive, "must be positive")
    check("training.checkpoint_every", t.checkpoint_every, positive, "must be positive")
    check("training.eval_every", t.eval_every, non_negative, "must be >= 0 (0: no evaluation)")
    check("training.max_checkpoints", t.max_checkpoints, positive, "must be positive")
    check("training.num_eval_images", t.num_eval_images, non_negative, "must be >= 0 (0: the whole val set)")
    unknown = [name for name in t.frozen_layers if name not in LAYERS]
    if unknown:
        fail("training.frozen_layers", f"{unknown[0]!r} is no layer (layers: {', '.join(LAYERS)})")

    check("input.batch_size", config.input.batch_size, positive, "must be positive")
    check("input.shuffle_buffer", config.input.shuffle_buffer, positive, "must be positive")
    if config.input.partial_face_ignore_below is not None:
        check("input.partial_face_ignore_below", config.input.partial_face_ignore_below, unit_open_closed,
              "must be null or in (0, 1]")
    check("input.face_box_top_extension", config.input.face_box_top_extension, lambda f: 0 <= f <= 1,
          "must be in [0, 1]")

    check("matching.threshold", config.matching.threshold, unit_open_closed, "must be in (0, 1]")
    o = config.ohem
    check("ohem.num_hard_examples", o.num_hard_examples, positive, "must be positive")
    check("ohem.nms_threshold", o.nms_threshold, unit_open_closed, "must be in (0, 1]")
    check("ohem.max_negatives_per_positive", o.max_negatives_per_positive, non_negative, "must be >= 0")
    check("ohem.min_negatives_per_image", o.min_negatives_per_image, non_negative, "must be >= 0")

    for key in ("localization_loss_weight", "classification_loss_weight", "weight_decay", "distillation_weight"):
        check(f"loss.{key}", getattr(config.loss, key), non_negative, "must be >= 0")
    if config.loss.distillation_weight > 0 and not t.teacher_checkpoint:
        fail("loss.distillation_weight", "is positive but training.teacher_checkpoint is null")
    if t.teacher_checkpoint and config.loss.distillation_weight == 0:
        fail("training.teacher_checkpoint", "is set but loss.distillation_weight is 0 (the teacher would run for nothing)")

    p = config.postprocessing
    check("postprocessing.score_threshold", p.score_threshold, lambda v: 0 <= v <= 1, "must be in [0, 1]")
    check("postprocessing.iou_threshold", p.iou_threshold, unit_open_closed, "must be in (0, 1]")
    check("postprocessing.max_boxes", p.max_boxes, positive, "must be positive")


def load_config(path):
    """Loads and validates a recipe.

    Args:
        path: a JSON file.

    Returns:
        a frozen Config.

    Raises:
        ConfigError: naming the file and the key that is missing, unknown, mistyped or out of range.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    config = _build(Config, data, str(path))
    _validate(config, path)
    return config
