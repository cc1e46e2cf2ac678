"""The training loop: strategy, data, checkpoints, summaries, periodic evaluation.

Box convention: [ymin, xmin, ymax, xmax], normalized (batches, predictions and the AP
evaluator all share it).
"""
import logging
import os
import tempfile
import time
import uuid

import numpy as np
import tensorflow as tf

from src.cli import check_output_folder
from src.detector import FaceBoxes
from src.evaluation.ap import OPERATING_SCORE_THRESHOLD, Evaluator
from src.input_pipeline.pipeline import build_dataset
from src.losses_and_ohem import OHEMParams
from src.training import make_optimizer, train_step, trained_variables

logger = logging.getLogger(__name__)

NUM_SUMMARY_IMAGES = 4  # validation images drawn with boxes into TensorBoard at each evaluation
# Batch norm normalises with the statistics of each replica's own images (no cross-replica
# batch norm): below this many images per replica they are noisy and training suffers.
MIN_IMAGES_PER_REPLICA = 4


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
        ignore = batch["ignore_boxes"][0, :int(batch["num_ignore"][0])].numpy()
        evaluator.add(boxes, scores, gt, image_id=batch["filenames"][0].numpy().decode(),
                      ignore_boxes=ignore)
        if len(samples) < NUM_SUMMARY_IMAGES:
            samples.append((batch["images"][0].numpy(), boxes[scores >= 0.5], gt))
    return evaluator.compute(fixed_threshold=OPERATING_SCORE_THRESHOLD), samples


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


class _Role:
    """What this process writes: everything on the chief, nothing lasting on other workers.

    Under MultiWorkerMirroredStrategy the chief is the task of type 'chief', or worker 0 when
    the cluster has none (TF_CONFIG, read through `strategy.cluster_resolver`). Only the chief
    writes into model_dir (checkpoints, TensorBoard summaries), evaluates and logs at INFO
    level; the other workers say who they are once, then log at DEBUG level only, and get a
    no-op summary writer. Saving a checkpoint is collective under this strategy (reading the
    batch-norm statistics averages them over all replicas), so every worker saves at the
    same steps: a non-chief worker into a temporary directory of its own, deleted right
    after each save (TensorFlow's pattern for non-chief workers). Every worker restores from
    model_dir, the chief's checkpoints, which must therefore be on a filesystem that all
    workers share. Other strategies: one process, which is the chief.

    Attributes:
        multi_worker: bool, whether the strategy is a MultiWorkerMirroredStrategy.
        is_chief: bool.
        num_workers: int, the 'chief' and 'worker' tasks of the cluster (1 without one).
        task: str, e.g. 'worker 1' ('' for a single process).
        checkpoint_dir: where this process's CheckpointManager saves.
    """

    def __init__(self, strategy, model_dir):
        self.model_dir = model_dir
        self.multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        resolver = strategy.cluster_resolver if self.multi_worker else None
        task_type, task_id = (resolver.task_type, resolver.task_id) if resolver else (None, None)
        cluster = resolver.cluster_spec().as_dict() if task_type else {}
        self.num_workers = max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))
        self.task = f"{task_type} {task_id}" if task_type else ""
        self.is_chief = (not task_type or task_type == "chief"
                         or (task_type == "worker" and task_id == 0 and "chief" not in cluster))
        # Not created here: saving creates it, `save` deletes it (nothing to clean up otherwise).
        self.checkpoint_dir = model_dir if self.is_chief else os.path.join(
            tempfile.gettempdir(), f"faceboxes-{task_type}{task_id}-{uuid.uuid4().hex}")

    def info(self, message, *args):
        logger.log(logging.INFO if self.is_chief else logging.DEBUG, message, *args)

    def summary_writer(self, name):
        """The writer of model_dir/name on the chief, a no-op writer elsewhere."""
        if self.is_chief:
            return tf.summary.create_file_writer(os.path.join(self.model_dir, name))
        return tf.summary.create_noop_writer()

    def save(self, manager, step):
        """Saves a checkpoint (every worker at the same steps); returns its path in model_dir."""
        try:
            path = manager.save(checkpoint_number=step)
        finally:
            if not self.is_chief and tf.io.gfile.exists(self.checkpoint_dir):
                tf.io.gfile.rmtree(self.checkpoint_dir)
        return path if self.is_chief else os.path.join(self.model_dir, os.path.basename(path))


