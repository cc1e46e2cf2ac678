"""The shipped model's two fine-tuning stages: configs/realfaces.json (from the WIDER weights) and
configs/realfaces_stage2.json (from stage 1, conv1 and conv2 frozen). Each loads, and a few steps of it run
from an upstream-format checkpoint, distilling towards that checkpoint with batch norm frozen.

Stage 1 names models/wider_weights.ckpt, the upstream's WIDER graph converted by
`python -m src.upstream_checkpoint --from_frozen_graph`; stage 2 models/realfaces_stage1.ckpt. Here the
steps start from the shipped model/facebox_weights.ckpt (the same format) and, where the upstream graph is
at hand (../shared/models/upstream_wider/, outside the repository), from that graph converted as the README
says.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "configs", "realfaces.json")
STAGE2 = os.path.join(ROOT, "configs", "realfaces_stage2.json")
SHIPPED = os.path.join(ROOT, "model", "facebox_weights.ckpt")
WIDER_GRAPH = os.path.join(os.path.dirname(ROOT), "shared", "models", "upstream_wider", "facebox_upstream_wider.pb")


def test_the_recipe_loads_and_fine_tunes_from_the_wider_weights():
    from src.config import load_config
    config = load_config(RECIPE)
    t = config.training
    assert t.init_from_upstream_checkpoint == t.teacher_checkpoint == "models/wider_weights.ckpt"
    assert t.freeze_batch_norm_statistics and config.loss.distillation_weight > 0
    assert max(t.lr_values) <= 1e-3  # a fine-tune, not a restart
    # Chosen on the held-out shards, never on FDDB (build_realfaces.sh writes FDDB to shards/fddb).
    assert "holdout" in config.input.val_dataset and "fddb" not in config.input.val_dataset
    assert config.input.face_box_top_extension == 0.0  # one box convention: the teacher's, WIDER's


def test_stage_2_continues_from_stage_1_with_the_first_layers_frozen():
    from src.config import load_config
    first, second = load_config(RECIPE), load_config(STAGE2)
    t = second.training
    assert t.init_from_upstream_checkpoint == t.teacher_checkpoint == "models/realfaces_stage1.ckpt"
    assert t.frozen_layers == ("conv1", "conv2") and t.freeze_batch_norm_statistics
    assert t.model_dir != first.training.model_dir and max(t.lr_values) <= 1e-3
    # Everything else is stage 1's: the same data, losses, matching and post-processing.
    for group in ("matching", "ohem", "loss", "postprocessing", "input"):
        assert getattr(second, group) == getattr(first, group), group


def run_recipe_steps(tmp_path, checkpoint, num_steps=2, recipe_path=RECIPE):
    """Runs `num_steps` of a recipe from `checkpoint` on generated shards; returns the trained and the
    starting variables by name."""
    from prepare_data.faces import load_background_photos, load_face_sources
    from src.config import load_config
    from src.detector import FaceBoxes
    from src.trainer import train
    from src.upstream_checkpoint import load_upstream_checkpoint
    from tests.test_train_export import write_shards

    write_shards(str(tmp_path / "data" / "train"), 8, 1, load_face_sources(), load_background_photos())
    recipe = json.loads(open(recipe_path).read())
    recipe["input"].update(train_dataset=str(tmp_path / "data" / "train"), val_dataset=str(tmp_path / "data" / "train"),
                           batch_size=4, shuffle_buffer=16, image_size=[256, 256])
    recipe["training"].update(model_dir=str(tmp_path / "model"), init_from_upstream_checkpoint=checkpoint,
                              teacher_checkpoint=checkpoint, eval_every=0, log_every=1)
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    result = train(load_config(str(path)), num_steps=num_steps)
    assert result["step"] == num_steps and all(np.isfinite(loss) for _, loss in result["losses"])
    model, start = FaceBoxes(seed=1), FaceBoxes(seed=2)
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(str(tmp_path / "model"))).expect_partial()
    load_upstream_checkpoint(start, checkpoint)
    return model.named_variables(), start.named_variables()


def check_fine_tuned(trained, start, frozen_layers=()):
    moved = {name: float(np.abs(trained[name].numpy() - start[name].numpy()).max()) for name in start}
    assert max(moved[name] for name in moved if "/moving_" in name) == 0.0  # frozen statistics
    learned = [moved[name] for name in moved if name.endswith("/weights") and name.split("/")[0] not in frozen_layers]
    assert 0.0 < max(learned) < 0.05  # small steps from the starting weights
    for name in moved:
        if name.split("/")[0] in frozen_layers:
            assert moved[name] == 0.0, name


def test_a_few_recipe_steps_from_the_shipped_upstream_format_weights(tmp_path):
    check_fine_tuned(*run_recipe_steps(tmp_path, SHIPPED))


def test_a_few_stage_2_steps_keep_conv1_and_conv2(tmp_path):
    check_fine_tuned(*run_recipe_steps(tmp_path, SHIPPED, recipe_path=STAGE2), frozen_layers=("conv1", "conv2"))


@pytest.mark.skipif(not os.path.isfile(WIDER_GRAPH), reason=f"the upstream WIDER graph is not at {WIDER_GRAPH}")
def test_a_few_recipe_steps_from_the_converted_upstream_graph(tmp_path):
    from src import upstream_checkpoint
    prefix = str(tmp_path / "wider_weights.ckpt")
    assert upstream_checkpoint.main(["--from_frozen_graph", WIDER_GRAPH, "--output", prefix]) == 0
    check_fine_tuned(*run_recipe_steps(tmp_path, prefix))
