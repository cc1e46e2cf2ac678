"""Tests for src/upstream_checkpoint.py: TF1 checkpoint -> TF2 FaceBoxes, checked end to end.

Box convention: model outputs and frozen-graph outputs are [ymin, xmin, ymax, xmax] normalized
to [0, 1]; FaceDetector returns the same order in pixels.

The test writes a TF1-style checkpoint itself (graph mode, tf.compat.v1 variables with the
upstream's names and shapes (its src/network.py, src/detector.py), a Saver in a Session) and computes the
upstream network a second time with raw tf.nn ops straight from those tensors, so a name or
ordering mix-up anywhere between checkpoint and model shows up as a numeric mismatch.
"""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from src import export
from src.config import load_config
from src.detector import FaceBoxes
from src.upstream_checkpoint import (
    UpstreamCheckpointError, inspect_upstream_checkpoint, load_upstream_checkpoint,
    load_upstream_frozen_graph, resolve_checkpoint_prefix)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPSILON = 1e-3  # upstream batch norm epsilon
TOLERANCE = 1e-4
GLOBAL_STEP = 240000
# Trainable variables that get a '/Momentum' slot in the test checkpoint (a few are enough).
SLOTTED = ("conv1/weights", "conv1/batch_norm/gamma", "prediction_layers/class_predictor_0/biases")

# The upstream's layers, written out independently of src/network.py:
# scope -> (kernel size, in channels, out channels, stride).
INCEPTION_PATHS = (
    ("conv_1x1_path1", 1, 128, 32), ("conv_1x1_path2", 1, 128, 32),
    ("conv_1x1_path3", 1, 128, 24), ("conv_3x3_path3", 3, 24, 32),
    ("conv_1x1_path4", 1, 128, 24), ("conv_3x3_path4", 3, 24, 32),
    ("conv_3x3_second_path4", 3, 32, 32),
)
CONV_LAYERS = dict(
    [("conv1", (7, 3, 24, 4)), ("conv2", (5, 48, 64, 2))]
    + [(f"inception{k}/{path}", (size, cin, cout, 1))
       for k in (1, 2, 3) for path, size, cin, cout in INCEPTION_PATHS]
    + [("conv3_1", (1, 128, 128, 1)), ("conv3_2", (3, 128, 256, 2)),
       ("conv4_1", (1, 256, 128, 1)), ("conv4_2", (3, 128, 256, 2))])
FEATURE_CHANNELS = (128, 256, 256)
ANCHORS_PER_CELL = (21, 1, 1)  # 16 + 4 + 1 on map 0 (densified), 1 on maps 1 and 2
NUM_VARIABLES = 5 * len(CONV_LAYERS) + 2 * 2 * 3  # 27 conv+BN layers, 6 heads
NUM_VALUES = 1_007_330 + 2_960  # trainable + batch-norm moving statistics (the upstream's network, counted by hand)


