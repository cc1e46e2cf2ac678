"""The training loop: strategy, data, checkpoints, summaries, periodic evaluation.

Box convention: [ymin, xmin, ymax, xmax], normalized (batches, predictions and the AP
evaluator all share it).
"""
import logging
import os
import time

import numpy as np
import tensorflow as tf

from src.detector import FaceBoxes
from src.evaluation.ap import Evaluator
from src.input_pipeline.pipeline import build_dataset
from src.losses_and_ohem import OHEMParams
from src.training import make_optimizer, train_step

logger = logging.getLogger(__name__)

NUM_SUMMARY_IMAGES = 4  # validation images drawn with boxes into TensorBoard at each evaluation


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; a checkpoint of the last finished step was saved first.

    Attributes:
        step: int, the global step of the saved checkpoint.
        checkpoint: str, its path prefix.
    """

    def __init__(self, step, checkpoint):
        super().__init__(f"interrupted at step {step}; checkpoint saved: {checkpoint}")
        self.step = step
        self.checkpoint = checkpoint


def make_strategy(name):
    """'default' (one device), 'mirrored' (all local GPUs) or 'multi_worker_mirrored' (TF_CONFIG)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}")


def compute_dtype(mixed_precision):
    """float32, or the mixed-precision compute type of this machine (float16 on GPU, bfloat16 on CPU)."""
    if not mixed_precision:
        return tf.float32
    return tf.float16 if tf.config.list_physical_devices("GPU") else tf.bfloat16


def ohem_params(config):
    o = config.ohem
    return OHEMParams(o.loss_to_use, o.num_hard_examples, o.nms_threshold,
                      o.max_negatives_per_positive, o.min_negatives_per_image)


def make_predict_fn(model, postprocessing):
    """A tf.function: float images [1, H, W, 3] in [0, 1] (any size) -> predictions dict."""
    return tf.function(
        lambda images: model.predictions(images, postprocessing.score_threshold,
                                         postprocessing.iou_threshold, postprocessing.max_boxes),
        input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])


def evaluate(predict_fn, dataset, max_images=0):
    """AP@0.5 and the upstream's other metrics over an evaluation dataset.

    Args:
        predict_fn: from `make_predict_fn`.
        dataset: batches of one image (see src/input_pipeline).
        max_images: stop after this many images (0: all).

    Returns:
        metrics: the dict of `Evaluator.compute`.
        samples: up to NUM_SUMMARY_IMAGES tuples (image float [H, W, 3], predicted boxes [N, 4],
            ground-truth boxes [M, 4]) for pictures.
    """
    evaluator = Evaluator()
    samples = []
    for index, batch in enumerate(dataset):
        if max_images and index >= max_images:
            break
        out = predict_fn(batch["images"])
        n = int(out["num_boxes"][0])
        boxes = out["boxes"][0, :n].numpy()
        scores = out["scores"][0, :n].numpy()
        gt = batch["boxes"][0, :int(batch["num_boxes"][0])].numpy()
        evaluator.add(boxes, scores, gt, image_id=batch["filenames"][0].numpy().decode())
        if len(samples) < NUM_SUMMARY_IMAGES:
            samples.append((batch["images"][0].numpy(), boxes[scores >= 0.5], gt))
    return evaluator.compute(), samples


def draw_samples(samples):
    """Images with ground truth (green) and predictions scoring >= 0.5 (red), float [K, H, W, 3]."""
    drawn = []
    for image, predicted, gt in samples:
        image = tf.constant(image[None])
        image = tf.image.draw_bounding_boxes(image, gt[None].astype(np.float32), [[0.0, 1.0, 0.0, 1.0]])
        image = tf.image.draw_bounding_boxes(image, predicted[None].astype(np.float32), [[1.0, 0.0, 0.0, 1.0]])
        drawn.append(tf.image.resize(image, [256, 256], preserve_aspect_ratio=True)[0])
    side = max(int(max(d.shape[0], d.shape[1])) for d in drawn)
    return tf.stack([tf.image.pad_to_bounding_box(d, 0, 0, side, side) for d in drawn])


