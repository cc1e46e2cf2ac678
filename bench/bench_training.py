"""Training steps/s of a recipe, with its mixed-precision and XLA switches each way.

Times the full training step (forward, matching, OHEM, backward, SGD update) on one fixed
batch taken from the recipe's training shards (so the input pipeline is not measured; see
bench_input_pipeline.py for that), after warm-up, for float32 / mixed precision and with /
without XLA.

With --end_to_end it instead times what train.py runs: batches from the shards through the
augmenting input pipeline, then the step, for --steps steps after warm-up, once with the step
traced for the pipeline's element spec (box axes left free: one trace, as train.py does) and once
as a plain tf.function (one trace per new number of boxes in a batch: the behaviour before),
and prints steps/s and the number of traces of each.

Example:
    python bench/bench_training.py --config configs/sample.json --steps 30
    python bench/bench_training.py --config configs/realfaces.json --end_to_end --steps 100
"""
import argparse
import dataclasses
import os
import statistics
import sys
import time

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.config import load_config  # noqa: E402
from src.detector import FaceBoxes  # noqa: E402
from src.input_pipeline.pipeline import build_dataset  # noqa: E402
from src.trainer import compute_dtype, ohem_params  # noqa: E402
from src.training import make_optimizer, train_step  # noqa: E402


def steps_per_second(config, batch, mixed_precision, xla, steps, warmup=10):
    """Median steps/s of the training step on one batch (and the seconds per step)."""
    dtype = compute_dtype(mixed_precision)
    model = FaceBoxes(seed=0)
    tc = config.training
    optimizer = make_optimizer(tc.lr_boundaries, tc.lr_values, tc.momentum)
    if dtype == tf.float16:
        optimizer = tf.keras.optimizers.LossScaleOptimizer(optimizer)
    weights = (config.loss.localization_loss_weight, config.loss.classification_loss_weight)
    mining = ohem_params(config)
    step = tf.function(
        lambda b: train_step(model, optimizer, dict(b, images=tf.cast(b["images"], dtype)), weights,
                             mining, config.matching.threshold, config.loss.weight_decay),
        jit_compile=xla)
    for _ in range(warmup):
        float(step(batch)["total_loss"])
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(step(batch)["total_loss"])
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def end_to_end(config, steps, warmup=10):
    """(steps/s, traces) of pipeline + step, with and without the fixed input signature."""
    inp, tc = config.input, config.training
    weights = (config.loss.localization_loss_weight, config.loss.classification_loss_weight)
    mining = ohem_params(config)
    results = {}
    for name, use_signature in (("one trace (input signature)", True), ("retracing (plain tf.function)", False)):
        model = FaceBoxes(seed=0)
        optimizer = make_optimizer(tc.lr_boundaries, tc.lr_values, tc.momentum)
        dataset = build_dataset(inp.train_dataset, training=True, batch_size=inp.batch_size,
                                image_size=inp.image_size, seed=0, repeat=True,
                                shuffle_buffer=inp.shuffle_buffer,
                                partial_face_ignore_below=inp.partial_face_ignore_below,
                                face_box_top_extension=inp.face_box_top_extension)
        iterator = iter(dataset)

        def run(batch):
            return train_step(model, optimizer, batch, weights, mining, config.matching.threshold,
                              config.loss.weight_decay)
        step = (tf.function(run, input_signature=[iterator.element_spec]) if use_signature
                else tf.function(run))
        for _ in range(warmup):
            float(step(next(iterator))["total_loss"])
        start = time.perf_counter()
        for _ in range(steps):
            out = step(next(iterator))
        float(out["total_loss"])
        results[name] = (steps / (time.perf_counter() - start), step.experimental_get_tracing_count())
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/sample.json", help="the recipe (its train shards are read)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per setting")
    parser.add_argument("--batch_size", type=int, default=None, help="override the recipe's batch size")
    parser.add_argument("--image_size", type=int, default=None, help="override the recipe's (square) image size")
    parser.add_argument("--end_to_end", action="store_true",
                        help="time shards -> augmenting pipeline -> step, as train.py runs it")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    inp = config.input
    if args.batch_size or args.image_size:
        size = (args.image_size,) * 2 if args.image_size else inp.image_size
        inp = dataclasses.replace(inp, batch_size=args.batch_size or inp.batch_size, image_size=size)
        config = dataclasses.replace(config, input=inp)
    if args.end_to_end:
        print(f"{args.config}: end to end, batch {inp.batch_size} at {inp.image_size[0]}x{inp.image_size[1]}, "
              f"{args.steps} steps after 10 of warm-up ({os.cpu_count()} cpus)")
        for name, (rate, traces) in end_to_end(config, args.steps).items():
            print(f"{name:>30}: {rate:6.2f} steps/s ({rate * inp.batch_size:6.1f} images/s), {traces} trace(s)")
        return
    dataset = build_dataset(inp.train_dataset, training=True, batch_size=inp.batch_size,
                            image_size=inp.image_size, seed=0, repeat=True, deterministic=True)
    batch = next(iter(dataset))
    batch = {k: batch[k] for k in ("images", "boxes", "num_boxes")}
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"{args.config}: batch {inp.batch_size} at {inp.image_size[0]}x{inp.image_size[1]} on {device} "
          f"({os.cpu_count()} cpus)")
    for mixed in (False, True):
        for xla in (False, True):
            name = f"{'mixed ' + compute_dtype(True).name if mixed else 'float32':>16} xla={'on ' if xla else 'off'}"
            try:
                rate = steps_per_second(config, batch, mixed, xla, args.steps)
                print(f"{name}: {rate:6.2f} steps/s ({rate * inp.batch_size:7.1f} images/s)")
            except Exception as e:  # a setting this stack cannot compile is reported, not fatal
                print(f"{name}: failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})")


if __name__ == "__main__":
    main()