def upstream_tensors(seed=0):
    """Random values for every upstream checkpoint variable: dict name -> float32 array."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for scope, (size, cin, cout, _) in CONV_LAYERS.items():
        tensors[f"{scope}/weights"] = rng.normal(0, np.sqrt(2.0 / (size * size * cin)),
                                                 (size, size, cin, cout))
        tensors[f"{scope}/batch_norm/gamma"] = rng.uniform(0.5, 1.5, cout)
        tensors[f"{scope}/batch_norm/beta"] = rng.normal(0, 0.1, cout)
        tensors[f"{scope}/batch_norm/moving_mean"] = rng.normal(0, 0.1, cout)
        tensors[f"{scope}/batch_norm/moving_variance"] = rng.uniform(0.5, 2.0, cout)
    for i, (cin, k) in enumerate(zip(FEATURE_CHANNELS, ANCHORS_PER_CELL)):
        for head, depth in (("box_encoding_predictor", 4), ("class_predictor", 2)):
            scope = f"prediction_layers/{head}_{i}"
            tensors[f"{scope}/weights"] = rng.normal(0, np.sqrt(0.5 / (9 * cin)), (3, 3, cin, k * depth))
            tensors[f"{scope}/biases"] = rng.normal(0, 0.1, k * depth)
    return {name: value.astype(np.float32) for name, value in tensors.items()}


def write_tf1_checkpoint(folder, tensors, scope="", slotted=SLOTTED):
    """Saves `tensors` the TF1 way (graph, get_variable, Saver) plus global_step and slots.

    Returns:
        str, the checkpoint prefix (folder/model.ckpt-GLOBAL_STEP); folder also gets the
        'checkpoint' state file.
    """
    graph = tf.Graph()
    with graph.as_default():
        for name, value in tensors.items():
            tf.compat.v1.get_variable(scope + name, initializer=tf.constant(value))
        for name in slotted:
            tf.compat.v1.get_variable(scope + name + "/Momentum",
                                      initializer=tf.constant(0.01 * tensors[name]), trainable=False)
        step = tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(step.assign(GLOBAL_STEP))
            return saver.save(session, os.path.join(str(folder), "model.ckpt"), global_step=GLOBAL_STEP)


def reference_network(images, w):
    """The upstream FaceBoxes forward pass at inference, raw tf.nn ops on checkpoint tensors.

    Args:
        images: float32 [B, H, W, 3] in [0, 1], H and W multiples of 128.
        w: dict name -> float32 array (upstream names).

    Returns:
        (three feature maps, box encodings [B, A, 4], class logits [B, A, 2]).
    """
    def conv_bn(x, scope):
        _, _, _, stride = CONV_LAYERS[scope]
        y = tf.nn.conv2d(x, w[f"{scope}/weights"], stride, "SAME")
        bn = lambda key: w[f"{scope}/batch_norm/{key}"]
        return tf.nn.batch_normalization(y, bn("moving_mean"), bn("moving_variance"),
                                         bn("beta"), bn("gamma"), EPSILON)

    def crelu(x):
        return tf.nn.relu(tf.concat([x, -x], axis=3))

    def inception(x, k):
        relu_conv = lambda y, path: tf.nn.relu(conv_bn(y, f"inception{k}/{path}"))
        p1 = relu_conv(x, "conv_1x1_path1")
        p2 = relu_conv(tf.nn.max_pool2d(x, 3, 1, "SAME"), "conv_1x1_path2")
        p3 = relu_conv(relu_conv(x, "conv_1x1_path3"), "conv_3x3_path3")
        p4 = relu_conv(relu_conv(relu_conv(x, "conv_1x1_path4"), "conv_3x3_path4"),
                       "conv_3x3_second_path4")
        return tf.concat([p1, p2, p3, p4], axis=3)

    x = 2.0 * images - 1.0
    x = tf.nn.max_pool2d(crelu(conv_bn(x, "conv1")), 3, 2, "SAME")
    x = tf.nn.max_pool2d(crelu(conv_bn(x, "conv2")), 3, 2, "SAME")
    for k in (1, 2, 3):
        x = inception(x, k)
    map0 = x
    map1 = tf.nn.relu(conv_bn(tf.nn.relu(conv_bn(map0, "conv3_1")), "conv3_2"))
    map2 = tf.nn.relu(conv_bn(tf.nn.relu(conv_bn(map1, "conv4_1")), "conv4_2"))
    maps = [map0, map1, map2]
    batch = images.shape[0]

    def head(name, depth):
        outs = []
        for i, feature_map in enumerate(maps):
            scope = f"prediction_layers/{name}_{i}"
            y = tf.nn.conv2d(feature_map, w[f"{scope}/weights"], 1, "SAME") + w[f"{scope}/biases"]
            outs.append(tf.reshape(y, [batch, -1, depth]))
        return tf.concat(outs, axis=1)

    return maps, head("box_encoding_predictor", 4), head("class_predictor", 2)


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=TOLERANCE, atol=TOLERANCE)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """(tensors, checkpoint prefix, folder) of the module's TF1 checkpoint."""
    folder = tmp_path_factory.mktemp("upstream")
    tensors = upstream_tensors()
    return tensors, write_tf1_checkpoint(folder, tensors), str(folder)


