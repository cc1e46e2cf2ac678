"""The training step: losses, L2 weight decay and the SGD update.

Box convention of the batches: [ymin, xmin, ymax, xmax] normalized, zero padded after
num_boxes (see src/input_pipeline).
"""
import tensorflow as tf

from src.losses_and_ohem import OHEMParams
from src.training_target_creation import MATCHING_THRESHOLD


def make_optimizer(lr_boundaries, lr_values, momentum):
    """SGD with Nesterov momentum and a piecewise-constant learning rate (upstream recipe).

    Args:
        lr_boundaries: steps at which the rate changes (none: a constant rate).
        lr_values: len(lr_boundaries) + 1 rates.
        momentum: float.

    Returns:
        a tf.keras.optimizers.SGD; its `iterations` counter is the global step.
    """
    if not lr_boundaries:  # (Keras's piecewise schedule needs at least one boundary)
        return tf.keras.optimizers.SGD(learning_rate=float(lr_values[0]), momentum=momentum, nesterov=True)
    schedule = tf.keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(b) for b in lr_boundaries], [float(v) for v in lr_values])
    return tf.keras.optimizers.SGD(learning_rate=schedule, momentum=momentum, nesterov=True)


def trained_variables(model, frozen_layers=()):
    """The variables an optimizer updates: the model's trainable ones minus the frozen layers'.

    Args:
        model: a FaceBoxes.
        frozen_layers: layer names, the first component of the upstream variable names
            (`FaceBoxes.named_variables`: "conv1", "inception2", "prediction_layers", ...).

    Returns:
        a list of tf.Variable, in the order of `model.trainable_variables`.

    Raises:
        ValueError: a name that is no layer of the model (naming the layers there are).
    """
    names = model.named_variables()
    layers = sorted({name.split("/")[0] for name in names})
    unknown = sorted(set(frozen_layers) - set(layers))
    if unknown:
        raise ValueError(f"training.frozen_layers: {unknown[0]!r} is no layer of the model "
                         f"(layers: {', '.join(layers)})")
    frozen = {id(variable) for name, variable in names.items() if name.split("/")[0] in set(frozen_layers)}
    return [variable for variable in model.trainable_variables if id(variable) not in frozen]


def regularization_loss(kernels, weight_decay):
    """L2 weight decay: weight_decay * sum(w^2) / 2 over the given kernels (a float scalar)."""
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels])


def compute_losses(model, batch, loss_weights, ohem_params=OHEMParams(), matching_threshold=MATCHING_THRESHOLD,
                   weight_decay=0.0, global_batch_scale=1.0, teacher=None, distillation_weight=0.0):
    """Forward pass and every loss term for one (per-replica) batch.

    Args:
        model: a FaceBoxes.
        batch: a dict with 'images' float32 [B, H, W, 3] in [0, 1], 'boxes' float32 [B, N, 4],
            'num_boxes' int32 [B]; optionally 'ignore_boxes' float32 [B, M, 4] and
            'num_ignore' int32 [B] (ignore regions).
        loss_weights: (localization_weight, classification_weight).
        ohem_params: an OHEMParams.
        matching_threshold: float.
        weight_decay: float.
        global_batch_scale: the per-replica losses are multiplied by this (1 / replicas) so
            that summing gradients over replicas averages them.
        teacher: an optional FaceBoxes to distill from (`FaceBoxes.loss`); its two
            distillation losses enter the total with `distillation_weight` each.
        distillation_weight: float.

    Returns:
        a dict of float scalars 'total_loss', 'localization_loss', 'classification_loss',
        'regularization_loss', plus the int statistics of `FaceBoxes.loss` (and, with a
        teacher, its distillation losses).
    """
    out = model.loss(batch["images"], batch["boxes"], batch["num_boxes"], ohem_params,
                     matching_threshold, batch.get("ignore_boxes"), batch.get("num_ignore"), teacher)
    reg = regularization_loss(model.regularized_kernels(), weight_decay)
    total = (loss_weights[0] * out["localization_loss"] + loss_weights[1] * out["classification_loss"]
             + reg)
    if teacher is not None:
        total += distillation_weight * (out["distillation_classification_loss"]
                                        + out["distillation_localization_loss"])
    out["regularization_loss"] = reg
    out["total_loss"] = total
    out["scaled_loss"] = total * global_batch_scale
    return out


def train_step(model, optimizer, batch, loss_weights, ohem_params=OHEMParams(),
               matching_threshold=MATCHING_THRESHOLD, weight_decay=0.0, global_batch_scale=1.0,
               teacher=None, distillation_weight=0.0, variables=None):
    """One SGD step on one (per-replica) batch; see `compute_losses` for the arguments.
    `variables`: what the step updates (default: every trainable variable; see `trained_variables`).

    Returns:
        the dict of `compute_losses` (without 'scaled_loss').
    """
    variables = model.trainable_variables if variables is None else variables
    with tf.GradientTape() as tape:
        out = compute_losses(model, batch, loss_weights, ohem_params, matching_threshold,
                             weight_decay, global_batch_scale, teacher, distillation_weight)
        scaled = out.pop("scaled_loss")
        if hasattr(optimizer, "scale_loss"):  # Keras 3 LossScaleOptimizer (mixed precision)
            scaled = optimizer.scale_loss(scaled)
    gradients = tape.gradient(scaled, variables)
    optimizer.apply_gradients(zip(gradients, variables))
    return out
