"""Benchmark the face tracker and start.py end to end.

Example:
    python bench/bench_tracking.py --model model/facebox.pb

Prints (0) MOTA / IDF1 / ID switches of 'sort' and 'byte' on the synthetic scenarios
(perfect and noisy detections, seeds 0-2); (1) FaceTracker.update cost per frame in microseconds with 1, 10 and 50 faces for
both modes ('sort', 'byte'), plus predict_only; (2) start.py's processing FPS on a 640x480
synthetic video with --detect_every 1 and 3, once with a replaying test-double detector
(pipeline overhead: decode, tracking, crops, MOT file) and once with the real FaceDetector
if --model exists (skipped with a message otherwise). Boxes are pixel [x1, y1, x2, y2].
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import start  # noqa: E402
from src.tracking.tracker import FaceTracker  # noqa: E402
from src.tracking.synthetic import (GroundTruthDetector, ground_truth, make_scenario,  # noqa: E402
                                    mot_metrics, run_tracker, simulate_detections, write_video)

# The noise of tests/test_tracking.py: 3% corner jitter, 15% misses, 10% dipped scores,
# 0.1 false positives per frame.
NOISE = dict(jitter=0.03, miss_rate=0.15, low_score_rate=0.1, false_positives=0.1)


def moving_faces(num_faces, num_frames, seed=0):
    """Detections [N, 5] per frame for faces on a grid drifting with jitter, 5% missed."""
    rng = np.random.default_rng(seed)
    cols = int(np.ceil(np.sqrt(num_faces)))
    size = 60.0
    origin = np.array([[(i % cols) * 2 * size, (i // cols) * 2 * size] for i in range(num_faces)])
    velocity = rng.normal(0, 0.5, (num_faces, 2))
    frames = []
    for t in range(num_frames):
        xy = origin + velocity * t + rng.normal(0, 1.0, (num_faces, 2))
        dets = np.c_[xy, xy + size, rng.uniform(0.6, 1.0, num_faces)]
        frames.append(dets[rng.random(num_faces) > 0.05])
    return frames


def time_tracker(mode, num_faces, num_frames, warmup=20):
    """Mean microseconds per update() and per predict_only() call."""
    frames = moving_faces(num_faces, num_frames + warmup)
    tracker = FaceTracker(mode)
    for dets in frames[:warmup]:
        tracker.update(dets)
    start_time = time.perf_counter()
    for dets in frames[warmup:]:
        tracker.update(dets)
    update_us = (time.perf_counter() - start_time) / num_frames * 1e6
    start_time = time.perf_counter()
    for _ in range(num_frames):
        tracker.predict_only()
    predict_us = (time.perf_counter() - start_time) / num_frames * 1e6
    return update_us, predict_us


def run_start(video_dir, output, detector, detect_every, tracker, extra=()):
    """Runs start.main on video_dir into a new folder `output`; returns the JSON summary."""
    argv = [video_dir, "--output_path", output, "--detect_every", str(detect_every),
            "--tracker", tracker, "--no_progress", *extra]
    if start.main(argv, detector_factory=lambda model: detector) != 0:
        raise RuntimeError(f"start.py failed with {argv}")
    with open(os.path.join(output, "synthetic", "synthetic_summary.json")) as f:
        return json.load(f)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="model/facebox.pb", help="frozen .pb for the real-detector part")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default="auto",
                        help="FaceDetector precision for the real-detector part (default auto, as start.py)")
    parser.add_argument("--frames", type=int, default=500, help="tracker frames timed per setting")
    parser.add_argument("--video_frames", type=int, default=150, help="frames of the synthetic video")
    args = parser.parse_args(argv)

    print("Synthetic benchmark (640x480, 80 frames; noisy = mean over seeds 0-2):")
    print(f"{'case':>10} {'detections':>10} {'mode':>5} {'MOTA':>6} {'IDF1':>6} {'IDsw':>5}")
    for case in ("crossing", "occlusion", "leaving", "late", "all"):
        gt = ground_truth(make_scenario(case))
        for label, noise, seeds in (("perfect", {}, [0]), ("noisy", NOISE, [0, 1, 2])):
            for mode in ("sort", "byte"):
                runs = [mot_metrics(gt, run_tracker(FaceTracker(mode), simulate_detections(gt, seed, **noise)))
                        for seed in seeds]
                mean = {k: np.mean([r[k] for r in runs]) for k in ("mota", "idf1", "num_switches")}
                print(f"{case:>10} {label:>10} {mode:>5} {mean['mota']:6.3f} {mean['idf1']:6.3f} "
                      f"{mean['num_switches']:5.1f}")

    print("\nFaceTracker cost per frame (mean over %d frames, microseconds):" % args.frames)
    print(f"{'mode':>6} {'faces':>6} {'update_us':>10} {'predict_only_us':>16}")
    for mode in ("sort", "byte"):
        for faces in (1, 10, 50):
            update_us, predict_us = time_tracker(mode, faces, args.frames)
            print(f"{mode:>6} {faces:>6} {update_us:>10.1f} {predict_us:>16.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        video_dir = os.path.join(tmp, "media")
        os.mkdir(video_dir)
        scenario = make_scenario("all", 640, 480, args.video_frames)
        gt = write_video(scenario, os.path.join(video_dir, "synthetic.mp4"))
        dets = simulate_detections(gt, 0, jitter=0.02, miss_rate=0.1)
        runs = iter(range(1000))
        print(f"\nstart.py on a 640x480 synthetic video, {args.video_frames} frames "
              "(processing FPS from the JSON summary):")
        for every in (1, 3):
            for tracker in ("sort", "byte"):
                summary = run_start(video_dir, os.path.join(tmp, f"run{next(runs)}"),
                                    GroundTruthDetector(dets, every), every, tracker)
                print(f"  test-double detector, --detect_every {every}, --tracker {tracker}: "
                      f"{summary['processing_fps']:.1f} FPS")
        summary = run_start(video_dir, os.path.join(tmp, f"run{next(runs)}"), GroundTruthDetector(dets, 1), 1,
                            "byte", extra=("--save_video",))
        print(f"  test-double detector, --detect_every 1, --tracker byte, --save_video: "
              f"{summary['processing_fps']:.1f} FPS")
        if not os.path.isfile(args.model):
            print(f"\nreal detector skipped: {args.model} does not exist yet (pass --model PATH)")
            return 0
        detector = start.load_face_detector(args.model, precision=args.precision)
        detector(np.zeros((480, 640, 3), np.uint8))  # warm-up: graph build and first run
        for every in (1, 3):
            summary = run_start(video_dir, os.path.join(tmp, f"run{next(runs)}"), detector, every, "byte")
            print(f"  FaceDetector {args.model} ({detector.precision}), --detect_every {every}, --tracker byte: "
                  f"{summary['processing_fps']:.1f} FPS ({summary['tracks']} tracks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