@pytest.fixture(scope="module")
def converted(upstream):
    _, prefix, _ = upstream
    model = FaceBoxes(seed=5)
    load_upstream_checkpoint(model, prefix)
    return model


def test_the_test_checkpoint_has_the_upstream_layout(upstream):
    tensors, _, _ = upstream
    assert len(tensors) == NUM_VARIABLES == 147
    assert sum(v.size for v in tensors.values()) == NUM_VALUES


@pytest.mark.parametrize("height, width", [(128, 256), (256, 384)])
def test_converted_model_equals_the_upstream_network(upstream, converted, height, width):
    tensors, _, _ = upstream
    images = tf.random.stateless_uniform([2, height, width, 3], seed=[height, width])
    maps, box_encodings, class_logits = reference_network(images, tensors)
    ours = converted.feature_extractor(images, training=False)
    for map_ours, map_reference in zip(ours, maps):
        assert map_ours.shape == map_reference.shape
        assert_close(map_ours, map_reference)
    encodings, logits, anchors, _ = converted.raw_outputs(images, training=False)
    assert encodings.shape == (2, anchors.shape[0], 4) and logits.shape == (2, anchors.shape[0], 2)
    assert_close(encodings, box_encodings)
    assert_close(logits, class_logits)
    # Not a vacuous match: the outputs vary and depend on the weights.
    assert np.std(logits.numpy()) > 0.1 and np.std(maps[2].numpy()) > 0.01


def test_report_counts_every_variable_and_the_ignored_training_state(upstream, converted):
    _, prefix, _ = upstream
    model = FaceBoxes(seed=7)
    before = model.named_variables()["conv2/weights"].numpy().copy()
    report = inspect_upstream_checkpoint(model, prefix)
    np.testing.assert_array_equal(model.named_variables()["conv2/weights"].numpy(), before)
    assert report.source == prefix and report.scope == "" and report.global_step == GLOBAL_STEP
    assert len(report.assigned) == NUM_VARIABLES
    assert dict(report.assigned)["prediction_layers/class_predictor_0/weights"] == (3, 3, 128, 42)
    assert report.num_values == NUM_VALUES
    assert [name for name, _ in report.ignored] == sorted(
        ["global_step"] + [name + "/Momentum" for name in SLOTTED])
    assert "147 variables (1,010,290 values)" in report.summary()
    assert load_upstream_checkpoint(converted, prefix) == report


def test_folder_and_file_names_resolve_to_the_prefix(upstream, tmp_path):
    _, prefix, folder = upstream
    assert resolve_checkpoint_prefix(folder) == prefix
    assert resolve_checkpoint_prefix(prefix + ".index") == prefix
    assert resolve_checkpoint_prefix(prefix + ".data-00000-of-00001") == prefix
    # A downloaded folder whose state file names the training machine's absolute path.
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in os.listdir(folder):
        if name.startswith("model.ckpt"):
            shutil.copy(os.path.join(folder, name), moved / name)
    (moved / "checkpoint").write_text(
        f'model_checkpoint_path: "/home/someone/run00/model.ckpt-{GLOBAL_STEP}"\n')
    assert resolve_checkpoint_prefix(str(moved)) == str(moved / f"model.ckpt-{GLOBAL_STEP}")
    with pytest.raises(UpstreamCheckpointError, match="no 'checkpoint' state file"):
        resolve_checkpoint_prefix(str(tmp_path))
    with pytest.raises(UpstreamCheckpointError, match="no such checkpoint"):
        resolve_checkpoint_prefix(str(tmp_path / "model.ckpt-1"))


def _bad_checkpoint(tmp_path, upstream, edit):
    tensors = dict(upstream[0])
    edit(tensors)
    return write_tf1_checkpoint(tmp_path, tensors)


