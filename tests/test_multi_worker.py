"""train() under MultiWorkerMirroredStrategy: two worker processes on loopback ports.

Each worker is a fresh Python process with its own TF_CONFIG ({"cluster": {"worker": [two
127.0.0.1 ports chosen at run time]}, "task": {"type": "worker", "index": i}}) and one CPU
device, training through the real `src.trainer.train` on tiny generated shards
(tests/test_train_export.py's helpers): first this file run as a script (`main`, a small
driver), then train.py itself. Worker 0 is the chief (the cluster has no 'chief' task). Both
workers are given the same model_dir, as on a shared filesystem. Every process is killed if
a phase takes longer than TIMEOUT_S. 65-110 s on 2 CPU cores (3 + 2 TensorFlow processes).

What it checks:

* Both workers exit 0 and report the same final step and the same logged losses.
* Only the chief writes: model_dir holds exactly the chief's checkpoints, one TensorBoard
  events file in train/ and one in eval/ (the chief evaluated; the worker did not); the
  non-chief's temporary checkpoint folders are gone (each worker has its own TMPDIR, left
  empty). The chief warns once that 2 images per replica are too few for batch norm.
* The weights, batch-norm moving statistics and optimizer slots of the chief's checkpoint
  after step 2 equal those of a single-process (default strategy) run on the same global
  batches, to float32 rounding (see below for why step 2).
* Resuming, through train.py on both workers: 2 more steps. Both restore the chief's
  checkpoint (the trainer stops unless all workers are at the same step), the chief logs
  steps 7 and 8 only, both end at step 8, the chief's latest checkpoint is ckpt-8 with step 8,
  and again only the chief wrote into model_dir and evaluated.

Why the global batches are [x, y, x, y]: each replica normalises with its own batch-norm
statistics and divides its OHEM loss by its own number of matches (src/losses_and_ohem.py;
see tests/test_distributed_training.py), so a two-worker step equals a
one-process step only when both halves of the global batch have the same statistics and the
same number of matches. The driver therefore takes the real pipeline's batches of two
images [x, y] (shards -> shuffle -> augmentation, seeded) and concatenates each with
itself, as the global batch of four; the trainer shards the input by data (every worker runs
the same pipeline and keeps its part of each global batch), so worker 0 trains on the first
half, worker 1 on the second. A wrong split (both workers the same pair of steps, or
[x, x] / [y, y]) would not match the reference.

Which steps are compared, and the tolerance. The two workers' gradients are summed by an
all-reduce, the one process sums over its batch of four in another order, and batch-norm
moments over two images differ from those over [x, y, x, y] in the last bits: float32
rounding. Step 1 starts from identical weights, so after steps 1 and 2 the runs differ by the
rounding of one or two updates. Later steps do not stay that close on every CPU: SGD amplifies
the difference (a ReLU gate or a max-pool argmax between two values within rounding of each
other flips, and that gradient entry changes by O(1), not O(eps)), and which values flip
depends on the CPU's kernels. Measured: losses 10.39030 vs 10.39349 at step 3 on an
AVX-512/AMX CPU, 9.7394 vs 9.6940 at step 6 on an AVX2-only one. So the numbers are compared
at COMPARED_STEP = 2 (losses of steps 1-2 to rtol 1e-5; the checkpoint ckpt-2), and steps
3-6 check the mechanics (same steps, same losses on both workers, chief-only writes, resume).
For the same reason OHEM mines every anchor here (ranking negatives by loss is a discrete
choice of the same kind): see write_recipe. Measured on an AVX-512/AMX CPU and with oneDNN
limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2): weights and optimizer slots (values up to ~5)
differ by at most 4.8e-7 and 2.8e-7 after step 2, while they moved by up to 4.8e-2 from step 1
to 2; compared with an absolute tolerance of 2e-5. Batch-norm moving statistics (values up to
~3) differ by at most 2.3e-6 and 2.4e-6, and moved by up to 0.32; compared with 1e-4.
"""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, RESUMED_STEPS = 6, 8
ATOL = 2e-5  # weights and optimizer slots, values up to ~5 (measured: at most 4.8e-7)
ATOL_STATISTICS = 1e-4  # batch-norm moving statistics, values up to ~3 (measured: at most 2.4e-6)
TIMEOUT_S = 300  # per phase; both workers are killed when it is exceeded
COMPARED_STEP = 2  # see "Which steps are compared" above
ALL_ANCHORS = 1000  # more than the 341 anchors of a 128x128 image


