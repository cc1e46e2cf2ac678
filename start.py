"""Track faces through every video in a folder and save the best face crops of each track.

Example:
    python3 start.py ./media --model model/facebox.pb --tracker byte --save_video

For each video (sorted by name) it detects faces with FaceDetector (every --detect_every
frames, Kalman prediction in between), tracks them (src/tracking, SORT or ByteTrack-style),
and writes into a NEW folder OUTPUT_PATH/<video stem>/ (OUTPUT_PATH/<stem>__run2/, ... when
an earlier run left one, so nothing is ever overwritten):
    track_<id>_<rank>.jpg     the --top_k best faces of each track with at least
                              --min_track_length detections (rank 1 = best), saved when
                              the track ends and at the end of the video;
    <stem>_tracks.txt         MOT format: frame,id,x,y,w,h,score,-1,-1,-1 (frames from 1,
                              score -1 on frames where the box is a Kalman prediction);
    <stem>_summary.json       frames, tracks, faces saved, processing FPS (after the
                              first frame's warm-up), options, and "complete": false
                              when the video ended early (truncated) or was interrupted;
    <stem>_annotated.mp4      with --save_video: boxes and track ids drawn.
Files that are not videos, or that OpenCV cannot read, are skipped with a warning. The
exit status is 0 when at least one video was processed, 1 otherwise, 2 if the model
cannot be loaded or the output folder cannot be written. Ctrl-C writes the current video's
partial results (summary with "complete": false), says so in one line and exits with 130.

Box conventions: FaceDetector returns pixel [ymin, xmin, ymax, xmax]; the tracker, crops
and the MOT file use pixel [x1, y1, x2, y2] (MOT: x, y, w, h). detections_to_tracker_input
is the one place that converts.
"""
import argparse
import dataclasses
import functools
import json
import logging
import os
import sys
import time

import cv2
import numpy as np
from tqdm import tqdm

from src import video_io
from src.atomic_io import write_text_atomic
from src.cli import import_tensorflow
from src.box_formats import yxyx_to_xyxy
from src.tracking.face_crops import BestFaceKeeper
from src.tracking.tracker import MODES, FaceTracker

LOGGER = logging.getLogger("start")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The upstream tracking fork kept detections with score > 0.7 and grew boxes by 20 px.
DEFAULT_SCORE_THRESHOLD = 0.7
DEFAULT_MARGIN = 20.0
# Detections (not frames) a track needs before its faces are saved. The upstream used 15
# frames with a detector interval; 10 detections is 0.4 s at 25 fps with --detect_every 1:
# long enough that a flickering false positive (which SORT rarely keeps beyond a few hits)
# is not saved, short enough to keep a face that passes by quickly.
DEFAULT_MIN_TRACK_LENGTH = 10
# ByteTrack's second pass takes detections down to 0.1; 0.2 here. With the shipped model (the
# upstream's WIDER weights), boxes of 0.1-0.2 on the edge of the face in front during the
# crossing in media/sample.mp4 dragged the hidden face's track away (a new identity when it
# came back); from 0.2 up they are gone and every track survives (measured on that video).
DEFAULT_LOW_SCORE_THRESHOLD = 0.2
DEFAULT_TOP_K = 3
MOT_SUFFIX = "_tracks.txt"
SUMMARY_SUFFIX = "_summary.json"
ANNOTATED_SUFFIX = "_annotated.mp4"
WINDOW_NAME = "start.py"
# A video announcing at least this many frames has FaceDetector specialise its bfloat16 graph
# to the frame size from the first frame on, instead of after FaceDetector's default run of
# 1000 same-size calls: making it costs ~0.3 s once and saves ~0.35 ms a frame at 640x480.
SPECIALISE_MIN_FRAMES = 1000
# Distinct BGR colours for track ids (id modulo the palette length).
PALETTE = ((0, 255, 0), (255, 128, 0), (0, 128, 255), (255, 0, 255), (0, 255, 255),
           (255, 255, 0), (128, 0, 255), (0, 0, 255), (255, 0, 0), (128, 255, 128))


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """Per-video processing options (see build_parser for their meaning)."""
    detect_every: int = 1
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    low_score_threshold: float = DEFAULT_LOW_SCORE_THRESHOLD
    margin: float = DEFAULT_MARGIN
    scale: float = 1.0
    min_hits: int = 3
    max_age: int = None
    min_track_length: int = DEFAULT_MIN_TRACK_LENGTH
    top_k: int = DEFAULT_TOP_K
    tracker: str = "byte"
    save_video: bool = False
    display: bool = False
    max_frames: int = None
    progress: bool = True