def _log_setup(role, strategy, global_batch):
    """The start-up lines: replicas and batch, this worker's role, the small-batch warning."""
    replicas = strategy.num_replicas_in_sync
    per_replica = global_batch // replicas
    role.info("strategy %s: %d replica(s), per-replica batch %d, global batch %d",
              type(strategy).__name__, replicas, per_replica, global_batch)
    if role.multi_worker:
        logger.info("%s of %d worker(s): %s", role.task or "single worker", role.num_workers,
                    f"the chief, writes {role.model_dir}" if role.is_chief else
                    "not the chief: checkpoints to a temporary folder, no summaries, no evaluation")
    if role.is_chief and per_replica < MIN_IMAGES_PER_REPLICA:
        logger.warning("%d image(s) per replica (global batch %d over %d replica(s)): batch norm "
                       "normalises with the statistics of each replica's own images, which are "
                       "unreliable below %d; raise input.batch_size to at least %d or train on "
                       "fewer replicas", per_replica, global_batch, replicas,
                       MIN_IMAGES_PER_REPLICA, MIN_IMAGES_PER_REPLICA * replicas)


def _check_same_step(strategy, step):
    """Multi-worker: stops unless every worker is at the same step (a collective, so also a
    barrier: each worker waits here for all the others).

    A worker that cannot see the chief's checkpoints (model_dir not shared) would start
    from scratch while the others resume: different weights, updated with the same
    gradients. The means of step and of step^2 over the replicas tell (float64, exact).
    """
    moments = tf.function(lambda: strategy.reduce(  # (a tf.function: no "used eagerly" warning)
        tf.distribute.ReduceOp.MEAN, strategy.run(lambda: tf.constant([step, step * step], tf.float64)),
        axis=None))
    mean, mean_square = moments().numpy()
    if mean_square != mean * mean:
        raise RuntimeError(f"the workers are at different steps (this one at {step}, mean {mean:g}); "
                           "training.model_dir must be a folder that all workers share")


def _copy_variables(source, target):
    """Copies every variable of the FaceBoxes `source` into `target` (same architecture).

    Under MultiWorkerMirroredStrategy every worker must call this at the same point: reading
    the batch-norm statistics averages them over all replicas (a collective).
    """
    values = source.named_variables()
    for name, variable in target.named_variables().items():
        variable.assign(values[name].read_value())


def _training_dataset(config, role):
    """The training batches (of the global batch size); sharded by data under multi-worker.

    Multi-worker: every worker runs the whole input pipeline and keeps its part of each
    global batch, tf.data's DATA auto-sharding. With a seed in the recipe every worker makes
    the same stream of global batches, so the workers together train on the batches that one
    process would (without one, each worker keeps its part of its own random stream).
    tf.data's default (AUTO: by files where it can) falls back to DATA anyway, whatever the
    number of shard files: the pipeline's `enumerate` (the per-example seeds) is a source
    that tf.data cannot shard by files. It is set explicitly so that the split never
    depends on that. The cost: every worker decodes and augments every image.
    """
    tc = config.training
    # A recipe with a seed gets a reproducible batch order (at some cost in input speed).
    dataset = build_dataset(config.input.train_dataset, training=True, batch_size=config.input.batch_size,
                            image_size=config.input.image_size, seed=tc.seed, repeat=True,
                            shuffle_buffer=config.input.shuffle_buffer,
                            partial_face_ignore_below=config.input.partial_face_ignore_below,
                            face_box_top_extension=config.input.face_box_top_extension,
                            deterministic=tc.seed is not None)
    if role.multi_worker:
        role.info("multi-worker input: every worker reads and augments all training shards and "
                  "keeps its part of each global batch")
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    return dataset


def _write_train_summaries(writer, step, out, learning_rate, steps_per_second):
    """The TensorBoard scalars of a logged step (`out`: the reduced outputs of the step)."""
    with writer.as_default(step=step):
        for key in ("total_loss", "localization_loss", "classification_loss", "regularization_loss",
                    "distillation_classification_loss", "distillation_localization_loss"):
            if key in out:
                tf.summary.scalar(f"losses/{key}", out[key])
        tf.summary.scalar("learning_rate", learning_rate)
        tf.summary.scalar("steps_per_second", steps_per_second)
        for level, count in enumerate(out["matches_per_level"].numpy()):
            tf.summary.scalar(f"matches/level_{level}", int(count))
        tf.summary.scalar("ohem/positives", int(out["num_mined_positives"].numpy().sum()))
        tf.summary.scalar("ohem/negatives", int(out["num_mined_negatives"].numpy().sum()))
        tf.summary.scalar("matches/ignored", int(out["num_ignored"]))