@pytest.mark.parametrize("edit, needles", [
    (lambda t: t.pop("inception2/conv_3x3_second_path4/batch_norm/moving_variance"),
     ["'inception2/conv_3x3_second_path4/batch_norm/moving_variance' is missing", "[32]"]),
    (lambda t: t.update({"conv3_2/weights": np.zeros((3, 3, 256, 128), np.float32)}),
     ["'conv3_2/weights' has shape [3, 3, 256, 128]", "expects [3, 3, 128, 256]"]),
    (lambda t: t.update({"conv5/weights": np.zeros((3, 3, 256, 256), np.float32)}),
     ["'conv5/weights' (shape [3, 3, 256, 256]) is not a variable of the model"]),
], ids=["missing", "wrong_shape", "unknown"])
def test_bad_checkpoints_give_one_clear_line_and_leave_the_model_untouched(
        upstream, tmp_path, edit, needles):
    prefix = _bad_checkpoint(tmp_path, upstream, edit)
    model = FaceBoxes(seed=9)
    before = {name: v.numpy().copy() for name, v in model.named_variables().items()}
    with pytest.raises(UpstreamCheckpointError) as info:
        load_upstream_checkpoint(model, prefix)
    message = str(info.value)
    assert "\n" not in message and message.startswith(prefix + ": ")
    for needle in needles:
        assert needle in message
    assert isinstance(info.value, ValueError)
    for name, variable in model.named_variables().items():
        np.testing.assert_array_equal(variable.numpy(), before[name])


def test_several_problems_are_counted(upstream, tmp_path):
    def edit(t):
        t.pop("conv1/batch_norm/beta")
        t.pop("conv2/batch_norm/beta")
        t["extra/weights"] = np.zeros(3, np.float32)

    prefix = _bad_checkpoint(tmp_path, upstream, edit)
    with pytest.raises(UpstreamCheckpointError, match=r"and 2 more problem\(s\)"):
        inspect_upstream_checkpoint(FaceBoxes(seed=9), prefix)


def test_an_outer_scope_is_found_and_stripped(upstream, converted, tmp_path):
    tensors, _, _ = upstream
    prefix = write_tf1_checkpoint(tmp_path, tensors, scope="FaceBoxes/")
    model = FaceBoxes(seed=11)
    report = load_upstream_checkpoint(model, prefix)
    assert report.scope == "FaceBoxes/" and len(report.ignored) == 1 + len(SLOTTED)
    for name, variable in model.named_variables().items():
        np.testing.assert_array_equal(variable.numpy(), converted.named_variables()[name].numpy())


def write_tf1_frozen_graph(path, tensors):
    """Freezes a TF1 graph holding `tensors` as variables (plus an unrelated constant) to `path`.

    The output `total` depends on every variable, so freezing keeps each as a Const node of the
    variable's name, as the upstream's create_pb.py did.
    """
    graph = tf.Graph()
    with graph.as_default():
        sums = [tf.reduce_sum(tf.compat.v1.get_variable(name, initializer=tf.constant(value)))
                for name, value in tensors.items()]
        tf.multiply(tf.add_n(sums), tf.constant(0.5, name="unrelated"), name="total")
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), ["total"])
    export.write_graph_def(frozen, path)


def test_frozen_graph_constants_load_like_the_checkpoint(upstream, converted, tmp_path):
    tensors, _, _ = upstream
    path = str(tmp_path / "upstream.pb")
    write_tf1_frozen_graph(path, tensors)
    model = FaceBoxes(seed=13)
    report = load_upstream_frozen_graph(model, path)
    assert report.source == path and len(report.assigned) == NUM_VARIABLES and not report.ignored
    assert report.global_step is None
    for name, variable in model.named_variables().items():
        np.testing.assert_array_equal(variable.numpy(), converted.named_variables()[name].numpy())
    # A graph whose batch norm was folded away at freezing time lacks the statistics.
    folded = {k: v for k, v in tensors.items() if "/batch_norm/" not in k}
    write_tf1_frozen_graph(path, folded)
    with pytest.raises(UpstreamCheckpointError,
                       match=r"upstream.pb: variable 'conv1/batch_norm/beta' is missing"):
        load_upstream_frozen_graph(FaceBoxes(seed=13), path)