def free_ports(count):
    """Ports that were free a moment ago on 127.0.0.1 (bound to port 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def write_recipe(path, data_dir, model_dir, strategy, eval_every):
    """test_train_export's recipe, 128x128, global batch 4, logs every step, saves every 2."""
    from tests.test_train_export import write_config
    write_config(path, data_dir, model_dir, eval_every)
    with open(path) as f:
        recipe = json.load(f)
    recipe["input"].update(image_size=[128, 128], batch_size=4)
    # Every anchor mined (341 anchors at 128x128, no suppression): see "Which steps are compared".
    recipe["ohem"].update(num_hard_examples=ALL_ANCHORS, nms_threshold=1.0,
                          max_negatives_per_positive=float(ALL_ANCHORS), min_negatives_per_image=ALL_ANCHORS)
    recipe["training"].update(strategy=strategy, num_steps=STEPS, log_every=1, checkpoint_every=1,
                              max_checkpoints=10, num_eval_images=2)
    with open(path, "w") as f:
        json.dump(recipe, f)


def start(name, args, root, tf_config=None):
    """Starts `python ARGS` in the repository; its output goes to root/name.{out,err}."""
    tmp = os.path.join(root, f"tmp_{name}")
    os.makedirs(tmp)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=tmp, CUDA_VISIBLE_DEVICES="")
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    with open(os.path.join(root, f"{name}.out"), "w") as out, open(os.path.join(root, f"{name}.err"), "w") as err:
        process = subprocess.Popen([sys.executable] + args, cwd=ROOT, env=env, stdout=out, stderr=err)
    process.name, process.root, process.tmp = name, root, tmp
    return process


def driver(config_path, num_steps, root, name):
    """The arguments that run this file as a training driver (`main`)."""
    return [os.path.abspath(__file__), config_path, str(num_steps), os.path.join(root, f"{name}.npz")]


def run_all(jobs, root):
    """Starts every job (name, args, TF_CONFIG or None) at once and waits for all of them
    (TIMEOUT_S in all); whatever is still running at the end is killed. All must exit 0.

    Returns:
        the finished subprocess.Popen objects, in the order of `jobs`.
    """
    processes = []
    deadline = time.time() + TIMEOUT_S
    try:
        for name, args, tf_config in jobs:
            processes.append(start(name, args, root, tf_config))
        for p in processes:
            try:
                p.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{p.name} still running after {TIMEOUT_S} s\n" + logs(p))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p in processes:
        assert p.returncode == 0, f"{p.name} exited {p.returncode}\n" + logs(p)
    return processes


