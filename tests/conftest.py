"""Shared pytest setup: make the repository root importable and keep TF quiet."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def pytest_configure(config):
    # TensorFlow and Keras emit DeprecationWarnings about their own internals.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
