"""Regenerates every figure that README.md and docs/benchmarks.md quote, in one command.

Runs, each as its own process writing JSON into --results_dir (default bench/results/):
  1. peers.json: bench/bench_peers.py: FDDB ROC (discrete / continuous TPR at 47 and 100 false
     positives on the folds at --fddb_dir) and latency (median of interleaved calls, 1024x768 and
     640x480) of the shipped model (float32 and 'auto'), the upstream's own frozen graph
     (--upstream_graph, when present) and the peers that can be imported here (YuNet, MTCNN,
     dlib HOG, Haar). Without --fddb_dir, latency only.
  2. model.json: bench/bench_model.py: FaceDetector's paths against the upstream's inference graph
     rebuilt in TF1 style (same weights), interleaved, as ratios of the upstream graph's time, and
     the CPU they ran on; model_avx2.json: the same run through bench/as_avx2_cpu.sh, as on an
     AVX2-only CPU (where this CPU has AVX-512 and CPUID faulting; else it is left out).
  3. tracking.json: start.py on the bundled media/sample.mp4 with the shipped model: tracks, ID
     switches, MOTA and IDF1 against media/sample_truth.json (a track box matches a true face at
     IoU >= 0.5), and start.py's steady-state FPS; and start.py on a 3840x2160 clip made here (the
     astronaut photo's face scaled up: 1,440 px tall), with and without --max_dimension.
Then writes docs/benchmarks.md (all tables) and the results table of README.md (the lines between
`<!-- report:results -->` and `<!-- /report:results -->`) from those JSON files only.

--tables_only rewrites the tables from the JSON files already in --results_dir.

Example:
    python bench/report.py --fddb_dir ../shared/data/realfaces/fddb_val
    python bench/report.py --tables_only
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from src.atomic_io import write_text_atomic  # noqa: E402

README = os.path.join(ROOT, "README.md")
BENCHMARKS_PAGE = os.path.join(ROOT, "docs", "benchmarks.md")
BEGIN, END = "<!-- report:results -->", "<!-- /report:results -->"
PEERS = ("yunet", "mtcnn", "dlib_hog", "haar")
PEER_NAMES = {"faceboxes": "FaceBoxes, shipped model (FaceDetector float32)",
              "faceboxes_auto": "FaceBoxes, shipped model (FaceDetector 'auto')",
              "upstream_graph": "FaceBoxes, the upstream's WIDER graph as published",
              "yunet": "YuNet (yuface)", "mtcnn": "MTCNN (mtcnn 1.0)", "dlib_hog": "dlib HOG",
              "haar": "OpenCV Haar cascade"}
SIZES = ("1024x768", "640x480")


def run(args, what, prefix=()):
    """Runs `PREFIX python ARGS` from the repository root; raises SystemExit with one line if it fails."""
    print(f"running {what}: {' '.join(list(prefix) + args)}", flush=True)
    done = subprocess.run(list(prefix) + [sys.executable] + args, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"error: {what}: exited {done.returncode}")


def collect(results_dir, fddb_dir, upstream_graph, runs):
    """Runs the benchmarks; each writes its JSON file into results_dir."""
    os.makedirs(results_dir, exist_ok=True)
    peers = ["--detectors", ",".join(("faceboxes", "upstream_graph") + PEERS), "--runs", str(runs),
             "--output", os.path.join(results_dir, "peers.json")]
    if fddb_dir:
        peers += ["--fddb_dir", fddb_dir]
    if upstream_graph:
        peers += ["--upstream_graph", upstream_graph]
    run(["bench/bench_peers.py"] + peers, "FDDB and latency of the shipped model and its peers")
    run(["bench/bench_peers.py", "--detectors", "faceboxes", "--precision", "auto", "--runs", str(runs),
         "--output", os.path.join(results_dir, "peers_auto.json")] + (["--fddb_dir", fddb_dir] if fddb_dir else []),
        "FDDB and latency of the shipped model with precision 'auto'")
    model = ["bench/bench_model.py", "--runs", str(max(runs, 25))]
    run(model + ["--output", os.path.join(results_dir, "model.json")],
        "FaceDetector against the upstream's inference graph")
    avx2 = as_avx2_cpu(os.path.join(results_dir, "model_avx2.json"))
    if avx2:
        run(model + ["--output", os.path.join(results_dir, "model_avx2.json")],
            "FaceDetector against the upstream's inference graph, as on an AVX2-only CPU", prefix=avx2)
    collect_tracking(results_dir)


def as_avx2_cpu(stale=None):
    """The command prefix that runs a program as on an AVX2-only CPU (bench/as_avx2_cpu.sh), or None
    where it cannot or need not (no AVX-512 here: the native figures are those already); then the
    file `stale` (if given), from an earlier run, is removed so that no table reports it as current."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    reason = None
    if "avx512f" not in flags:
        reason = "this CPU has no AVX-512: the native figures are the AVX2 ones"
    elif "cpuid_fault" not in flags:
        reason = "no CPUID faulting here, so bench/as_avx2_cpu.sh cannot hide AVX-512"
    if reason is None:
        return ["bash", os.path.join(ROOT, "bench", "as_avx2_cpu.sh")]
    print(f"note: no AVX2-only run: {reason}", flush=True)
    if stale and os.path.exists(stale):
        os.remove(stale)
        print(f"note: removed {stale} (an earlier run's)", flush=True)
    return None