def driver_result(process):
    lines = [line for line in read(process, "out").splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, logs(process)
    result = json.loads(lines[0][len("RESULT "):])
    result["log"] = read(process, "err")
    result["weights"] = dict(np.load(os.path.join(process.root, f"{process.name}.npz")))
    return result


def read(process, ext):
    with open(os.path.join(process.root, f"{process.name}.{ext}")) as f:
        return f.read()


def logs(process):
    return f"--- {process.name} stdout:\n{read(process, 'out')[-3000:]}\n--- stderr:\n{read(process, 'err')[-6000:]}"


def worker_jobs(make_args, phase):
    """Two workers of a cluster on free loopback ports; make_args(name) gives a command line."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [(f"{phase}_worker{i}", make_args(f"{phase}_worker{i}"),
             {"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(2)]


def checkpoint_values(prefix):
    import tensorflow as tf
    reader = tf.train.load_checkpoint(prefix)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if key != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def compare_checkpoints(got_prefix, want_prefix, earlier_prefix):
    """Largest |got - want| and |want - earlier| per kind of float variable (the model's
    weights and the optimizer's slots, or the batch-norm moving statistics); integer
    variables (step, save counter) must be equal.
    """
    got, want, earlier = map(checkpoint_values, (got_prefix, want_prefix, earlier_prefix))
    assert got.keys() == want.keys()
    worst = {"weights and slots": 0.0, "moving statistics": 0.0}
    moved = dict(worst)
    for key, value in want.items():
        if value.dtype.kind != "f":
            np.testing.assert_array_equal(got[key], value, err_msg=key)
            continue
        kind = "moving statistics" if "moving_" in key else "weights and slots"
        worst[kind] = max(worst[kind], float(np.abs(got[key] - value).max()))
        moved[kind] = max(moved[kind], float(np.abs(value - earlier[key]).max()))
    return worst, moved


def test_two_workers_train_like_one_process_and_resume(tmp_path):
    from prepare_data.faces import load_background_photos, load_face_sources
    from tests.test_train_export import write_shards

    began = time.time()
    root = str(tmp_path)
    data_dir = os.path.join(root, "data")
    sources, photos = load_face_sources(), load_background_photos()
    write_shards(os.path.join(data_dir, "train"), 16, 1, sources, photos)
    write_shards(os.path.join(data_dir, "val"), 2, 2, sources, photos)
    model_dir, ref_dir = os.path.join(root, "model"), os.path.join(root, "reference")
    mw_config, ref_config = os.path.join(root, "multi_worker.json"), os.path.join(root, "reference.json")
    write_recipe(mw_config, data_dir, model_dir, "multi_worker_mirrored", eval_every=STEPS)
    write_recipe(ref_config, data_dir, ref_dir, "default", eval_every=0)

    # --- phase 1: two workers and the one-process reference, side by side ---
    processes = run_all(worker_jobs(lambda name: driver(mw_config, STEPS, root, name), "run") + [
        ("reference", driver(ref_config, STEPS, root, "reference"), None)], root)
    chief, worker, reference = map(driver_result, processes)
    print(f"phase 1: {time.time() - began:.1f} s")
    for result in (chief, worker, reference):
        assert result["step"] == STEPS, result["log"][-3000:]
    assert [s for s, _ in chief["losses"]] == list(range(1, STEPS + 1))
    assert chief["losses"] == worker["losses"]  # the same reduced values on both
    np.testing.assert_allclose([loss for _, loss in chief["losses"][:COMPARED_STEP]],
                               [loss for _, loss in reference["losses"][:COMPARED_STEP]], rtol=1e-5)
    assert np.all(np.isfinite([loss for _, loss in chief["losses"] + reference["losses"]]))
    assert chief["eval"] and not worker["eval"] and not reference["eval"]

    # Who wrote and logged what.
    assert "worker 0 of 2 worker(s): the chief" in chief["log"]
    assert "worker 1 of 2 worker(s): not the chief" in worker["log"]
    assert f"step {STEPS}/{STEPS}" in chief["log"] and "step 1/" not in worker["log"]
    assert chief["log"].count("2 image(s) per replica (global batch 4 over 2 replica(s))") == 1
    assert "image(s) per replica" not in worker["log"] + reference["log"]  # reference: 4 per replica
    assert "multi-worker input: every worker reads and augments all training shards" in chief["log"]
    expected = {"checkpoint", "train", "eval"} | {
        f"ckpt-{n}.{ext}" for n in range(1, STEPS + 1) for ext in ("index", "data-00000-of-00001")}
    assert set(os.listdir(model_dir)) == expected
    assert len(os.listdir(os.path.join(model_dir, "train"))) == 1  # the chief's events file only
    assert len(os.listdir(os.path.join(model_dir, "eval"))) == 1
    for p in processes:
        assert os.listdir(p.tmp) == [], p.name  # no temporary checkpoint folder left

    # The chief's checkpoint equals the one-process run's.
    worst, moved = compare_checkpoints(os.path.join(model_dir, f"ckpt-{COMPARED_STEP}"),
                                       os.path.join(ref_dir, f"ckpt-{COMPARED_STEP}"),
                                       os.path.join(ref_dir, f"ckpt-{COMPARED_STEP - 1}"))
    for kind, tolerance in (("weights and slots", ATOL), ("moving statistics", ATOL_STATISTICS)):
        print(f"{kind}: max |two workers - one process| after {COMPARED_STEP} steps {worst[kind]:.2e} "
              f"(tolerance {tolerance:.0e}); largest change from step {COMPARED_STEP - 1}: {moved[kind]:.2e}")
        assert worst[kind] <= tolerance, (kind, worst[kind])
        assert moved[kind] > 100 * tolerance, (kind, moved[kind])  # a real update, far above it
    for name, value in chief["weights"].items():  # both workers hold the same weights
        np.testing.assert_array_equal(worker["weights"][name], value, err_msg=name)

    # --- phase 2: train.py on both workers resumes from the chief's checkpoint ---
    processes = run_all(worker_jobs(lambda name: ["train.py", "--config", mw_config,
                                                  "--num_steps", str(RESUMED_STEPS)], "resume"), root)
    chief_log, worker_log = (read(p, "err") for p in processes)
    for p in processes:  # every worker resumed at STEPS: trainer checks, else it stops
        assert f"trained to step {RESUMED_STEPS} in {model_dir}" in read(p, "out"), logs(p)
        assert os.listdir(p.tmp) == [], p.name
    assert f"resumed from {os.path.join(model_dir, f'ckpt-{STEPS}')} at step {STEPS}" in chief_log
    assert [f"step {s}/{RESUMED_STEPS}" in chief_log for s in range(STEPS, RESUMED_STEPS + 1)] == [False, True, True]
    assert "worker 1 of 2 worker(s): not the chief" in worker_log and f"/{RESUMED_STEPS}:" not in worker_log
    assert f"step {RESUMED_STEPS} eval: AP@0.5" in chief_log and "eval: AP@0.5" not in worker_log
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(model_dir)
    assert latest == os.path.join(model_dir, f"ckpt-{RESUMED_STEPS}")
    assert int(checkpoint_values(latest)["step/.ATTRIBUTES/VARIABLE_VALUE"]) == RESUMED_STEPS
    assert set(os.listdir(model_dir)) == expected | {
        f"ckpt-{n}.{ext}" for n in range(STEPS + 1, RESUMED_STEPS + 1) for ext in ("index", "data-00000-of-00001")}
    for sub in ("train", "eval"):
        assert len(os.listdir(os.path.join(model_dir, sub))) == 2  # one events file per chief run
    print(f"total: {time.time() - began:.1f} s")


def main(config_path, num_steps, weights_path):
    """A training process: `train` on batches [x, y, x, y] (see the module docstring)."""
    import logging

    import tensorflow as tf

    from src import trainer
    from src.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build_dataset, build_and_restore = trainer.build_dataset, trainer._build_and_restore

    def twice(batch):
        return {key: tf.concat([value, value], axis=0) for key, value in batch.items()}

    def repeated_halves(filenames, *, training, batch_size, **kwargs):
        if not training:  # evaluation: as it is
            return build_dataset(filenames, training=False, batch_size=batch_size, **kwargs)
        # (tf.data sees the static batch size of the result, 4, as tf.distribute needs)
        return build_dataset(filenames, training=True, batch_size=batch_size // 2, **kwargs).map(twice)

    models = []

    def keep_model(*args):
        out = build_and_restore(*args)
        models.append(out[0])
        return out

    trainer.build_dataset, trainer._build_and_restore = repeated_halves, keep_model
    result = trainer.train(load_config(config_path), num_steps=num_steps)
    # Under MultiWorkerMirroredStrategy reading the batch-norm statistics is a collective:
    # both workers read every variable, in the same order.
    weights = {name.replace("/", "."): variable.numpy()
               for name, variable in sorted(models[0].named_variables().items())}
    np.savez(weights_path, **weights)
    print("RESULT " + json.dumps({"step": result["step"], "losses": result["losses"],
                                  "eval": result["eval"] is not None}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