def test_cli_writes_a_frozen_graphs_weights_as_a_checkpoint_and_refuses_a_folded_graph(
        upstream, converted, tmp_path, capsys):
    from src import upstream_checkpoint
    tensors, _, _ = upstream
    graph = str(tmp_path / "upstream.pb")
    write_tf1_frozen_graph(graph, tensors)
    prefix = str(tmp_path / "out" / "weights.ckpt")
    assert upstream_checkpoint.main(["--from_frozen_graph", graph, "--output", prefix]) == 0
    model = FaceBoxes(seed=13)
    report = load_upstream_checkpoint(model, prefix)
    assert len(report.assigned) == NUM_VARIABLES and report.global_step is None
    for name, variable in model.named_variables().items():
        np.testing.assert_array_equal(variable.numpy(), converted.named_variables()[name].numpy())
    # An existing output is kept unless --overwrite.
    before = open(prefix + ".index", "rb").read()
    assert upstream_checkpoint.main(["--from_frozen_graph", graph, "--output", prefix]) == 2
    assert "a checkpoint already exists there; pass --overwrite" in capsys.readouterr().err
    assert open(prefix + ".index", "rb").read() == before
    # A graph without the upstream's variable names (this project's create_pb.py output folds
    # batch norm and merges convolutions; renamed here) cannot be inverted: one line says so.
    write_tf1_frozen_graph(graph, {"folded/" + k.replace("conv1/", "c1/"): v for k, v in tensors.items()})
    assert upstream_checkpoint.main(["--from_frozen_graph", graph, "--output", str(tmp_path / "x.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {graph}: cannot be read back into weights")
    assert not os.path.exists(str(tmp_path / "x.ckpt.index"))


def test_converted_checkpoint_survives_save_py_freezing_and_face_detector(upstream, converted, tmp_path):
    import save
    from face_detector import FaceDetector

    _, prefix, _ = upstream
    config_path = os.path.join(ROOT, "configs", "config.json")
    save.main(["--config", config_path, "--from_upstream_checkpoint", prefix,
               "--output_dir", str(tmp_path / "export")])
    pb_path = str(tmp_path / "model.pb")
    # save.py versions the export by the upstream checkpoint's global step.
    export.write_graph_def(export.freeze_saved_model(str(tmp_path / "export" / str(GLOBAL_STEP))), pb_path)

    height, width = 200, 300  # padded to 256 x 384 inside both
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([(yy * 255 // height), (xx * 255 // width), ((yy + xx) * 7) % 256], axis=-1)
    image = image.astype(np.uint8)
    pp = load_config(config_path).postprocessing
    expected = converted.predictions(tf.constant(image[None], tf.float32) / 255.0,
                                     pp.score_threshold, pp.iou_threshold, pp.max_boxes)
    count = int(expected["num_boxes"][0])
    assert count > 5
    boxes, scores = FaceDetector(pb_path)(image, score_threshold=0.0)
    assert boxes.shape == (count, 4)
    assert_close(scores, expected["scores"][0, :count])
    assert_close(boxes / [height, width, height, width], expected["boxes"][0, :count])


def train_steps(tmp_path, num_steps, name="model", loss=None, **training):
    """Runs `num_steps` of the sample recipe on generated shards (written once per tmp_path) with
    the `training` keys (and `loss` keys) replaced; model_dir tmp_path/name. Returns (config, train's result)."""
    import json
    from prepare_data.faces import load_background_photos, load_face_sources
    from src.trainer import train
    from tests.test_train_export import write_config, write_shards
    if not (tmp_path / "data" / "train").exists():
        write_shards(str(tmp_path / "data" / "train"), 8, 1, load_face_sources(), load_background_photos())
    path = tmp_path / f"{name}.json"
    write_config(str(path), str(tmp_path / "data"), str(tmp_path / name), eval_every=0)
    recipe = json.loads(path.read_text())
    recipe["training"].update(training)
    recipe["loss"].update(loss or {})
    path.write_text(json.dumps(recipe))
    config = load_config(str(path))
    return config, train(config, num_steps=num_steps)


def test_train_py_starts_from_the_upstream_checkpoint(upstream, tmp_path):
    """training.init_from_upstream_checkpoint: the first checkpoint holds the upstream weights
    moved by one SGD step, not a fresh initialisation."""
    tensors, prefix, _ = upstream
    config, result = train_steps(tmp_path, 1, init_from_upstream_checkpoint=prefix, lr_values=[1e-4, 1e-5])
    assert result["step"] == 1
    model = FaceBoxes()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(config.training.model_dir)).expect_partial()
    fresh = FaceBoxes(seed=0).named_variables()
    for name in ("conv1/weights", "inception3/conv_3x3_second_path4/weights",
                 "prediction_layers/class_predictor_0/weights"):
        np.testing.assert_allclose(model.named_variables()[name].numpy(), tensors[name], atol=1e-2)
        assert np.abs(fresh[name].numpy() - tensors[name]).max() > 0.1  # the tolerance tells them apart


def test_our_weights_written_in_the_upstream_format_load_back_exactly(tmp_path):
    from src.upstream_checkpoint import write_upstream_checkpoint
    source, target = FaceBoxes(seed=1), FaceBoxes(seed=2)
    for variable in source.named_variables().values():  # BN statistics differ from init too
        variable.assign(variable + 0.25)
    prefix = write_upstream_checkpoint(source, str(tmp_path / "w" / "facebox_weights.ckpt"), global_step=1234)
    report = load_upstream_checkpoint(target, prefix)
    assert report.global_step == 1234 and len(report.assigned) == len(source.named_variables())
    for name, variable in source.named_variables().items():
        np.testing.assert_array_equal(target.named_variables()[name].numpy(), variable.numpy())
    # The CLI exports train.py's checkpoints and refuses to overwrite.
    from src.upstream_checkpoint import main
    model_dir = tmp_path / "run"
    step = tf.Variable(77, dtype=tf.int64)
    tf.train.Checkpoint(model=source, step=step).save(str(model_dir / "ckpt"))
    assert main(["--checkpoint", str(model_dir), "--output", str(tmp_path / "out.ckpt")]) == 0
    assert load_upstream_checkpoint(FaceBoxes(), str(tmp_path / "out.ckpt")).global_step == 77
    assert main(["--checkpoint", str(model_dir), "--output", str(tmp_path / "out.ckpt")]) == 2


def test_fine_tuning_with_frozen_batch_norm_keeps_the_loaded_statistics(upstream, tmp_path):
    """training.freeze_batch_norm_statistics: from an upstream-format checkpoint (as the converted
    WIDER weights are), a few steps move the kernels, gamma and beta but leave every moving
    statistic exactly as loaded; without the option they move."""
    tensors, prefix, _ = upstream
    moved = {}
    for frozen in (True, False):
        config, result = train_steps(tmp_path, 2, f"model_{frozen}", init_from_upstream_checkpoint=prefix,
                                     freeze_batch_norm_statistics=frozen, lr_values=[1e-3, 1e-4])
        assert result["step"] == 2
        model = FaceBoxes()
        tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(config.training.model_dir)).expect_partial()
        variables = model.named_variables()
        statistics = [name for name in variables if "/moving_" in name]
        assert len(statistics) == 2 * 27
        moved[frozen] = {name: float(np.abs(variables[name].numpy() - tensors[name]).max()) for name in variables}
        learned = [name for name in variables if name.endswith(("/weights", "/gamma", "/beta"))]
        assert max(moved[frozen][name] for name in learned) > 1e-4, frozen  # the rest learns either way
    assert max(moved[True][name] for name in moved[True] if "/moving_" in name) == 0.0
    assert max(moved[False][name] for name in moved[False] if "/moving_" in name) > 1e-3


def test_fine_tuning_with_distillation_from_the_upstream_checkpoint(upstream, tmp_path):
    """loss.distillation_weight + training.teacher_checkpoint: the teacher (the same upstream
    weights) agrees with the model it initialised, so the distillation losses start at zero
    (batch norm frozen: both use the loaded statistics); train.py runs with it, and the
    teacher's weights are what the checkpoint holds, not the trained ones."""
    from src.network import freeze_batch_norm_statistics
    from src.training import compute_losses

    tensors, prefix, _ = upstream
    model, teacher = FaceBoxes(seed=1), FaceBoxes(seed=2)
    load_upstream_checkpoint(model, prefix)
    load_upstream_checkpoint(teacher, prefix)
    freeze_batch_norm_statistics(model)
    rng = np.random.default_rng(0)
    batch = {"images": tf.constant(rng.uniform(size=(2, 256, 256, 3)), tf.float32),
             "boxes": tf.constant([[[0.2, 0.2, 0.6, 0.5]], [[0.1, 0.5, 0.4, 0.8]]], tf.float32),
             "num_boxes": tf.constant([1, 1], tf.int32)}
    out = compute_losses(model, batch, (1.0, 1.0), teacher=teacher, distillation_weight=2.0)
    assert abs(float(out["distillation_classification_loss"])) < 1e-4
    assert abs(float(out["distillation_localization_loss"])) < 1e-4
    plain = compute_losses(model, batch, (1.0, 1.0))
    np.testing.assert_allclose(float(out["total_loss"]), float(plain["total_loss"]), rtol=1e-4)
    bias = model.class_heads[0].bias  # [anchors per cell * 2]: (background, face) pairs
    bias.assign_add(tf.tile([-1.0, 1.0], [bias.shape[0] // 2]))  # the model now disagrees
    out = compute_losses(model, batch, (1.0, 1.0), teacher=teacher, distillation_weight=2.0)
    plain = compute_losses(model, batch, (1.0, 1.0))
    assert float(out["distillation_classification_loss"]) > 0.01
    np.testing.assert_allclose(float(out["total_loss"]) - float(plain["total_loss"]),
                               2.0 * (float(out["distillation_classification_loss"])
                                      + float(out["distillation_localization_loss"])), rtol=1e-4)

    _, result = train_steps(tmp_path, 2, loss={"distillation_weight": 1.0}, init_from_upstream_checkpoint=prefix,
                            freeze_batch_norm_statistics=True, teacher_checkpoint=prefix, lr_values=[1e-3, 1e-4])
    assert result["step"] == 2 and all(np.isfinite(loss) for _, loss in result["losses"])


def test_frozen_layers_keep_their_loaded_weights_while_the_rest_trains(upstream, tmp_path):
    """training.frozen_layers: two steps from the upstream-format checkpoint leave conv1 and conv2
    exactly as loaded (kernels, gamma, beta) while later layers move; an unknown name is refused."""
    from src.training import trained_variables

    tensors, prefix, _ = upstream
    _, result = train_steps(tmp_path, 2, init_from_upstream_checkpoint=prefix, freeze_batch_norm_statistics=True,
                            frozen_layers=["conv1", "conv2"], lr_values=[1e-3, 1e-4])
    assert result["step"] == 2
    model = FaceBoxes()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(str(tmp_path / "model"))).expect_partial()
    moved = {name: float(np.abs(variable.numpy() - tensors[name]).max())
             for name, variable in model.named_variables().items()}
    frozen = [name for name in moved if name.split("/")[0] in ("conv1", "conv2")]
    assert len(frozen) == 2 * 5  # weights, gamma, beta and the two statistics of each
    assert max(moved[name] for name in frozen) == 0.0
    assert max(moved[name] for name in moved if name.startswith("inception") and name.endswith("/weights")) > 1e-4
    fresh = FaceBoxes(seed=0)
    assert len(trained_variables(fresh, ["conv1"])) == len(fresh.trainable_variables) - 3
    with pytest.raises(ValueError, match="'conv9' is no layer of the model"):
        trained_variables(fresh, ["conv9"])
