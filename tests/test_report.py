"""bench/report.py: the README's results block and docs/benchmarks.md are what the report writes.

Every figure in the README's results table must come from the report command. So the block
between the markers, and docs/benchmarks.md, must equal what `report.write_tables` writes from the
JSON files committed in bench/results/ (the date line aside): a hand edit of a figure, or JSON
updated without rewriting the tables, fails here.
"""
import importlib.util
import os
import re
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_report():
    spec = importlib.util.spec_from_file_location("report", os.path.join(ROOT, "bench", "report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def block(text, report):
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    inner = text.split(report.BEGIN, 1)[1].split(report.END, 1)[0]
    return re.sub(r"\(\d{4}-\d{2}-\d{2}\)", "(DATE)", inner)


def test_readme_and_benchmarks_page_are_what_the_report_writes(tmp_path, monkeypatch):
    report = load_report()
    results = os.path.join(ROOT, "bench", "results")
    assert sorted(os.listdir(results)) == ["model.json", "model_avx2.json", "peers.json", "peers_auto.json",
                                           "tracking.json"]
    readme, page = tmp_path / "README.md", tmp_path / "benchmarks.md"
    shutil.copy(os.path.join(ROOT, "README.md"), readme)
    monkeypatch.setattr(report, "README", str(readme))
    monkeypatch.setattr(report, "BENCHMARKS_PAGE", str(page))
    report.write_tables(results)
    with open(os.path.join(ROOT, "README.md")) as f:
        committed = f.read()
    assert block(readme.read_text(), report) == block(committed, report)
    with open(os.path.join(ROOT, "docs", "benchmarks.md")) as f:
        committed_page = f.read()
    date = re.compile(r"\(\d{4}-\d{2}-\d{2}\)")
    assert date.sub("(DATE)", page.read_text()) == date.sub("(DATE)", committed_page)
    # The tables hold the figures of the JSON files, e.g. the shipped model's FDDB TPR at 47 FP.
    import json
    with open(os.path.join(results, "peers.json")) as f:
        peers = json.load(f)
    if "fddb" in peers["faceboxes"]:
        assert f"{peers['faceboxes']['fddb']['discrete_tpr_at_47_fp']:.3f}" in block(committed, report)