def _build_and_restore(strategy, tc, dtype, role):
    """The model and optimizer (in the strategy's scope), restored from the latest checkpoint in
    model_dir (on every worker: the chief's) or else initialised as the recipe says.

    Returns:
        model, optimizer, the CheckpointManager that saves them (see `_Role.save`), and the
        teacher (a FaceBoxes loaded from training.teacher_checkpoint, never trained nor
        saved) or None.
    """
    with strategy.scope():
        model = FaceBoxes(seed=tc.seed)
        optimizer = make_optimizer(tc.lr_boundaries, tc.lr_values, tc.momentum)
        if dtype == tf.float16:
            optimizer = tf.keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(trained_variables(model, tc.frozen_layers))
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=optimizer.iterations)
    manager = tf.train.CheckpointManager(checkpoint, role.checkpoint_dir, max_to_keep=tc.max_checkpoints)
    latest = tf.train.latest_checkpoint(tc.model_dir)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        role.info("resumed from %s at step %d", latest, int(optimizer.iterations.numpy()))
    elif tc.init_from_upstream_checkpoint:
        from src.upstream_checkpoint import load_upstream_checkpoint
        load_upstream_checkpoint(model, tc.init_from_upstream_checkpoint)
        role.info("initialised from the upstream checkpoint %s", tc.init_from_upstream_checkpoint)
    if tc.freeze_batch_norm_statistics:
        from src.network import freeze_batch_norm_statistics
        role.info("batch norm: %d layers train with their loaded moving statistics, which stay fixed",
                  freeze_batch_norm_statistics(model))
    teacher = None
    if tc.teacher_checkpoint:
        from src.upstream_checkpoint import load_upstream_checkpoint
        with strategy.scope():
            teacher = FaceBoxes(seed=0)  # (seed: every variable is loaded)
        load_upstream_checkpoint(teacher, tc.teacher_checkpoint)
        role.info("distilling towards the outputs of the teacher %s", tc.teacher_checkpoint)
    if role.multi_worker:
        _check_same_step(strategy, int(optimizer.iterations.numpy()))
    return model, optimizer, manager, teacher


def _make_distributed_step(strategy, model, optimizer, config, dtype, element_spec, teacher=None):
    """The compiled training step: one update of every replica, losses reduced over replicas.

    Args:
        strategy: the tf.distribute strategy.
        model, optimizer: built under the strategy's scope.
        config: the src.config.Config (loss weights, OHEM, matching, weight decay, XLA).
        dtype: the compute dtype of the images (float32, or bfloat16 for mixed precision).
        element_spec: the distributed iterator's element_spec, the step's input signature.
        teacher: None, or the FaceBoxes to distill from (loss.distillation_weight).

    Returns:
        a tf.function: batch -> dict of scalars (floating losses averaged over replicas,
        counts summed).
    """
    replicas = strategy.num_replicas_in_sync
    loss_weights = (config.loss.localization_loss_weight, config.loss.classification_loss_weight)
    variables = trained_variables(model, config.training.frozen_layers)
    mining = ohem_params(config)

    def replica_step(batch):
        batch = dict(batch, images=tf.cast(batch["images"], dtype))
        return train_step(model, optimizer, batch, loss_weights, mining, config.matching.threshold,
                          config.loss.weight_decay, 1.0 / replicas, teacher, config.loss.distillation_weight,
                          variables)

    replica_step = tf.function(replica_step, jit_compile=config.training.xla)

    # One trace for every batch: the box axes (most faces / ignore regions of an image in
    # the batch) vary, and the spec of the distributed iterator leaves them None.
    @tf.function(input_signature=[element_spec])
    def distributed_step(batch):
        out = strategy.run(replica_step, args=(batch,))
        reduced = {}
        for key, value in out.items():
            if strategy.experimental_local_results(value)[0].dtype.is_floating:
                reduced[key] = strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            else:  # counts: summed over replicas, element-wise
                reduced[key] = strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
        return reduced

    return distributed_step


def _run_eval(config, predict_fn, writer, role, step):
    """Evaluates on the validation shards, writes the eval summaries, logs and returns the metrics."""
    dataset = build_dataset(config.input.val_dataset, training=False, batch_size=1, image_size=None)
    metrics, samples = evaluate(predict_fn, dataset, config.training.num_eval_images)
    with writer.as_default(step=step):
        for key in ("AP", "precision", "recall", "threshold", "mean_iou", "FP", "FN",
                    "fixed_recall", "fixed_precision", "fixed_FP"):
            tf.summary.scalar(f"eval/{key}", float(metrics[key]))
        if samples:
            tf.summary.image("eval/detections", draw_samples(samples), max_outputs=NUM_SUMMARY_IMAGES)
    role.info("step %d eval: AP@0.5 %.4f, precision %.3f, recall %.3f at threshold %.3f, "
              "mean IoU %.3f, FP %d, FN %d (%d images); at score %.2f: recall %.4f, FP %d",
              step, metrics["AP"], metrics["precision"], metrics["recall"], metrics["threshold"],
              metrics["mean_iou"], metrics["FP"], metrics["FN"], metrics["num_images"],
              metrics["fixed_threshold"], metrics["fixed_recall"], metrics["fixed_FP"])
    return metrics


