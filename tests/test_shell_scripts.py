"""The shell scripts (prepare_data/*.sh, bench/*.sh): --help prints their usage and exits 0, and
a missing argument is refused before anything runs."""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "*", "*.sh")))


def test_every_shell_script_is_covered():
    assert SCRIPTS == ["bench/as_avx2_cpu.sh", "bench/fddb_figures.sh", "bench/holdout_figures.sh", "prepare_data/build_hard_negatives.sh",
                       "prepare_data/build_realfaces.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_missing_arguments(script, tmp_path):
    for flag in ("--help", "-h"):
        done = subprocess.run(["bash", script, flag], cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and "Usage:" in done.stdout and done.stdout.count("\n") >= 3, done
        assert "case " not in done.stdout and "set -euo" not in done.stdout
    done = subprocess.run(["bash", os.path.join(ROOT, script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode != 0 and "usage:" in done.stderr and os.listdir(tmp_path) == []


def test_holdout_figures_scores_every_part_and_averages_their_ap(tmp_path):
    """bench/holdout_figures.sh on two generated parts with the shipped model: one line per part, one
    for all, and the mean of the parts' AP (each part weighing the same)."""
    import json
    from prepare_data.faces import load_background_photos, load_face_sources
    from tests.test_train_export import write_shards
    sources, photos = load_face_sources(), load_background_photos()
    write_shards(str(tmp_path / "holdout" / "a"), 3, 1, sources, photos)
    write_shards(str(tmp_path / "holdout" / "b"), 4, 2, sources, photos)
    done = subprocess.run(["bash", "bench/holdout_figures.sh", "model/facebox.pb", str(tmp_path / "holdout"),
                           str(tmp_path / "json")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["a", "b", "all", "mean of 2 parts"]
    metrics = {name: json.loads((tmp_path / "json" / f"{name}.json").read_text()) for name in ("a", "b", "all")}
    assert (metrics["a"]["num_images"], metrics["b"]["num_images"], metrics["all"]["num_images"]) == (3, 4, 7)
    assert "at score 0.70: recall" in lines[0]
    assert lines[-1] == "mean of 2 parts: AP@0.5 %.4f" % ((metrics["a"]["AP"] + metrics["b"]["AP"]) / 2)
    bad = subprocess.run(["bash", "bench/holdout_figures.sh", str(tmp_path / "missing.pb"), str(tmp_path / "holdout")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.pb'}: no such model file"]