def collect_tracking(results_dir):
    """The tracking figures: the bundled sample video and a 4K clip (see the module docstring)."""
    tracking = sample_video_figures()
    # As on an AVX2-only CPU, where 'auto' runs LiteRT.
    avx2 = as_avx2_cpu()
    if avx2:
        tracking["avx2"] = sample_video_figures(prefix=avx2)
    tracking["4k"] = four_k_figures()
    write_text_atomic(os.path.join(results_dir, "tracking.json"), json.dumps(tracking, indent=1) + "\n")


def four_k_figures(num_frames=30):
    """start.py on a 3840x2160 clip of the astronaut photo's face scaled up (1,440 px tall, far above
    the largest anchor, 512 px), made here: tracks and crops found and FPS, with the default
    --max_dimension (1024) and with it off."""
    import cv2
    import skimage.data

    from src.video_io import AtomicVideoWriter
    # The astronaut's face (x 172-272, y 58-178 of the 512x512 photo) in a 180x180 crop, scaled 12x.
    crop = skimage.data.astronaut()[28:208, 132:312]
    frame = cv2.cvtColor(cv2.resize(crop, (2160, 2160), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2BGR)
    frame = cv2.copyMakeBorder(frame, 0, 0, 840, 840, cv2.BORDER_CONSTANT, value=(90, 90, 90))  # 3840x2160
    figures = {"width": 3840, "height": 2160, "frames": num_frames}
    with tempfile.TemporaryDirectory() as folder:
        video = os.path.join(folder, "clip4k.mp4")
        writer = AtomicVideoWriter(video, 25.0, 3840, 2160, fourcc="mp4v")
        for _ in range(num_frames):
            writer.write(frame)
        writer.close()
        for name, extra in (("default", []), ("max_dimension_off", ["--max_dimension", "0"])):
            out = os.path.join(folder, name)
            run(["start.py", video, "--output_path", out, "--no_progress"] + extra, f"start.py on a 4K clip ({name})")
            with open(os.path.join(out, "clip4k", "clip4k_summary.json")) as f:
                summary = json.load(f)
            figures[name] = {"tracks_saved": summary["tracks_saved"], "faces_saved": summary["faces_saved"],
                             "processing_fps": summary["processing_fps"]}
    return figures

def sample_video_figures(extra_args=(), prefix=()):
    """start.py on media/ with the shipped model (`extra_args` added, run after the command `prefix`):
    a dict of tracking figures (see the module docstring)."""
    import numpy as np

    from src.tracking.synthetic import MATCH_IOU, mot_metrics
    with open(os.path.join(ROOT, "media", "sample_truth.json")) as f:
        truth = json.load(f)
    with tempfile.TemporaryDirectory() as out:
        run(["start.py", os.path.join(ROOT, "media"), "--output_path", out, "--no_progress", *extra_args],
            "start.py on the bundled sample video", prefix=prefix)
        folder = os.path.join(out, os.path.splitext(truth["video"])[0])
        tracks = np.loadtxt(os.path.join(folder, "sample_tracks.txt"), delimiter=",").reshape(-1, 10)
        with open(os.path.join(folder, "sample_summary.json")) as f:
            summary = json.load(f)
        saved = {name.split("_")[1] for name in os.listdir(folder) if name.startswith("track_")}
    gt_frames, track_frames = [], []
    for frame, faces in enumerate(truth["frames"]):
        rows = tracks[tracks[:, 0] == frame + 1]  # MOT frames count from 1
        track_frames.append(np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4],
                                             rows[:, 3] + rows[:, 5], rows[:, 1]]))
        gt_frames.append(np.array([[g["id"], *g["box"]] for g in faces], np.float64).reshape(-1, 5))
    metrics = mot_metrics(gt_frames, track_frames)  # matches gated at IoU >= MATCH_IOU
    return {"video": truth["video"], "frames": summary["frames"], "true_faces": truth["num_faces"],
            "tracks_saved": len(saved), "id_switches": metrics["num_switches"],
            "mota": metrics["mota"], "idf1": metrics["idf1"], "match_iou": MATCH_IOU,
            "processing_fps": summary["processing_fps"], "detector": summary.get("detector", {})}


