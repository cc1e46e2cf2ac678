"""JSON training/export recipes -> validated, frozen, nested dataclasses.

A recipe is a JSON object with one group per concern (see configs/config.json). Every key of
every group is required, unknown keys are rejected, and each value is type checked, so a typo
is a one-line `ConfigError` naming the file and the key instead of a silently ignored setting.
"""
import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Optional


class ConfigError(ValueError):
    """A recipe file is missing a key, has an unknown key, or a value of the wrong type."""


@dataclass(frozen=True)
class MatchingConfig:
    threshold: float  # IoU for a positive anchor (0.35 upstream)


@dataclass(frozen=True)
class OHEMConfig:
    loss_to_use: str  # 'classification' or 'both'
    num_hard_examples: int
    nms_threshold: float
    max_negatives_per_positive: float
    min_negatives_per_image: int


@dataclass(frozen=True)
class LossConfig:
    localization_loss_weight: float
    classification_loss_weight: float
    weight_decay: float  # L2 on conv kernels: weight_decay * sum(w^2) / 2


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


def _validate(config, path):
    def fail(key, problem):
        raise ConfigError(f"{path}: {key}: {problem}")
    if config.ohem.loss_to_use not in ("classification", "both"):
        fail("ohem.loss_to_use", "must be 'classification' or 'both'")
    if config.training.strategy not in ("default", "mirrored", "multi_worker_mirrored"):
        fail("training.strategy", "must be 'default', 'mirrored' or 'multi_worker_mirrored'")
    if len(config.training.lr_values) != len(config.training.lr_boundaries) + 1:
        fail("training.lr_values", "needs exactly one more value than lr_boundaries")
    if len(config.input.image_size) != 2 or not all(
            isinstance(s, int) and s > 0 for s in config.input.image_size):
        fail("input.image_size", "must be [height, width] of positive integers")
    if config.input.batch_size <= 0:
        fail("input.batch_size", "must be positive")


def load_config(path):
    """Loads and validates a recipe.

    Args:
        path: a JSON file.

    Returns:
        a frozen Config.

    Raises:
        ConfigError: naming the file and the key that is missing, unknown or mistyped.
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    config = _build(Config, data, str(path))
    _validate(config, path)
    return config
