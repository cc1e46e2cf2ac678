"""Training, resuming, and checkpoint -> save.py -> create_pb.py -> FaceDetector."""
import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

import create_pb
import save
from face_detector import FaceDetector
from prepare_data.faces import load_background_photos, load_face_sources, make_composite
from src.config import load_config
from src.evaluation.ap import pairwise_iou
from src.detector import FaceBoxes
from src.tfrecords import AtomicShardWriter, encode_example, shard_name, write_manifest
from src.trainer import train

SIZE = 256
TRAIN_STEPS = 120


def write_shards(folder, count, seed, sources, photos):
    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    with AtomicShardWriter(os.path.join(folder, shard_name(0))) as writer:
        for k in range(count):
            heights = rng.integers(50, 110, size=int(rng.integers(1, 3)))
            image, faces = make_composite(rng, SIZE, SIZE, len(heights), sources, photos, face_heights=heights)
            boxes = np.array([[f.box[1], f.box[0], f.box[3], f.box[2]] for f in faces]).reshape(-1, 4) / SIZE
            jpeg = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            writer.write(encode_example(f"{seed}_{k}.jpg", jpeg, boxes))
    write_manifest(folder, [(writer.path, writer.num_written)])


def write_config(path, data_dir, model_dir, eval_every):
    with open("configs/sample.json") as f:
        recipe = json.load(f)
    recipe["input"].update(train_dataset=os.path.join(data_dir, "train"), val_dataset=os.path.join(data_dir, "val"),
                           image_size=[SIZE, SIZE], batch_size=4, shuffle_buffer=64)
    recipe["training"].update(model_dir=model_dir, num_steps=TRAIN_STEPS, lr_boundaries=[1000],
                              lr_values=[0.01, 0.001], log_every=10, checkpoint_every=30,
                              eval_every=eval_every, seed=0)
    with open(path, "w") as f:
        json.dump(recipe, f)
    return load_config(path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    sources, photos = load_face_sources(), load_background_photos()
    write_shards(str(root / "train"), 64, 1, sources, photos)
    write_shards(str(root / "val"), 12, 2, sources, photos)
    return str(root)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    config = write_config(str(root / "config.json"), data_dir, str(root / "model"), eval_every=TRAIN_STEPS)
    result = train(config)
    return config, str(root / "config.json"), result


def test_short_training_run_learns(trained):
    _, _, result = trained
    losses = [loss for _, loss in result["losses"]]
    assert result["step"] == TRAIN_STEPS
    # Measured on this machine: about 10 -> 3.5 (the L2 term alone is ~0.86), and AP@0.5 on
    # the 12 held-out composites about 0.6 - 0.8; an untrained model scores 0 (its face prior
    # 0.01 is below the 0.05 score threshold), a broken loss stays near its start.
    assert np.mean(losses[-3:]) < 0.5 * losses[0], losses
    assert result["eval"]["AP"] > 0.4, result["eval"]


def summary_tags(folder):
    tags = set()
    for name in os.listdir(folder):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_tensorboard_summaries(trained):
    config, _, _ = trained
    model_dir = config.training.model_dir
    assert {"losses/total_loss", "losses/localization_loss", "losses/classification_loss",
            "losses/regularization_loss", "learning_rate", "matches/level_0", "matches/level_2",
            "ohem/positives", "ohem/negatives"} <= summary_tags(os.path.join(model_dir, "train"))
    assert {"eval/AP", "eval/precision", "eval/recall", "eval/threshold", "eval/mean_iou", "eval/FP",
            "eval/FN", "eval/detections"} <= summary_tags(os.path.join(model_dir, "eval"))


def test_resume_continues_step_and_loss(data_dir, tmp_path):
    config = write_config(str(tmp_path / "c.json"), data_dir, str(tmp_path / "model"), eval_every=0)
    first = train(config, num_steps=30)
    assert first["step"] == 30
    assert tf.train.latest_checkpoint(config.training.model_dir).endswith("ckpt-30")
    second = train(config, num_steps=50)
    assert second["step"] == 50
    assert [s for s, _ in second["losses"]] == [40, 50]  # continues from 30, logs every 10
    # Continuous: resumed losses are near the end of the first run, far below its start.
    assert max(l for _, l in second["losses"]) < 0.8 * first["losses"][0][1]
    assert sorted(os.listdir(config.training.model_dir))[:2] == ["checkpoint", "ckpt-30.data-00000-of-00001"]


def test_checkpoint_to_pb_matches_model(trained, tmp_path, capsys):
    config, config_path, _ = trained
    export_dir = str(tmp_path / "export")
    save.main(["--config", config_path, "--output_dir", export_dir])
    assert os.listdir(export_dir) == [str(TRAIN_STEPS)]
    assert save.main(["--config", config_path, "--output_dir", export_dir]) == 2  # never overwrites an export
    assert "already exists" in capsys.readouterr().err
    pb = str(tmp_path / "model.pb")
    create_pb.main(["-s", export_dir, "-o", pb])
    graph_def = tf.compat.v1.GraphDef()
    with open(pb, "rb") as f:
        graph_def.ParseFromString(f.read())
    ops = {n.op for n in graph_def.node}
    assert "FusedBatchNormV3" not in ops and "VarHandleOp" not in ops
    names = {n.name for n in graph_def.node}
    assert {"image_tensor", "boxes", "scores", "num_boxes"} <= names

    model = FaceBoxes()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(config.training.model_dir)).expect_partial()
    detector = FaceDetector(pb)
    sources, photos = load_face_sources(), load_background_photos()
    rng = np.random.default_rng(5)
    for height, width in ((256, 256), (333, 517)):
        image, _ = make_composite(rng, width, height, 2, sources, photos, face_heights=[80, 60])
        boxes, scores = detector(image, score_threshold=0.05)
        ref = model.predictions(tf.constant(image[None], tf.float32) / 255.0, 0.05, 0.3, 200)
        n = int(ref["num_boxes"][0])
        ref_scores = ref["scores"][0, :n].numpy()
        keep = ref_scores > 0.05
        ref_boxes = ref["boxes"][0, :n].numpy()[keep] * [height, width, height, width]
        assert len(boxes) == keep.sum() > 0
        np.testing.assert_allclose(scores, ref_scores[keep], atol=1e-4)
        np.testing.assert_allclose(boxes, ref_boxes, atol=1e-4 * max(height, width))