def load(results_dir, name):
    path = os.path.join(results_dir, name)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def fddb_cells(entry):
    fddb = (entry or {}).get("fddb")
    if not fddb:
        return ["-", "-", "-"]
    return [f"{fddb['discrete_tpr_at_47_fp']:.3f}", f"{fddb['discrete_tpr_at_100_fp']:.3f}",
            f"{fddb['continuous_tpr_at_47_fp']:.3f}"]


def peers_table(results_dir):
    """Markdown rows: FDDB and latency of every detector that ran."""
    peers = load(results_dir, "peers.json") or {}
    auto = (load(results_dir, "peers_auto.json") or {}).get("faceboxes")
    rows = [("faceboxes", peers.get("faceboxes")), ("faceboxes_auto", auto),
            ("upstream_graph", peers.get("upstream_graph"))] + [(name, peers.get(name)) for name in PEERS]
    lines = ["| detector | FDDB TPR @47 FP | @100 FP | continuous @47 FP | ms 1024x768 | ms 640x480 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, entry in rows:
        if entry is None:
            continue
        latency = [f"{entry[f'latency_ms_{size}']:.1f}" if f"latency_ms_{size}" in entry else "-" for size in SIZES]
        lines.append(f"| {PEER_NAMES[name]} | " + " | ".join(fddb_cells(entry) + latency) + " |")
    first = next((entry["fddb"] for _, entry in rows if entry and entry.get("fddb")), None)
    note = (f"FDDB: partial folds 01-05, {first['images']} images, {first['faces']} faces (47 false positives "
            "here are the share of 1000 on all 2,845 images). " if first else "")
    return lines, note


def speed_table(results_dir, name="model.json"):
    """Markdown rows: each FaceDetector path's time as a ratio of the upstream graph's, per size."""
    model = load(results_dir, name)
    if not model:
        return [], ""
    lines = ["| path | " + " | ".join(f"{size}: ms (ratio to upstream)" for size in SIZES) + " |",
             "| --- | " + " | ".join("---:" for _ in SIZES) + " |"]
    paths = [path for path in model["paths"] if path != "reference"]
    for path in ["reference"] + paths:
        cells = []
        for size in SIZES:
            timing = model["sizes"].get(size, {}).get(path)
            reference = model["sizes"].get(size, {}).get("reference")
            if not timing or not reference:
                cells.append("-")
                continue
            cells.append(f"{timing['median_ms']:.1f} ({timing['median_ms'] / reference['median_ms']:.2f}x)")
        lines.append(f"| {model['path_names'].get(path, path)} | " + " | ".join(cells) + " |")
    threshold = f"; boxes above {model['score_threshold']}" if "score_threshold" in model else ""
    return lines, f"CPU: {model['cpu']}; medians of {model['runs']} interleaved calls{threshold}. "


def tracking_table(results_dir):
    tracking = load(results_dir, "tracking.json")
    if not tracking:
        return [], ""

    def ran(figures):
        detector = figures.get("detector")
        return f"`'auto'` ran {detector['backend']} {detector['precision']}" if detector else "`'auto'`"

    lines = ["| video | true faces | tracks saved | ID switches | MOTA | IDF1 | start.py FPS |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| media/{tracking['video']} ({tracking['frames']} frames; {ran(tracking)}) | {tracking['true_faces']} | "
             f"{tracking['tracks_saved']} | {tracking['id_switches']} | {tracking['mota']:.3f} | "
             f"{tracking['idf1']:.3f} | {tracking['processing_fps'] or 0:.0f} |"]
    avx2 = tracking.get("avx2")
    if avx2:
        lines.append(f"| the same as on an AVX2-only CPU (`bench/as_avx2_cpu.sh`; {ran(avx2)}) | "
                     f"{avx2['true_faces']} | {avx2['tracks_saved']} | {avx2['id_switches']} | "
                     f"{avx2['mota']:.3f} | {avx2['idf1']:.3f} | {avx2['processing_fps'] or 0:.0f} |")
    four_k = tracking.get("4k")
    if four_k:
        for name, label in (("default", "default `--max_dimension` 1024"), ("max_dimension_off", "`--max_dimension 0`")):
            row = four_k[name]
            lines.append(f"| a {four_k['width']}x{four_k['height']} clip of one face 1,440 px tall, {label} "
                         f"({four_k['frames']} frames) | 1 | {row['tracks_saved']} | - | - | - | "
                         f"{row['processing_fps'] or 0:.1f} |")
    return lines, ""


def write_tables(results_dir):
    """Writes docs/benchmarks.md and README.md's results block from the JSON files."""
    stamp = datetime.date.today().isoformat()
    peers, peers_note = peers_table(results_dir)
    speed, speed_note = speed_table(results_dir)
    speed_avx2, speed_avx2_note = speed_table(results_dir, "model_avx2.json")
    tracking, _ = tracking_table(results_dir)
    command = "python bench/report.py --fddb_dir FDDB_DIR"
    block = [BEGIN, f"Written by `{command}` ({stamp}) from {os.path.relpath(results_dir, ROOT)}/*.json.", ""]
    block += ["Detection (`bench/bench_peers.py`):", ""] + peers + ["", peers_note.strip(), ""]
    if speed:
        block += ["Speed of the same weights (`bench/bench_model.py`):", ""] + speed + ["", speed_note.strip(), ""]
    if speed_avx2:
        block += ["The same as on an AVX2-only CPU (`bench/as_avx2_cpu.sh`: every library sees CPUID and "
                  "/proc/cpuinfo without AVX-512, AMX and VNNI; same silicon):", ""] + speed_avx2 + [
                      "", speed_avx2_note.strip(), ""]
    if tracking:
        block += ["Tracking (`start.py` on the bundled sample):", ""] + tracking + [""]
    block.append(END)
    with open(README) as f:
        readme = f.read()
    if BEGIN in readme and END in readme:
        head, rest = readme.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        write_text_atomic(README, head + "\n".join(block) + tail)
    else:
        print(f"note: {README} has no {BEGIN} ... {END} block; only {BENCHMARKS_PAGE} was written")
    page = ["# Benchmarks", "",
            f"Every table here is written by `{command}` from the JSON files in `bench/results/`; "
            "the README's results table is the same block. Timings name the CPU they ran on; "
            "ratios compare paths measured interleaved in one process.", "",
            "How each table is measured:", "",
            "- Detection: `bench/bench_peers.py` runs each detector on the FDDB folds' photos at its lowest "
            "useful threshold and scores the boxes with this project's FDDB evaluator (discrete and continuous "
            "true positive rate at a number of false positives); latency is the median of interleaved calls on "
            "a photo pair (astronaut + Grace Hopper) at each size, each library with its default threads "
            "(YuNet with one OpenMP thread).",
            "- Speed: `bench/bench_model.py` runs the same weights through the upstream's inference graph "
            "rebuilt in TF1 style (Session.run, the reference) and through each FaceDetector path, interleaved "
            "call by call, and checks that they give the same detections; the ratio is each path's median over "
            "the reference's. Every path returns the boxes scoring above the same threshold (FaceDetector's "
            "default, 0.5; every graph's NMS keeps those above 0.05). The AVX2 table runs the same through "
            "`bench/as_avx2_cpu.sh`, which hides AVX-512, AMX and VNNI from CPUID and /proc/cpuinfo (Linux "
            "CPUID faulting): oneDNN, XNNPACK, TensorFlow and `'auto'` then choose their AVX2 code, on the "
            "same silicon (its clock and caches, not an older CPU's).",
            "- Tracking: `start.py` on `media/sample.mp4`, its tracks scored against `media/sample_truth.json` "
            "with py-motmetrics (a track box matches a true face at IoU >= 0.5); the truth boxes run from the "
            "forehead to the chin, so boxes of another convention lose some matches.", ""] + block[1:-1]
    os.makedirs(os.path.dirname(BENCHMARKS_PAGE), exist_ok=True)
    write_text_atomic(BENCHMARKS_PAGE, "\n".join(page).rstrip() + "\n")
    print(f"wrote {BENCHMARKS_PAGE}" + (f" and the results block of {README}" if BEGIN in readme else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = os.path.join(os.path.dirname(ROOT), "shared")
    default_fddb = os.path.join(shared, "data", "realfaces", "fddb_val")
    default_upstream = os.path.join(shared, "models", "upstream_wider", "facebox_upstream_wider.pb")
    parser.add_argument("--fddb_dir", default=default_fddb if os.path.isdir(default_fddb) else None,
                        help="FDDB root (originalPics/, FDDB-folds/); default: the development checkout's partial "
                             "folds 01-05 when present, else latency only")
    parser.add_argument("--upstream_graph", default=default_upstream if os.path.isfile(default_upstream) else None,
                        help="the upstream's published frozen graph, for its row (skipped when absent)")
    parser.add_argument("--results_dir", default=os.path.join(ROOT, "bench", "results"),
                        help="where the benchmarks' JSON files go")
    parser.add_argument("--runs", type=int, default=25, help="timed calls per detector, path and size")
    parser.add_argument("--tables_only", action="store_true", help="only rewrite the tables from existing JSON")
    parser.add_argument("--tracking_only", action="store_true",
                        help="only rerun the tracking figures (tracking.json), then rewrite the tables")
    args = parser.parse_args(argv)
    if args.fddb_dir and not os.path.isdir(os.path.join(args.fddb_dir, "FDDB-folds")):
        print(f"error: {args.fddb_dir}: no FDDB-folds/ folder there", file=sys.stderr)
        return 2
    if args.tracking_only:
        collect_tracking(args.results_dir)
    elif not args.tables_only:
        collect(args.results_dir, args.fddb_dir, args.upstream_graph, args.runs)
    write_tables(args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
