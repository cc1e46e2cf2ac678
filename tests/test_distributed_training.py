"""train() under MirroredStrategy with two replicas (two logical CPU devices) gives the same
updates as the default strategy.

Logical devices must be configured before TensorFlow initialises its devices, so the check runs
in a fresh Python process: this file run as a script (`main`). Nothing at module level imports
TensorFlow.

What it checks, through the real `src.trainer.train` (its distributed dataset, `strategy.run`,
the replica losses scaled by 1 / replicas, the reductions of `distributed_step`, checkpoints),
with the input pipeline replaced by two fixed batches of two 128x128 images:

* step 1, global batch [image 0, image 0]: weights, batch-norm moving statistics, optimizer
  slots and the logged loss equal ONE default-strategy `train_step` on the same two images from
  the same weights. The same image twice, deliberately: each replica normalises its batch with
  its own batch-norm statistics (no cross-replica batch norm, as the upstream) and divides its
  OHEM loss by its own number of matches (src/training.py, src/losses_and_ohem.py), so a
  two-replica step equals a one-device step only when both halves of the batch have the same
  statistics and the same number of matches.
* step 2, global batch [image 0, image 1]: the update equals one SGD step with the mean of the
  two per-image gradients (each image its own batch-norm statistics and match count), moving
  statistics the mean of the per-image updates. This is what catches a wrong split (both
  replicas fed the same image) and wrong replica scaling. It also asserts that this is NOT the
  one-device step on the two-image batch: the documented per-replica normalisation is real.

Tolerance: float32 rounding only (gradient sums in another order). Measured: weights and
optimizer slots differ by at most 7e-7 after step 1 and 3e-6 after step 2, while the largest
weight update is about 0.2; they are compared with an absolute tolerance of 1e-5. Moving
statistics are computed in step 2 from weights that already differ by rounding: a channel's
mean is a sum of activations that may cancel, so its rounding error scales with the size of
the activations (the channel's standard deviation), not with the mean itself (a mean of 0.024
in a channel of larger activations differed by 1.3e-5, 5e-4 of itself). Each channel is
therefore compared with atol 1e-5 + 1e-4 x its scale: the standard deviation (square root of
the moving variance) for a mean, the variance for a variance (values up to ~5; measured
differences up to 1.2e-5 of that scale).

The former version of this test trained 4 + 4 steps on 256x256 tfrecords and checked step
counts and log lines (80-190 s); resuming from a checkpoint is covered by
tests/test_train_export.py, and here every checkpoint of the mirrored run is restored (by a
default-strategy model) and compared variable by variable.
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATOL = 1e-5  # weights and momentum slots (measured: at most 3e-6)
RTOL_STATISTICS = 1e-4  # moving statistics, of each channel's scale (see the docstring; measured 1.2e-5)


def test_mirrored_two_replicas_update_equals_default_strategy(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.time()
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "ALL CHECKS PASSED" in proc.stdout, proc.stdout[-3000:]
    print(proc.stdout[-1500:], f"({time.time() - start:.1f} s)")


def statistics_tolerances(values, names):
    """Per-channel absolute tolerances for batch-norm moving statistics (see "Tolerance" above).

    Args:
        values: list of float32 arrays [C], the model's non-trainable variables in order: each
            layer's moving_mean, then its moving_variance.
        names: their variable names, in the same order.

    Returns:
        a list of float arrays [C] (or floats), one per variable: ATOL + RTOL_STATISTICS x the
        channel's scale, where the scale of a mean is its channel's standard deviation (the square
        root of the moving variance next to it) and the scale of a variance is the variance.
    """
    import numpy as np
    tolerances = []
    for i, (value, name) in enumerate(zip(values, names)):
        if "moving_mean" in name:
            assert "moving_variance" in names[i + 1], names[i:i + 2]
            scale = np.sqrt(np.maximum(values[i + 1], 0.0))
        else:
            assert "moving_variance" in name, name
            scale = np.abs(value)
        tolerances.append(ATOL + RTOL_STATISTICS * scale)
    return tolerances


def main(root):
    import json
    import logging

    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from src import trainer
    from src.config import load_config
    from src.detector import FaceBoxes
    from src.training import compute_losses, make_optimizer, train_step

    # Two 128x128 images, one bright rectangle (a face) each.
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 0.3, (2, 128, 128, 3)).astype(np.float32)
    images[0, 32:80, 40:84] = 0.9
    images[1, 10:60, 60:100] = 0.8
    boxes = np.array([[[32, 40, 80, 84]], [[10, 60, 60, 100]]], np.float32) / 128

    def batch(indices, filenames=False):
        """The images `indices` as a batch like src/input_pipeline's (filenames for train())."""
        out = {"images": tf.constant(images[indices]), "boxes": tf.constant(boxes[indices]),
               "num_boxes": tf.constant([1] * len(indices), tf.int32)}
        if filenames:
            out["filenames"] = tf.constant([f"{i}.jpg" for i in indices])
        return out

    steps = [batch([0, 0], filenames=True), batch([0, 1], filenames=True)]

    def fake_build_dataset(filenames, *, training, batch_size, **kwargs):
        assert training and batch_size == 2
        return tf.data.Dataset.from_tensor_slices(
            {key: tf.stack([s[key] for s in steps]) for key in steps[0]})

    recipe_path = os.path.join(root, "config.json")
    with open(os.path.join(ROOT, "configs", "sample.json")) as f:
        recipe = json.load(f)
    recipe["input"].update(train_dataset=os.path.join(root, "unused"), val_dataset=os.path.join(root, "unused"),
                           image_size=[128, 128], batch_size=2, shuffle_buffer=1)
    recipe["training"].update(model_dir=os.path.join(root, "model"), num_steps=2, lr_boundaries=[1000],
                              lr_values=[0.01, 0.001], momentum=0.9, strategy="mirrored", log_every=1,
                              checkpoint_every=1, eval_every=0, max_checkpoints=5, seed=0)
    with open(recipe_path, "w") as f:
        json.dump(recipe, f)
    config = load_config(recipe_path)
    tc = config.training
    loss_weights = (config.loss.localization_loss_weight, config.loss.classification_loss_weight)
    mining = trainer.ohem_params(config)
    args = (loss_weights, mining, config.matching.threshold, config.loss.weight_decay)

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("src.trainer").addHandler(handler)
    logging.getLogger("src.trainer").setLevel(logging.INFO)

    # --- the mirrored run, through train() ---
    trainer.build_dataset = fake_build_dataset
    start = time.time()
    result = trainer.train(config)
    print(f"mirrored train(): {time.time() - start:.1f} s wall, {time.process_time():.1f} s CPU so far")
    assert "strategy MirroredStrategy: 2 replica(s), per-replica batch 1, global batch 2" in messages, messages
    assert result["step"] == 2 and [s for s, _ in result["losses"]] == [1, 2], result

    # --- the reference, default strategy, same initial weights (train() uses FaceBoxes(seed)) ---
    model = FaceBoxes(seed=tc.seed)
    optimizer = make_optimizer(tc.lr_boundaries, tc.lr_values, tc.momentum)
    optimizer.build(model.trainable_variables)
    stats = [v for v in model.variables if not v.trainable]

    stat_names = [v.name for v in model.variables if not v.trainable]

    def snapshot(model, optimizer):
        return {"weights": [v.numpy() for v in model.trainable_variables],
                "moving statistics": [v.numpy() for v in model.variables if not v.trainable],
                "momentum slots": [v.numpy() for v in optimizer.variables if v is not optimizer.iterations]}

    initial = snapshot(model, optimizer)
    out = train_step(model, optimizer, batch([0, 0]), *args)  # one device, the two images together
    expected = [snapshot(model, optimizer)]
    expected_losses = [float(out["total_loss"])]

    # Step 2: the mean of the per-image gradients, each image with its own statistics.
    before = [v.numpy() for v in stats]
    gradients, totals, updated = None, [], []
    for i in (0, 1):
        for v, value in zip(stats, before):
            v.assign(value)
        with tf.GradientTape() as tape:
            out = compute_losses(model, batch([i]), *args, global_batch_scale=0.5)
        g = tape.gradient(out["scaled_loss"], model.trainable_variables)
        gradients = g if gradients is None else [a + b for a, b in zip(gradients, g)]
        totals.append(float(out["total_loss"]))
        updated.append([v.numpy() for v in stats])
    # The one-device gradient of the two-image batch is a different thing (the documented
    # per-replica normalisation): make sure the test can tell them apart.
    for v, value in zip(stats, before):
        v.assign(value)
    with tf.GradientTape() as tape:
        out = compute_losses(model, batch([0, 1]), *args)
    global_gradients = tape.gradient(out["scaled_loss"], model.trainable_variables)
    flat = lambda gs: np.concatenate([g.numpy().ravel() for g in gs])
    gap = np.linalg.norm(flat(global_gradients) - flat(gradients)) / np.linalg.norm(flat(gradients))
    print(f"per-replica vs one-device gradient on [image 0, image 1]: relative difference {gap:.3f}")
    assert gap > 1e-2, gap
    for v, a, b in zip(stats, *updated):
        v.assign((a + b) / 2)  # ON_READ / MEAN: the checkpoint holds the mean of the replicas
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    expected.append(snapshot(model, optimizer))
    expected_losses.append(float(np.mean(totals)))  # distributed_step: MEAN over replicas

    # --- compare every checkpoint of the mirrored run with the reference ---
    for step, want in zip((1, 2), expected):
        restored = FaceBoxes()
        restored_optimizer = make_optimizer(tc.lr_boundaries, tc.lr_values, tc.momentum)
        restored_optimizer.build(restored.trainable_variables)
        tf.train.Checkpoint(model=restored, optimizer=restored_optimizer, step=restored_optimizer.iterations).restore(
            os.path.join(tc.model_dir, f"ckpt-{step}")).assert_existing_objects_matched()
        got = snapshot(restored, restored_optimizer)
        assert int(restored_optimizer.iterations.numpy()) == step
        for key in want:
            worst = max(float(np.abs(a - b).max()) for a, b in zip(got[key], want[key]))
            moved = max(float(np.abs(a - b).max()) for a, b in zip(want[key], initial[key]))
            print(f"step {step} {key}: max |mirrored - reference| {worst:.2e}, largest change {moved:.2e}")
            assert moved > 1000 * ATOL, (step, key, moved)  # a real update, far above the tolerance
            tolerances = (statistics_tolerances(want[key], stat_names) if key == "moving statistics"
                          else [ATOL] * len(want[key]))
            for a, b, atol in zip(got[key], want[key], tolerances):
                excess = np.abs(a - b) - atol  # > 0 where the difference is over its tolerance
                assert excess.max() <= 0, (f"step {step} {key}: {int((excess > 0).sum())} value(s) over their "
                                           f"tolerance, worst by {excess.max():.2e}")
    logged = [loss for _, loss in result["losses"]]
    print(f"logged losses {logged}, expected {expected_losses}")
    np.testing.assert_allclose(logged, expected_losses, rtol=1e-5)
    print(f"ALL CHECKS PASSED ({time.process_time():.1f} s CPU)")


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main(sys.argv[1])