def detections_to_tracker_input(boxes, scores):
    """Converts FaceDetector output to tracker detections.

    Args:
        boxes: float array [N, 4], pixel ymin, xmin, ymax, xmax.
        scores: float array [N].

    Returns:
        float64 array [N, 5]: pixel x1, y1, x2, y2, score.

    Raises:
        ValueError: if the shapes do not fit together.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(scores):
        raise ValueError(f"detector returned boxes {boxes.shape} and scores {scores.shape}; "
                         "expected [N, 4] and [N]")
    return np.concatenate([yxyx_to_xyxy(boxes), scores[:, None]], axis=1)


def detect_faces(detector, frame_bgr, scale, score_threshold):
    """Runs the detector on one BGR frame.

    Args:
        detector: callable(image_rgb uint8 [h, w, 3], score_threshold) -> (boxes [N, 4]
            pixel ymin, xmin, ymax, xmax, scores [N]).
        frame_bgr: uint8 array [H, W, 3] from OpenCV.
        scale: float > 0, the frame is resized by it before detection.
        score_threshold: float, passed to the detector.

    Returns:
        float64 array [N, 5]: pixel x1, y1, x2, y2 (in frame_bgr's pixels, clipped to it)
        and score.
    """
    rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
    if scale != 1.0:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes, scores = detector(rgb, score_threshold=score_threshold)
    dets = detections_to_tracker_input(boxes, scores)
    height, width = frame_bgr.shape[:2]
    dets[:, :4] = np.clip(dets[:, :4] / scale, 0.0, [width, height, width, height])
    keep = (dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])
    return dets[keep]


def draw_tracks(frame_bgr, tracks):
    """Draws track boxes and ids in place.

    Args:
        frame_bgr: uint8 array [H, W, 3].
        tracks: array [M, 5] (x1, y1, x2, y2, id), pixels.
    """
    for x1, y1, x2, y2, track_id in tracks:
        color = PALETTE[int(track_id) % len(PALETTE)]
        cv2.rectangle(frame_bgr, (int(x1), int(y1)), (int(x2), int(y2)), color, 2)
        cv2.putText(frame_bgr, str(int(track_id)), (int(x1), max(int(y1) - 4, 12)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 2)


def save_track_faces(folder, track_faces):
    """Writes each track's kept crops as track_<id>_<rank>.jpg (rank 1 = best).

    Args:
        folder: str, this video's output folder.
        track_faces: list of src.tracking.face_crops.TrackFaces.

    Returns:
        int, number of images written.
    """
    count = 0
    for faces in track_faces:
        for rank, (_, _, crop) in enumerate(faces.faces, start=1):
            video_io.write_image_atomic(os.path.join(folder, f"track_{faces.track_id}_{rank}.jpg"), crop)
            count += 1
    return count


def display_available():
    """True when OpenCV can open a window here (a GUI build and a screen)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow(WINDOW_NAME)
    except cv2.error:
        return False
    return True


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C while a video was processed; its partial outputs were written first.

    Attributes:
        summary: the partial summary (``"complete": false``), also in <stem>_summary.json.
    """

    def __init__(self, summary):
        super().__init__(f"{summary['video']}: interrupted at frame {summary['frames']}")
        self.summary = summary


@dataclasses.dataclass
class _VideoRun:
    """The state of one video being processed (what the outputs are made from)."""
    out_dir: str
    stem: str
    keeper: BestFaceKeeper
    mot_lines: list = dataclasses.field(default_factory=list)
    shown_ids: set = dataclasses.field(default_factory=set)
    frames: int = 0
    detector_calls: int = 0
    faces_saved: int = 0
    tracks_saved: int = 0
    first_frame_seconds: float = 0.0  # includes TensorFlow's warm-up on the first call

    def save_finished(self, finished):
        self.faces_saved += save_track_faces(self.out_dir, finished)
        self.tracks_saved += len(finished)


def _process_frame(run, index, frame, detector, tracker, detector_threshold, options):
    """Detection (or prediction), tracking, crops and MOT rows of one frame; returns the tracks."""
    track_scores = {}
    if index % options.detect_every == 0:
        dets = detect_faces(detector, frame, options.scale, detector_threshold)
        run.detector_calls += 1
        tracks = tracker.update(dets)
        for track_id, row in tracker.matches:
            run.keeper.add(track_id, index, frame, dets[row], dets[row, 4])
            track_scores[int(track_id)] = float(dets[row, 4])
    else:
        tracks = tracker.predict_only()
    run.save_finished(run.keeper.finish(tracker.removed_ids))
    for x1, y1, x2, y2, track_id in tracks:
        run.shown_ids.add(int(track_id))
        run.mot_lines.append(f"{index + 1},{int(track_id)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},"
                             f"{y2 - y1:.2f},{track_scores.get(int(track_id), -1):.4f},-1,-1,-1\n")
    return tracks


def _write_outputs(run, video_path, seconds, options, complete, expected_frames):
    """Saves the remaining crops, the MOT file and the summary; returns the summary."""
    run.save_finished(run.keeper.finish_all())
    write_text_atomic(os.path.join(run.out_dir, run.stem + MOT_SUFFIX), "".join(run.mot_lines))
    steady = seconds - run.first_frame_seconds
    summary = {
        "video": os.path.abspath(video_path),
        "output_dir": os.path.abspath(run.out_dir),
        "complete": complete,
        "frames": run.frames,
        "frames_expected": expected_frames,
        "detector_calls": run.detector_calls,
        "tracks": len(run.shown_ids),
        "tracks_saved": run.tracks_saved,
        "faces_saved": run.faces_saved,
        "seconds": round(seconds, 3),
        # Frames per second after the first frame, whose detector call includes TensorFlow's
        # one-time warm-up (about a second); the overall rate is frames / seconds.
        "processing_fps": round((run.frames - 1) / steady, 2) if run.frames > 1 and steady > 0 else None,
        "options": dataclasses.asdict(options),
    }
    write_text_atomic(os.path.join(run.out_dir, run.stem + SUMMARY_SUFFIX), json.dumps(summary, indent=2) + "\n")
    return summary


def _specialise_for_long_video(detector, frame_count):
    """Sets a FaceDetector's specialise_after to 1 for a video of at least SPECIALISE_MIN_FRAMES
    frames (see there); returns a function that restores the previous value. Detectors without
    the attribute, or with specialisation turned off (None), are left alone."""
    previous = getattr(detector, "specialise_after", None)
    if previous is None or frame_count < SPECIALISE_MIN_FRAMES:
        return lambda: None
    detector.specialise_after = 1

    def restore():
        detector.specialise_after = previous

    return restore


def process_video(video_path, detector, output_root, options):
    """Detects, tracks and saves faces for one video.

    Args:
        video_path: str, video file.
        detector: callable with FaceDetector's API (see detect_faces).
        output_root: str, parent of the per-video output folders.
        options: VideoOptions.

    Returns:
        dict, the summary also written to <stem>_summary.json. ``complete`` is False when the
        video ended before the frame count in its header (a truncated file; a warning says so).

    Raises:
        video_io.VideoReadError: if the video cannot be opened or has no frame (nothing
            is written then).
        VideoInterrupted: on Ctrl-C, after writing the partial outputs (crops of the tracks
            so far, MOT file, summary with ``"complete": false``; the annotated video is
            removed, never left half-written).
    """
    stem = os.path.splitext(os.path.basename(video_path))[0]
    reader = video_io.FrameReader(video_path, max_frames=options.max_frames)
    tracker = FaceTracker(options.tracker, max_age=options.max_age, min_hits=options.min_hits,
                          score_threshold=options.score_threshold,
                          low_score_threshold=min(options.low_score_threshold, options.score_threshold))
    detector_threshold = (options.score_threshold if options.tracker == "sort"
                          else min(options.low_score_threshold, options.score_threshold))
    run = _VideoRun(video_io.create_run_dir(output_root, stem), stem,
                    BestFaceKeeper(options.top_k, options.margin, options.min_track_length))
    writer = None
    restore_specialise_after = _specialise_for_long_video(detector, reader.frame_count)
    start = time.perf_counter()
    try:
        if options.save_video:
            writer = video_io.AtomicVideoWriter(os.path.join(run.out_dir, stem + ANNOTATED_SUFFIX),
                                                reader.fps, reader.width, reader.height)
        bar = tqdm(reader, total=reader.frame_count or None, desc=stem, unit="frame",
                   disable=not options.progress)
        for index, frame in bar:
            tracks = _process_frame(run, index, frame, detector, tracker, detector_threshold, options)
            run.frames += 1
            if run.frames == 1:
                run.first_frame_seconds = time.perf_counter() - start
            if writer is not None or options.display:
                draw_tracks(frame, tracks)
            if writer is not None:
                writer.write(frame)
            if options.display:
                cv2.imshow(WINDOW_NAME, frame)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    LOGGER.info("%s: stopped by the user at frame %d", video_path, index + 1)
                    break
        bar.close()
    except KeyboardInterrupt:
        if writer is not None:
            writer.abort()
        reader.close()
        summary = _write_outputs(run, video_path, time.perf_counter() - start, options, False,
                                 reader.frame_count or None)
        raise VideoInterrupted(summary) from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        reader.close()
        restore_specialise_after()
    if writer is not None:
        writer.close()
    expected = reader.frame_count or None
    complete = expected is None or run.frames >= expected or options.display
    if not complete:
        LOGGER.warning("%s: the video ended early: %d of the %d frames its header announces were "
                       "readable (truncated file?); results cover those frames", video_path,
                       run.frames, expected)
    return _write_outputs(run, video_path, time.perf_counter() - start, options, complete, expected)


def load_face_detector(model_path, precision="float32"):
    """Loads the frozen-graph FaceDetector (imports TensorFlow only now).

    Args:
        model_path: str, a frozen .pb.
        precision: 'float32', 'bfloat16' or 'auto' (see FaceDetector).

    Raises:
        FileNotFoundError: if model_path is not a file.
    """
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"{model_path}: model file not found (pass --model PATH to a frozen .pb)")
    import_tensorflow()  # its start-up lines follow TF_CPP_MIN_LOG_LEVEL (2 unless set)
    from face_detector import FaceDetector
    detector = FaceDetector(model_path, precision=precision)
    LOGGER.info("%s: running in %s", model_path, detector.precision)
    return detector


_DEFAULTS = VideoOptions()  # the one home of the defaults; the parser shows them


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python3 start.py ./media --model model/facebox.pb --tracker byte "
               "--detect_every 2 --save_video\n\n"
               "Each video's results go to a new folder OUTPUT_PATH/<stem>/; if it already "
               "exists (an earlier run), OUTPUT_PATH/<stem>__run2/ (then __run3, ...) is used, "
               "so earlier results are never overwritten.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video_dir", nargs="?", default="media",
                        help="folder of videos, processed in sorted order (default: ./media)")
    parser.add_argument("--model", default="model/facebox.pb", help="frozen FaceBoxes graph (.pb)")
    parser.add_argument("--output_path", default="facepics",
                        help="parent folder for per-video results (default: facepics)")
    parser.add_argument("--detect_every", type=int, default=_DEFAULTS.detect_every,
                        help="run the detector every N frames, Kalman prediction in between")
    parser.add_argument("--score_threshold", type=float, default=_DEFAULTS.score_threshold,
                        help="detections at or above this score start and extend tracks "
                             "(default %(default)s, as upstream)")
    parser.add_argument("--low_score_threshold", type=float, default=_DEFAULTS.low_score_threshold,
                        help="--tracker byte: detections between this and --score_threshold "
                             "may extend existing tracks")
    parser.add_argument("--margin", type=float, default=_DEFAULTS.margin,
                        help="crop margin: pixels if >= 1, else a fraction of the box size "
                             "(default %(default)s px, as upstream)")
    parser.add_argument("--scale", type=float, default=_DEFAULTS.scale,
                        help="resize frames by this factor before detection (e.g. 0.5)")
    parser.add_argument("--min_hits", type=int, default=_DEFAULTS.min_hits, help="matches before a track is shown")
    parser.add_argument("--max_age", type=int, default=_DEFAULTS.max_age,
                        help="detector calls a track survives unmatched (default: 1 for sort, "
                             "30 for byte)")
    parser.add_argument("--min_track_length", type=int, default=_DEFAULTS.min_track_length,
                        help="detections a track needs for its faces to be saved (default %(default)s: "
                             "0.4 s of video at 25 fps, rejects flickering false positives)")
    parser.add_argument("--top_k", type=int, default=_DEFAULTS.top_k,
                        help="best faces saved per track (quality = score x size x sharpness)")
    parser.add_argument("--tracker", choices=MODES, default=_DEFAULTS.tracker,
                        help="'sort' = reference SORT, 'byte' (default) = SORT + low-score association "
                             "and occlusion re-association")
    parser.add_argument("--save_video", action="store_true",
                        help="write <stem>_annotated.mp4 with boxes and ids into the output folder")
    parser.add_argument("--display", action="store_true",
                        help="show the annotated frames (needs a screen; q skips the video)")
    parser.add_argument("--max_frames", type=int, default=_DEFAULTS.max_frames,
                        help="process at most this many frames per video")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default="auto",
                        help="detector precision: auto (default) runs the network in bfloat16 on CPUs "
                             "with bfloat16 units (AMX / AVX512_BF16) and float32 elsewhere; float32 "
                             "is the exact frozen graph")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    checks = [
        (args.detect_every >= 1, "--detect_every must be >= 1"),
        (0.0 < args.scale <= 8.0, "--scale must be in (0, 8]"),
        (args.margin >= 0, "--margin must be >= 0"),
        (args.min_hits >= 0, "--min_hits must be >= 0"),
        (args.max_age is None or args.max_age >= 0, "--max_age must be >= 0"),
        (args.min_track_length >= 0, "--min_track_length must be >= 0"),
        (args.top_k >= 1, "--top_k must be >= 1"),
        (args.max_frames is None or args.max_frames >= 1, "--max_frames must be >= 1"),
        (0.0 <= args.low_score_threshold <= 1.0 and 0.0 <= args.score_threshold <= 1.0,
         "score thresholds must be in [0, 1]"),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    return args


def _list_inputs(args):
    """(videos, other files) of args.video_dir, or None after logging why nothing can run."""
    if args.save_video and os.path.realpath(args.output_path) == os.path.realpath(args.video_dir):
        LOGGER.error("%s: --output_path must not be the input folder when --save_video is set",
                     args.output_path)
        return None
    try:
        videos, others = video_io.list_videos(args.video_dir)
    except NotADirectoryError as err:
        LOGGER.error("%s", err)
        return None
    for path in others:
        LOGGER.warning("%s: skipped, not a video file extension", path)
    if not videos:
        LOGGER.error("%s: no video files found (extensions: %s)", args.video_dir,
                     " ".join(video_io.VIDEO_EXTENSIONS))
        return None
    return videos, others


def _options_from_args(args, display):
    """VideoOptions from the parsed command line (display: whether a screen is usable)."""
    return VideoOptions(
        detect_every=args.detect_every, score_threshold=args.score_threshold,
        low_score_threshold=args.low_score_threshold, margin=args.margin, scale=args.scale,
        min_hits=args.min_hits, max_age=args.max_age, min_track_length=args.min_track_length,
        top_k=args.top_k, tracker=args.tracker, save_video=args.save_video, display=display,
        max_frames=args.max_frames, progress=not args.no_progress)


def _process_videos(videos, detector, output_path, options):
    """Processes every video; unreadable ones are skipped and counted.

    Returns:
        (summaries of the finished videos, number skipped), or an int exit status when the
        run must stop: 130 after Ctrl-C (partial results kept), 2 when the output folder
        cannot be written.
    """
    done, skipped = [], 0
    for path in videos:
        try:
            summary = process_video(path, detector, output_path, options)
        except video_io.VideoReadError as err:
            LOGGER.warning("%s; skipped", err)
            skipped += 1
            continue
        except VideoInterrupted as interrupted:
            print(f"error: interrupted: {path}: partial results for {interrupted.summary['frames']} frames "
                  f"(crops, tracks, summary with \"complete\": false) in {interrupted.summary['output_dir']}; "
                  f"{len(done)} earlier video(s) complete", file=sys.stderr)
            return 130
        except OSError as err:  # the output folder cannot be written (permissions, disk full)
            print(f"error: {output_path}: cannot write the results: {err.strerror or err}"
                  f"{' (' + err.filename + ')' if getattr(err, 'filename', None) else ''}", file=sys.stderr)
            return 2
        done.append(summary)
        LOGGER.info("%s: %d frames, %d tracks, %d faces saved, %.1f FPS -> %s", path, summary["frames"],
                    summary["tracks"], summary["faces_saved"], summary["processing_fps"] or 0.0,
                    summary["output_dir"])
    return done, skipped


def _print_summary(done, num_videos, skipped, num_others, output_path):
    """One line: videos, frames, steady FPS (and with the warm-up), tracks and crops."""
    frames = sum(s["frames"] for s in done)
    seconds = sum(s["seconds"] for s in done)
    # Steady rate: each video's frames after its first (whose detector call includes warm-up).
    steady = [(s["frames"] - 1, (s["frames"] - 1) / s["processing_fps"]) for s in done if s["processing_fps"]]
    steady_fps = sum(n for n, _ in steady) / sum(t for _, t in steady) if steady else 0.0
    print(f"processed {len(done)}/{num_videos} videos ({skipped} unreadable, {num_others} non-video "
          f"files skipped): {frames} frames at {steady_fps:.1f} FPS ({frames / seconds if seconds else 0:.1f} "
          f"with the warm-up), "
          f"{sum(s['tracks'] for s in done)} tracks, {sum(s['faces_saved'] for s in done)} face crops "
          f"in {output_path}")


def main(argv=None, detector_factory=None):
    """Runs the CLI.

    Args:
        argv: list of str arguments (default: sys.argv[1:]).
        detector_factory: callable(model_path) -> detector; default loads FaceDetector.

    Returns:
        int exit status: 0 if at least one video was processed, 1 if none, 2 if the
        detector could not be loaded or the output folder not written, 130 after Ctrl-C.
    """
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    inputs = _list_inputs(args)
    if inputs is None:
        return 1
    videos, others = inputs
    try:
        detector = (detector_factory or functools.partial(load_face_detector, precision=args.precision))(args.model)
    except (FileNotFoundError, OSError, ValueError) as err:
        LOGGER.error("%s", err)
        return 2
    display = args.display and display_available()
    if args.display and not display:
        LOGGER.warning("--display ignored: no screen (or OpenCV without GUI support) here")
    result = _process_videos(videos, detector, args.output_path, _options_from_args(args, display))
    if isinstance(result, int):
        return result
    done, skipped = result
    if display:
        cv2.destroyAllWindows()
    _print_summary(done, len(videos), skipped, len(others), args.output_path)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
