"""The shell scripts (prepare_data/*.sh, bench/*.sh): --help prints their usage and exits 0, and
a missing argument is refused before anything runs."""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "*", "*.sh")))


def test_every_shell_script_is_covered():
    assert SCRIPTS == ["bench/fddb_figures.sh", "bench/holdout_figures.sh", "prepare_data/build_hard_negatives.sh",
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