def train(config, num_steps=None):
    """Trains (or resumes training) as the recipe says.

    Args:
        config: a src.config.Config.
        num_steps: overrides config.training.num_steps (the global step to stop at).

    Returns:
        a dict: 'step' (the final global step), 'losses' (list of (step, total loss) logged in
        this run), 'eval' (the last evaluation metrics, or None).
    """
    tc = config.training
    num_steps = tc.num_steps if num_steps is None else num_steps
    strategy = make_strategy(tc.strategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.input.batch_size
    if global_batch % replicas:
        raise ValueError(f"input.batch_size {global_batch} is not divisible by {replicas} replicas")
    logger.info("strategy %s: %d replica(s), per-replica batch %d, global batch %d",
                type(strategy).__name__, replicas, global_batch // replicas, global_batch)
    if tc.seed is not None:
        tf.keras.utils.set_random_seed(tc.seed)
    dtype = compute_dtype(tc.mixed_precision)

    with strategy.scope():
        model = FaceBoxes(seed=tc.seed)
        optimizer = make_optimizer(tc.lr_boundaries, tc.lr_values, tc.momentum)
        if dtype == tf.float16:
            optimizer = tf.keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=optimizer.iterations)
    manager = tf.train.CheckpointManager(checkpoint, tc.model_dir, max_to_keep=tc.max_checkpoints)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logger.info("resumed from %s at step %d", manager.latest_checkpoint, int(optimizer.iterations.numpy()))
    elif tc.init_from_upstream_checkpoint:
        from src.upstream_checkpoint import load_upstream_checkpoint
        load_upstream_checkpoint(model, tc.init_from_upstream_checkpoint)
        logger.info("initialised from the upstream checkpoint %s", tc.init_from_upstream_checkpoint)

    # A recipe with a seed gets a reproducible batch order (at some cost in input speed).
    dataset = build_dataset(config.input.train_dataset, training=True, batch_size=global_batch,
                            image_size=config.input.image_size, seed=tc.seed, repeat=True,
                            shuffle_buffer=config.input.shuffle_buffer,
                            deterministic=tc.seed is not None)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    loss_weights = (config.loss.localization_loss_weight, config.loss.classification_loss_weight)
    mining = ohem_params(config)

    def replica_step(batch):
        batch = dict(batch, images=tf.cast(batch["images"], dtype))
        return train_step(model, optimizer, batch, loss_weights, mining, config.matching.threshold,
                          config.loss.weight_decay, 1.0 / replicas)

    replica_step = tf.function(replica_step, jit_compile=tc.xla)

    # One trace for every batch: the box axes (most faces / ignore regions of an image in
    # the batch) vary, and the spec of the distributed iterator leaves them None.
    @tf.function(input_signature=[iterator.element_spec])
    def distributed_step(batch):
        out = strategy.run(replica_step, args=(batch,))
        reduced = {}
        for key, value in out.items():
            if strategy.experimental_local_results(value)[0].dtype.is_floating:
                reduced[key] = strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            else:  # counts: summed over replicas, element-wise
                reduced[key] = strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
        return reduced

    train_writer = tf.summary.create_file_writer(os.path.join(tc.model_dir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(tc.model_dir, "eval"))
    predict_fn = make_predict_fn(model, config.postprocessing)
    logged, last_eval = [], None
    step = int(optimizer.iterations.numpy())
    start_step, start_time = step, time.time()

    def run_eval(step):
        dataset = build_dataset(config.input.val_dataset, training=False, batch_size=1, image_size=None)
        metrics, samples = evaluate(predict_fn, dataset, tc.num_eval_images)
        with eval_writer.as_default(step=step):
            for key in ("AP", "precision", "recall", "threshold", "mean_iou", "FP", "FN"):
                tf.summary.scalar(f"eval/{key}", float(metrics[key]))
            if samples:
                tf.summary.image("eval/detections", draw_samples(samples), max_outputs=NUM_SUMMARY_IMAGES)
        logger.info("step %d eval: AP@0.5 %.4f, precision %.3f, recall %.3f at threshold %.3f, "
                    "mean IoU %.3f, FP %d, FN %d (%d images)", step, metrics["AP"], metrics["precision"],
                    metrics["recall"], metrics["threshold"], metrics["mean_iou"], metrics["FP"],
                    metrics["FN"], metrics["num_images"])
        return metrics

    try:
        while step < num_steps:
            out = distributed_step(next(iterator))
            step = int(optimizer.iterations.numpy())
            if step % tc.log_every == 0 or step == num_steps:
                total = float(out["total_loss"])
                if not np.isfinite(total):
                    raise FloatingPointError(f"loss is {total} at step {step}; last checkpoint: {manager.latest_checkpoint}")
                logged.append((step, total))
                lr = float(optimizer.learning_rate)
                rate = (step - start_step) / max(time.time() - start_time, 1e-9)
                eta = (num_steps - step) / max(rate, 1e-9)
                logger.info("step %d/%d: loss %.4f (loc %.4f, cls %.4f, reg %.4f), lr %g, %.2f steps/s, ETA %s",
                            step, num_steps, total, float(out["localization_loss"]),
                            float(out["classification_loss"]), float(out["regularization_loss"]), lr, rate,
                            time.strftime("%H:%M:%S", time.gmtime(eta)))
                with train_writer.as_default(step=step):
                    for key in ("total_loss", "localization_loss", "classification_loss", "regularization_loss"):
                        tf.summary.scalar(f"losses/{key}", out[key])
                    tf.summary.scalar("learning_rate", lr)
                    tf.summary.scalar("steps_per_second", rate)
                    for level, count in enumerate(out["matches_per_level"].numpy()):
                        tf.summary.scalar(f"matches/level_{level}", int(count))
                    tf.summary.scalar("ohem/positives", int(out["num_mined_positives"].numpy().sum()))
                    tf.summary.scalar("ohem/negatives", int(out["num_mined_negatives"].numpy().sum()))
                    tf.summary.scalar("matches/ignored", int(out["num_ignored"]))
            if step % tc.checkpoint_every == 0 or step == num_steps:
                manager.save(checkpoint_number=step)
            if tc.eval_every and (step % tc.eval_every == 0 or step == num_steps):
                last_eval = run_eval(step)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was trained. The step counter only moves inside a finished
        # update, so the saved state is a consistent one.
        step = int(optimizer.iterations.numpy())
        path = manager.save(checkpoint_number=step)
        raise TrainingInterrupted(step, path) from None
    return {"step": step, "losses": logged, "eval": last_eval}
