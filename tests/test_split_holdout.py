"""prepare_data/split_holdout.py: a fixed, per-photo held-out split of annotation folders.

Every annotation is written by the test in tmp_path.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from prepare_data import split_holdout as sh
from src.annotations import Annotation, read_annotation, write_annotation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_folder(folder, names, faces_per_image=1):
    for name in names:
        boxes = np.tile([[1.0, 2.0, 11.0, 12.0]], (faces_per_image, 1))
        write_annotation(os.path.join(folder, name.replace("/", "__") + ".json"),
                         Annotation(name + ".jpg", 64, 48, 3, boxes))


def listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_the_parts_are_disjoint_complete_and_about_the_fraction(tmp_path):
    names = [f"person_{i:04d}/photo" for i in range(2000)]
    write_folder(str(tmp_path / "all"), names, faces_per_image=2)
    counts = sh.split_folder(str(tmp_path / "all"), str(tmp_path / "train"), str(tmp_path / "holdout"))
    train, holdout = listing(tmp_path / "train"), listing(tmp_path / "holdout")
    assert not set(train) & set(holdout)
    assert sorted(train + holdout) == listing(tmp_path / "all")
    assert (counts["train"], counts["holdout"], counts["skipped"]) == (len(train), len(holdout), 0)
    assert (counts["train_faces"], counts["holdout_faces"]) == (2 * len(train), 2 * len(holdout))
    assert 150 <= len(holdout) <= 250  # 10% of 2000 (a binomial's +-3.7 sigma)
    # Files are copied unchanged.
    name = holdout[0]
    assert (tmp_path / "holdout" / name).read_text() == (tmp_path / "all" / name).read_text()


def test_a_photo_keeps_its_part_whatever_else_is_in_the_folder(tmp_path):
    names = [f"img_{i}" for i in range(300)]
    write_folder(str(tmp_path / "all"), names)
    write_folder(str(tmp_path / "some"), names[::3])
    sh.split_folder(str(tmp_path / "all"), str(tmp_path / "t1"), str(tmp_path / "h1"))
    sh.split_folder(str(tmp_path / "some"), str(tmp_path / "t2"), str(tmp_path / "h2"))
    assert set(listing(tmp_path / "h2")) == set(listing(tmp_path / "h1")) & set(listing(tmp_path / "some"))
    # The decision is the image name's alone, and the salt changes it.
    assert [sh.is_held_out(n + ".jpg") for n in names] == [sh.is_held_out(n + ".jpg") for n in names]
    assert [sh.is_held_out(n + ".jpg") for n in names] != [sh.is_held_out(n + ".jpg", salt="x") for n in names]
    assert not any(sh.is_held_out(n, 0.0) for n in names) and all(sh.is_held_out(n, 1.0) for n in names)


def test_a_rerun_with_another_fraction_leaves_no_file_in_both_parts(tmp_path):
    write_folder(str(tmp_path / "all"), [f"img_{i}" for i in range(200)])
    sh.split_folder(str(tmp_path / "all"), str(tmp_path / "train"), str(tmp_path / "holdout"), fraction=0.5)
    sh.split_folder(str(tmp_path / "all"), str(tmp_path / "train"), str(tmp_path / "holdout"), fraction=0.1)
    train, holdout = listing(tmp_path / "train"), listing(tmp_path / "holdout")
    assert not set(train) & set(holdout) and len(train) + len(holdout) == 200
    assert len(holdout) < 50


def test_the_cli_skips_a_bad_file_and_prints_the_counts(tmp_path):
    write_folder(str(tmp_path / "all"), [f"img_{i}" for i in range(20)])
    (tmp_path / "all" / "broken.json").write_text("{not json")
    result = subprocess.run([sys.executable, "prepare_data/split_holdout.py", "--annotations_dir",
                             str(tmp_path / "all"), "--train_dir", str(tmp_path / "t"),
                             "--holdout_dir", str(tmp_path / "h")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["skipped"] == 1 and counts["train"] + counts["holdout"] == 20
    assert "broken.json" in result.stderr
    for name in listing(tmp_path / "h"):
        read_annotation(str(tmp_path / "h" / name))  # complete, valid files


@pytest.mark.parametrize("args, message", [
    (["--annotations_dir", "nowhere"], "nowhere: annotation folder not found"),
    (["--fraction", "1.5"], "--fraction 1.5: must lie in [0, 1]"),
])
def test_the_cli_refuses_bad_arguments_in_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    base = {"--annotations_dir": str(tmp_path / "empty"), "--train_dir": str(tmp_path / "t"),
            "--holdout_dir": str(tmp_path / "h")}
    base.update(dict(zip(args[::2], args[1::2])))
    argv = [item for pair in base.items() for item in pair]
    result = subprocess.run([sys.executable, "prepare_data/split_holdout.py", *argv], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
