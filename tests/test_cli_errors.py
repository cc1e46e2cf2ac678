"""Every command line keeps one error format: ``error: <what>: <why>``, one stderr line, exit code 2.

The entry points are discovered (scripts with ``if __name__ == "__main__":``, packages with a
``__main__.py``), so a new script cannot drift: it must be added to BAD_ARGUMENTS below with an
argument that is a user error (a missing input), and it must answer that, and an unknown flag,
with one ``error:`` line and exit code 2, before TensorFlow prints anything.
"""
import ast
import concurrent.futures
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = "/nonexistent/input"
OUT = "/tmp/never-written-by-test-cli-errors"
# Folders whose scripts are not user tools covered by the README's promise: the tests themselves,
# and the benchmarks (developer tools that print tables).
NOT_COVERED = ("tests", "bench")

# A user error for each entry point (its path from the repository root): a missing input, or for the
# generators that read nothing, an out-of-range value.
BAD_ARGUMENTS = {
    "start.py": [MISSING + ".mp4"],
    "train.py": ["--config", MISSING + ".json"],
    "save.py": ["--config", MISSING + ".json", "--output_dir", OUT],
    "create_pb.py": ["-s", MISSING, "-o", OUT + "/model.pb"],
    "create_tfrecords.py": ["--image_dir", MISSING, "--annotations_dir", MISSING, "--output", OUT],
    "evaluate_fddb.py": ["-a", MISSING, "-d", MISSING, "-i", MISSING, "-r", OUT + "/"],
    "predict_for_fddb.py": ["--fddb_dir", MISSING, "--model", MISSING + ".pb", "--output_dir", OUT],
    "prepare_data/align_boxes.py": ["--annotations_dir", MISSING, "--teacher_dir", MISSING, "--output_dir", OUT],
    "prepare_data/label_with_teacher.py": ["--image_dir", MISSING, "--output_dir", OUT],
    "prepare_data/make_mosaics.py": ["--output_dir", OUT, "--tiles", MISSING, "--num_images", "1"],
    "prepare_data/make_sample_dataset.py": ["--output_dir", OUT, "--image_size", "32"],
    "prepare_data/make_sample_video.py": ["--output_dir", OUT, "--seconds", "0.01"],
    "prepare_data/mine_negatives.py": ["--model", MISSING + ".pb", "--sources", MISSING, "--output_dir", OUT],
    "prepare_data/prepare_fddb.py": ["--fddb_dir", MISSING, "--output_dir", OUT],
    "prepare_data/prepare_voc.py": ["--annotations_dir", MISSING, "--image_dir", MISSING, "--output_dir", OUT],
    "prepare_data/split_holdout.py": ["--annotations_dir", MISSING, "--train_dir", OUT, "--holdout_dir", OUT],
    "prepare_data/prepare_wider.py": ["--wider_dir", MISSING, "--output_dir", OUT],
    "src/evaluation/box_to_ellipse.py": ["--predictions", MISSING, "--folds_dir", MISSING, "--output_dir", OUT],
    "src/evaluation/evaluate_model.py": ["--model", MISSING + ".pb", "--tfrecords", MISSING],
    "src/evaluation/wider.py": ["--gt", MISSING, "--detections", MISSING],
    "src/upstream_checkpoint.py": ["--checkpoint", MISSING, "--output", OUT + "/converted"],
    "src/visualize/__main__.py": ["detections", "--model", MISSING + ".pb", "--images", MISSING + ".jpg",
                                  "--output", OUT + "/d.png"],
}


# Entry points known to break the format, with why; each is checked to still break it (strict), so
# the entry is removed when it is fixed.
PENDING = {}


def _has_main_block(path):
    """True if the module has a top-level ``if __name__ == "__main__":`` (not one in a docstring)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
            values = [n.value for n in ast.walk(node.test) if isinstance(n, ast.Constant)]
            if names == ["__name__"] and values == ["__main__"]:
                return True
    return False


def entry_points():
    """Paths (from the repository root) of every script and ``python -m`` package main."""
    found = []
    for parent, folders, names in os.walk(ROOT):
        relative = os.path.relpath(parent, ROOT)
        folders[:] = sorted(f for f in folders if not f.startswith((".", "__")) and
                            (relative != "." or f not in NOT_COVERED))
        for name in sorted(names):
            path = os.path.join(parent, name)
            if name == "__main__.py" or (name.endswith(".py") and _has_main_block(path)):
                found.append(os.path.relpath(path, ROOT))
    return found


def command(entry_point):
    """The command line that runs an entry point as a user would: a script, or ``python -m``."""
    if entry_point.startswith("src/"):
        module = entry_point[:-len(".py")].replace("/", ".")
        return [sys.executable, "-m", module[:-len(".__main__")] if module.endswith(".__main__") else module]
    return [sys.executable, entry_point]


def run(args):
    """(exit code, non-empty stderr lines) of a command run from the repository root.

    TF_CPP_MIN_LOG_LEVEL is left as a user has it (unset), so TensorFlow's start-up lines would show.
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def results():
    """Every entry point run with its bad argument and with an unknown flag, in parallel."""
    cases = {}
    for entry_point in entry_points():
        cases[entry_point, "bad argument"] = command(entry_point) + BAD_ARGUMENTS.get(entry_point, [])
        cases[entry_point, "unknown flag"] = command(entry_point) + ["--no_such_flag"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        futures = {key: pool.submit(run, args) for key, args in cases.items()}
    return {key: future.result() for key, future in futures.items()}


def test_every_entry_point_is_covered():
    found = set(entry_points())
    assert "start.py" in found and "src/visualize/__main__.py" in found and "src/cli.py" not in found
    missing = sorted(found - set(BAD_ARGUMENTS))
    assert not missing, f"add a bad argument for {missing} to BAD_ARGUMENTS"
    assert not sorted(set(BAD_ARGUMENTS) - found), "BAD_ARGUMENTS names scripts that are gone"


def _wrong(results, case):
    """{entry point: (exit code, first stderr lines)} of the runs of `case` that break the format."""
    wrong = {}
    for (entry_point, kind), (code, lines) in sorted(results.items()):
        if kind == case and (code != 2 or len(lines) != 1 or not lines[0].startswith("error: ")):
            wrong[entry_point] = (code, lines[:6])
    return wrong


@pytest.mark.parametrize("case", ["bad argument", "unknown flag"])
def test_every_entry_point_reports_one_error_line(results, case):
    wrong = {k: v for k, v in _wrong(results, case).items() if k not in PENDING}
    assert not wrong, wrong
    assert not os.path.exists(OUT)


@pytest.mark.parametrize("entry_point", sorted(PENDING))
def test_pending_entry_points_still_break_the_format(results, entry_point):
    if entry_point not in _wrong(results, "bad argument"):
        pytest.fail(f"{entry_point} keeps the format now: remove it from PENDING")
    pytest.xfail(PENDING[entry_point])
