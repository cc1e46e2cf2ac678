"""Benchmark the face tracker and start.py end to end.

Example:
    python bench/bench_tracking.py --model model/facebox.pb

Prints (0) MOTA / IDF1 / ID switches of 'sort' and 'byte' on the synthetic scenarios
(perfect and noisy detections, seeds 0-2); (1) FaceTracker.update cost per frame in microseconds with 1, 10 and 50 faces for
both modes ('sort', 'byte'), plus predict_only; (2) start.py's processing FPS on a 640x480
synthetic video with --detect_every 1 and 3, once with a replaying test-double detector
(pipeline overhead: decode, tracking, crops, MOT file) and once with the real FaceDetector
if --model exists (skipped with a message otherwise); (3) with --compare_upstream, start.py's
time per frame, and its detector calls' own time in the same runs, at 640x480 and 1024x768 with
FaceDetector (auto and float32) against the same
pipeline running the upstream's inference graph (bench_model.upstream_reference_graph, the
weights of --weights) through Session.run as the upstream's FaceDetector did, rounds
interleaved, medians. Boxes are pixel [x1, y1, x2, y2].

    python bench/bench_tracking.py --model model/facebox.pb --compare_upstream
    python bench/bench_tracking.py --only_compare_upstream --video_frames 100
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
from src import nms  # noqa: E402
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


class UpstreamGraphDetector:
    """The upstream's FaceDetector on its TF1 inference graph: Session.run, boxes scaled to pixels.

    Same call as FaceDetector: (uint8 RGB [H, W, 3], score_threshold) -> (boxes float32 [N, 4]
    pixels ymin, xmin, ymax, xmax; scores float32 [N]).
    """

    def __init__(self, weights):
        import tensorflow as tf

        from bench_model import upstream_reference_graph
        from src.detector import FaceBoxes
        from src.upstream_checkpoint import load_upstream_checkpoint

        model = FaceBoxes(seed=0)
        load_upstream_checkpoint(model, weights)
        graph = upstream_reference_graph(model, nms.SCORE_THRESHOLD, nms.IOU_THRESHOLD, nms.MAX_BOXES)
        self.precision = "float32, TF1 Session"
        self._session = tf.compat.v1.Session(graph=graph)
        self._fetches = [graph.get_tensor_by_name(f"{name}:0") for name in ("boxes", "scores", "num_boxes")]
        self._feed = graph.get_tensor_by_name("image_tensor:0")

    def __call__(self, image, score_threshold=0.5):
        boxes, scores, num_boxes = self._session.run(self._fetches, {self._feed: image[np.newaxis]})
        boxes, scores = boxes[0, :num_boxes[0]], scores[0, :num_boxes[0]]
        keep = scores > score_threshold
        height, width = image.shape[:2]
        return boxes[keep] * np.array([height, width, height, width], np.float32), scores[keep]


class TimedDetector:
    """Wraps a detector and adds up the wall time of its calls (the model's share of a start.py run)."""

    def __init__(self, detector):
        self.detector, self.precision, self.seconds, self.calls = detector, detector.precision, 0.0, 0

    def __call__(self, image, score_threshold=0.5):
        start_time = time.perf_counter()
        result = self.detector(image, score_threshold=score_threshold)
        self.seconds += time.perf_counter() - start_time
        self.calls += 1
        return result


def compare_with_upstream(model_path, weights, num_frames, rounds, tmp):
    """start.py's ms per frame, and its detector calls' ms, with FaceDetector (auto, float32) and the upstream graph."""
    detectors = {"FaceDetector auto": start.load_face_detector(model_path, precision="auto"),
                 "FaceDetector float32": start.load_face_detector(model_path, precision="float32"),
                 "upstream graph": UpstreamGraphDetector(weights)}
    print(f"\nstart.py per frame, FaceDetector vs the upstream graph ({num_frames} frames, --detect_every 1, "
          f"--tracker byte; medians of {rounds} interleaved rounds). 'frame': all of start.py's work per "
          "frame (decode thread, colour conversion, tracking, crops); 'model': the detector calls alone, "
          "timed inside the same runs:")
    runs = iter(range(1000))
    for width, height in ((640, 480), (1024, 768)):
        video_dir = os.path.join(tmp, f"media{width}")
        os.mkdir(video_dir)
        write_video(make_scenario("all", width, height, num_frames), os.path.join(video_dir, "synthetic.mp4"))
        for detector in detectors.values():  # warm-up: graph build, first runs
            for _ in range(10):
                detector(np.zeros((height, width, 3), np.uint8))
        per_frame = {name: [] for name in detectors}
        per_call = {name: [] for name in detectors}
        for _ in range(rounds):
            for name, detector in detectors.items():
                timed = TimedDetector(detector)
                summary = run_start(video_dir, os.path.join(tmp, f"cmp{next(runs)}"), timed, 1, "byte")
                per_frame[name].append(1e3 / summary["processing_fps"])
                per_call[name].append(1e3 * timed.seconds / timed.calls)
        frame_ref = float(np.median(per_frame["upstream graph"]))
        call_ref = float(np.median(per_call["upstream graph"]))
        for name in detectors:
            frame, call = float(np.median(per_frame[name])), float(np.median(per_call[name]))
            print(f"  {width}x{height} {name:>20} ({detectors[name].precision}): frame {frame:6.2f} ms "
                  f"({1e3 / frame:5.1f} FPS), x{frame / frame_ref:.2f} of the upstream graph's; "
                  f"model {call:6.2f} ms, x{call / call_ref:.2f}")


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
    parser.add_argument("--compare_upstream", action="store_true",
                        help="also time start.py with FaceDetector against the upstream graph (part 3)")
    parser.add_argument("--weights", default=os.path.join(ROOT, "model", "facebox_weights.ckpt"),
                        help="upstream-format checkpoint of --model's weights, for --compare_upstream")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds for --compare_upstream")
    parser.add_argument("--only_compare_upstream", action="store_true",
                        help="run part 3 alone (implies --compare_upstream), e.g. with --video_frames 100")
    args = parser.parse_args(argv)
    if args.only_compare_upstream:
        with tempfile.TemporaryDirectory() as tmp:
            compare_with_upstream(args.model, args.weights, args.video_frames, args.rounds, tmp)
        return 0

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
        if args.compare_upstream:
            compare_with_upstream(args.model, args.weights, args.video_frames, args.rounds, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
