"""Import layering: src imports no top-level script but face_detector.py (nor prepare_data, tests,
bench), bench never imports tests, and face_detector.py (the file users copy) imports only numpy and
TensorFlow (and ai_edge_litert inside its LiteRT backend, when that runs)."""
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_LEVEL_MODULES = sorted(name[:-3] for name in os.listdir(ROOT) if name.endswith(".py"))


def _imported_modules(path):
    """Every module name a Python file imports (absolute imports, at any depth)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _python_files(folder):
    for parent, _, names in os.walk(os.path.join(ROOT, folder)):
        yield from (os.path.join(parent, name) for name in sorted(names) if name.endswith(".py"))


def test_src_imports_no_top_level_script_and_bench_imports_no_tests():
    assert "face_detector" in TOP_LEVEL_MODULES and "start" in TOP_LEVEL_MODULES
    wrong = []
    for path in _python_files("src"):
        for module in _imported_modules(path):
            # face_detector.py (self-contained, copied by users) is the one home of the graph's
            # bfloat16 rewrite: src may take from it, never the reverse.
            if module == "face_detector":
                continue
            if module.split(".")[0] in TOP_LEVEL_MODULES + ["prepare_data", "tests", "bench"]:
                wrong.append(f"{os.path.relpath(path, ROOT)} imports {module}")
    for path in _python_files("bench"):
        for module in _imported_modules(path):
            if module.split(".")[0] == "tests":
                wrong.append(f"{os.path.relpath(path, ROOT)} imports {module}")
    assert not wrong, wrong


def test_face_detector_stays_self_contained():
    path = os.path.join(ROOT, "face_detector.py")
    imported = {module.split(".")[0] for module in _imported_modules(path)}
    assert imported - set(sys.stdlib_module_names) <= {"numpy", "tensorflow", "ai_edge_litert"}, imported
    # LiteRT only inside the functions of its backend: importing the file needs numpy and TensorFlow.
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    top_level = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top_level |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert top_level - set(sys.stdlib_module_names) == {"numpy", "tensorflow"}, top_level