class _Progress:
    """Logs the losses, rate and ETA of a run and writes the train summaries."""

    def __init__(self, role, writer, model_dir, start_step, num_steps):
        self.role, self.writer, self.model_dir = role, writer, model_dir
        self.start_step, self.num_steps, self.start_time = start_step, num_steps, time.time()

    def log(self, step, out, learning_rate):
        """Logs step `step`'s outputs; returns the total loss. Raises FloatingPointError on NaN/inf."""
        total = float(out["total_loss"])
        if not np.isfinite(total):
            raise FloatingPointError(f"loss is {total} at step {step}; last checkpoint: "
                                     f"{tf.train.latest_checkpoint(self.model_dir)}")
        rate = (step - self.start_step) / max(time.time() - self.start_time, 1e-9)
        eta = (self.num_steps - step) / max(rate, 1e-9)
        distilled = ""
        if "distillation_classification_loss" in out:
            distilled = ", distill cls %.4f loc %.4f" % (float(out["distillation_classification_loss"]),
                                                         float(out["distillation_localization_loss"]))
        self.role.info("step %d/%d: loss %.4f (loc %.4f, cls %.4f, reg %.4f%s), lr %g, %.2f steps/s, ETA %s",
                       step, self.num_steps, total, float(out["localization_loss"]),
                       float(out["classification_loss"]), float(out["regularization_loss"]), distilled,
                       learning_rate, rate, time.strftime("%H:%M:%S", time.gmtime(eta)))
        _write_train_summaries(self.writer, step, out, learning_rate, rate)
        return total


def train(config, num_steps=None):
    """Trains (or resumes training) as the recipe says.

    Args:
        config: a src.config.Config.
        num_steps: overrides config.training.num_steps (the global step to stop at).

    Returns:
        a dict: 'step' (the final global step), 'losses' (list of (step, total loss) logged in
        this run), 'eval' (the last evaluation metrics, or None: also on the workers of a
        multi-worker run other than the chief, which do not evaluate; see `_Role`).
    """
    tc = config.training
    check_output_folder(tc.model_dir, "training.model_dir")  # one line, not a TensorFlow traceback
    num_steps = tc.num_steps if num_steps is None else num_steps
    strategy = make_strategy(tc.strategy)
    role = _Role(strategy, tc.model_dir)
    global_batch = config.input.batch_size
    if global_batch % strategy.num_replicas_in_sync:
        raise ValueError(f"input.batch_size {global_batch} is not divisible by "
                         f"{strategy.num_replicas_in_sync} replicas")
    _log_setup(role, strategy, global_batch)
    if tc.seed is not None:
        tf.keras.utils.set_random_seed(tc.seed)
    dtype = compute_dtype(tc.mixed_precision)
    model, optimizer, manager, teacher = _build_and_restore(strategy, tc, dtype, role)
    iterator = iter(strategy.experimental_distribute_dataset(_training_dataset(config, role)))
    distributed_step = _make_distributed_step(strategy, model, optimizer, config, dtype, iterator.element_spec,
                                              teacher)
    # Multi-worker: the chief evaluates a plain copy of the model, taken by all workers
    # together (`_copy_variables`), so that evaluating needs no other worker.
    eval_model = FaceBoxes(seed=0) if role.multi_worker else model  # (seed: no random state used)
    predict_fn = make_predict_fn(eval_model, config.postprocessing)
    eval_writer = role.summary_writer("eval")
    step = int(optimizer.iterations.numpy())
    progress = _Progress(role, role.summary_writer("train"), tc.model_dir, step, num_steps)
    logged, last_eval = [], None
    try:
        while step < num_steps:
            out = distributed_step(next(iterator))
            step = int(optimizer.iterations.numpy())
            if step % tc.log_every == 0 or step == num_steps:
                logged.append((step, progress.log(step, out, float(optimizer.learning_rate))))
            if step % tc.checkpoint_every == 0 or step == num_steps:
                role.save(manager, step)
            if tc.eval_every and (step % tc.eval_every == 0 or step == num_steps):
                if role.multi_worker:
                    _copy_variables(model, eval_model)
                if role.is_chief:
                    last_eval = _run_eval(config, predict_fn, eval_writer, role, step)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was trained. The step counter only moves inside a finished
        # update, so the saved state is a consistent one.
        step = int(optimizer.iterations.numpy())
        path = role.save(manager, step)
        raise TrainingInterrupted(step, path) from None
    if role.multi_worker:  # the others wait for the chief's last evaluation, then all return
        _check_same_step(strategy, step)
    return {"step": step, "losses": logged, "eval": last_eval}
