"""train() under MirroredStrategy with two replicas (two logical CPU devices).

Logical devices must be configured before TensorFlow initialises, so this runs in a fresh
Python process.
"""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, logging, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    from prepare_data.faces import load_background_photos, load_face_sources
    from src.trainer import train
    from tests.test_train_export import write_config, write_shards
    root = sys.argv[1]
    sources, photos = load_face_sources(), load_background_photos()
    write_shards(root + "/data/train", 16, 1, sources, photos)
    write_shards(root + "/data/val", 2, 2, sources, photos)
    config = write_config(root + "/config.json", root + "/data", root + "/model", eval_every=0)
    with open(root + "/config.json") as f:
        recipe = json.load(f)
    recipe["training"]["strategy"] = "mirrored"
    recipe["training"]["checkpoint_every"] = 4
    with open(root + "/config.json", "w") as f:
        json.dump(recipe, f)
    from src.config import load_config
    config = load_config(root + "/config.json")
    first = train(config, num_steps=4)
    second = train(config, num_steps=8)
    print("RESULT", first["step"], second["step"], [s for s, _ in second["losses"]])
""")


def test_mirrored_strategy_two_replicas_trains_and_resumes(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "MirroredStrategy: 2 replica(s), per-replica batch 2, global batch 4" in proc.stdout
    assert "RESULT 4 8 [8]" in proc.stdout, proc.stdout[-2000:]
    assert "resumed from" in proc.stdout and "at step 4" in proc.stdout