def test_bfloat16_export_finds_the_same_faces(trained, tmp_path):
    _, config_path, _ = trained
    pbs = {}
    for dtype in ("float32", "bfloat16"):
        save.main(["--config", config_path, "--output_dir", str(tmp_path / dtype), "--compute_dtype", dtype])
        pbs[dtype] = str(tmp_path / f"{dtype}.pb")
        create_pb.main(["-s", str(tmp_path / dtype), "-o", pbs[dtype]])
    full, half = FaceDetector(pbs["float32"]), FaceDetector(pbs["bfloat16"])
    rng = np.random.default_rng(7)
    sources, photos = load_face_sources(), load_background_photos()
    image, _ = make_composite(rng, 320, 256, 2, sources, photos, face_heights=[90, 70])
    boxes, scores = full(image, score_threshold=0.8)
    half_boxes, half_scores = half(image, score_threshold=0.5)
    assert len(boxes) > 0
    # Every confident float32 face is found in bfloat16 too (low-score duplicates near the
    # NMS threshold may swap, so only confident ones are compared).
    for box, score in zip(boxes, scores):
        ious = pairwise_iou(box[None], half_boxes)[0]
        assert ious.max() > 0.7 and abs(half_scores[ious.argmax()] - score) < 0.05


def test_ctrl_c_saves_a_checkpoint_and_says_where(data_dir, tmp_path):
    """SIGINT to train.py: a checkpoint of the last finished step, one line, exit 130; resume works."""
    import signal
    import subprocess
    import sys
    import time
    config_path = str(tmp_path / "c.json")
    write_config(config_path, data_dir, str(tmp_path / "model"), eval_every=0)
    recipe = json.load(open(config_path))
    recipe["training"].update(num_steps=100000, log_every=1, checkpoint_every=100000)
    json.dump(recipe, open(config_path, "w"))
    process = subprocess.Popen([sys.executable, "train.py", "--config", config_path], stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    lines = []
    deadline = time.time() + 240
    try:
        for line in process.stderr:  # wait until a few steps are done
            lines.append(line)
            if " INFO step 2/" in line or time.time() > deadline:
                break
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=120)[1]
    finally:
        process.kill()
    assert process.returncode == 130, "".join(lines) + rest
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in rest, rest
    step = int(errors[0].split("interrupted at step ")[1].split(";")[0])
    assert step >= 2
    prefix = tf.train.latest_checkpoint(str(tmp_path / "model"))
    assert prefix.endswith(f"ckpt-{step}") and errors[0].endswith(prefix)
    # Training continues from it.
    resumed = train(load_config(config_path), num_steps=step + 2)
    assert resumed["step"] == step + 2
