"""Track faces in video files, folder trees, cameras and streams; save the best face crops of each track.

Examples:
    python3 start.py                          # every video in the repository's media/ folder
    python3 start.py clip.mp4 /data/videos --recursive --save_video
    python3 start.py 0 --max_seconds 60       # the first webcam for a minute (or until Ctrl-C)
    python3 start.py rtsp://192.168.1.20:554/stream --max_frames 5000

Each SOURCE is a video file, a folder (its video files, sorted; with --recursive also those of its
subfolders), a camera index (0, 1, ...) or a stream URL (anything with '://' that OpenCV's FFmpeg
opens: rtsp://, http://.../video.mjpg, ...). Sources are processed one after the other ("video k of
N"). A camera or stream runs until Ctrl-C, --max_frames or --max_seconds and then writes complete
results like a file; a stream that stops delivering frames is reopened up to --reconnects times.

For each source it detects faces with FaceDetector (every --detect_every frames, Kalman prediction in
between), tracks them (src/tracking, SORT or ByteTrack-style) and writes into a NEW folder
OUTPUT_PATH/<name>/ (<name>: the file's stem, its path below a folder SOURCE for a folder tree,
camera<index>, or the stream's host_port_path; OUTPUT_PATH/<name>__run2/, ... when an earlier run
left one, so nothing is ever overwritten):
    track_<id>_<rank>.jpg     the --top_k best faces of each track with at least
                              --min_track_length detections (rank 1 = best), saved when
                              the track ends and at the end of the source;
    <stem>_tracks.txt         MOT format: frame,id,x,y,w,h,score,-1,-1,-1 (frames from 1,
                              score -1 on frames where the box is a Kalman prediction);
    <stem>_summary.json       frames, tracks, faces saved, processing FPS (after the
                              first frame's warm-up), options, why it stopped ("stopped"),
                              and "complete": false when a file ended early (truncated) or
                              was interrupted;
    <stem>_annotated.mp4      with --save_video: boxes and track ids drawn.
The sources and the output folder are checked before the model loads. Files in a folder that
are not videos are ignored (counted at the end); videos OpenCV cannot read are skipped with a
warning. Exit status: 0 when at least one source was processed; 2 with one line "error: ..." for a
user error (a missing source, no video, an unusable output folder or model, no source processed);
130 after Ctrl-C, which first writes the current source's results (for a file, "complete": false)
and names them. Ctrl-C while the last (or only) source is a camera or stream just ends it: exit 0.

Box conventions: FaceDetector returns pixel [ymin, xmin, ymax, xmax]; the tracker, crops
and the MOT file use pixel [x1, y1, x2, y2] (MOT: x, y, w, h). detections_to_tracker_input
is the one place that converts.
"""
import sys

if __name__ == "__main__":  # Ctrl-C while Python, OpenCV and TensorFlow load: one line, exit 130
    from src.cli import quiet_ctrl_c
    quiet_ctrl_c()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# FFmpeg's own stderr lines (e.g. "Stream ends prematurely" when a stream drops) would interleave
# with this script's one-line messages; 8 = AV_LOG_FATAL. Read when OpenCV loads FFmpeg.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from src import display, video_io, video_sources  # noqa: E402
from src.atomic_io import write_text_atomic  # noqa: E402
from src.box_formats import yxyx_to_xyxy  # noqa: E402
from src.cli import (UserError, check_output_folder, import_tensorflow, one_line_usage_errors,  # noqa: E402
                     report_errors)
from src.tracking.face_crops import BestFaceKeeper  # noqa: E402
from src.tracking.tracker import MODES, FaceTracker  # noqa: E402

LOGGER = logging.getLogger("start")

# Defaults resolve from this file's folder, so start.py runs from any working directory.
REPOSITORY = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SOURCE = os.path.join(REPOSITORY, "media")
DEFAULT_MODEL = os.path.join(REPOSITORY, "model", "facebox.pb")
DEFAULT_OUTPUT = "facepics"  # in the current folder, like any output a user names

# The upstream tracking fork kept detections with score > 0.7 and grew boxes by 20 px.
DEFAULT_SCORE_THRESHOLD = 0.7
DEFAULT_MARGIN = 20.0
# Detections (not frames) a track needs before its faces are saved. The upstream used 15
# frames with a detector interval; 10 detections is 0.4 s at 25 fps with --detect_every 1:
# long enough that a flickering false positive (which SORT rarely keeps beyond a few hits)
# is not saved, short enough to keep a face that passes by quickly.
DEFAULT_MIN_TRACK_LENGTH = 10
# ByteTrack's second pass takes detections down to 0.1; 0.2 here. With the upstream's WIDER
# weights (shipped before the fine-tune), boxes of 0.1-0.2 on the edge of the face in front during the
# crossing in media/sample.mp4 dragged the hidden face's track away (a new identity when it
# came back); from 0.2 up they are gone and every track survives (measured on that video).
DEFAULT_LOW_SCORE_THRESHOLD = 0.2
DEFAULT_TOP_K = 3
# FaceDetector's own default max_dimension (face_detector.DEFAULT_MAX_DIMENSION; repeated here so
# that --help needs no TensorFlow; a test keeps the two equal): the longer side of the frame the
# network sees, after --scale. See face_detector.py for why.
DEFAULT_MAX_DIMENSION = 1024
# A frame (after --scale) shorter than the smallest anchor holds no face the detector can find.
MIN_DETECTOR_SIDE = 32
DEFAULT_RECONNECTS = 3
MOT_SUFFIX = "_tracks.txt"
SUMMARY_SUFFIX = "_summary.json"
ANNOTATED_SUFFIX = "_annotated.mp4"
WINDOW_NAME = "start.py"
# Distinct BGR colours for track ids (id modulo the palette length).
PALETTE = ((0, 255, 0), (255, 128, 0), (0, 128, 255), (255, 0, 255), (0, 255, 255),
           (255, 255, 0), (128, 0, 255), (0, 0, 255), (255, 0, 0), (128, 255, 128))


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """Per-source processing options (see build_parser for their meaning)."""
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
    max_seconds: float = None
    reconnects: int = DEFAULT_RECONNECTS
    reconnect_delay: float = video_io.RECONNECT_DELAY_SECONDS
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


class SourceSkipped(Exception):
    """A source that cannot be processed (unreadable, or too small at --scale); nothing was written."""


class SourceInterrupted(KeyboardInterrupt):
    """Ctrl-C while a source was processed; its outputs were written first.

    Attributes:
        summary: the summary also in <stem>_summary.json (for a file ``"complete": false``; for a
            camera or stream, whose normal end is Ctrl-C, ``"stopped": "ctrl-c"``).
    """

    def __init__(self, summary):
        super().__init__(f"{summary['video']}: interrupted at frame {summary['frames']}")
        self.summary = summary


@dataclasses.dataclass
class _VideoRun:
    """The state of one source being processed (what the outputs are made from)."""
    out_dir: str
    stem: str
    keeper: BestFaceKeeper
    mot_lines: list = dataclasses.field(default_factory=list)
    shown_ids: set = dataclasses.field(default_factory=set)
    frames: int = 0
    detector_calls: int = 0
    faces_saved: int = 0
    tracks_saved: int = 0
    detector: dict = dataclasses.field(default_factory=dict)  # what ran it: backend, precision
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


def _write_outputs(run, source, seconds, options, complete, expected_frames, stopped, reader):
    """Saves the remaining crops, the MOT file and the summary; returns the summary."""
    run.save_finished(run.keeper.finish_all())
    write_text_atomic(os.path.join(run.out_dir, run.stem + MOT_SUFFIX), "".join(run.mot_lines))
    steady = seconds - run.first_frame_seconds
    summary = {
        "video": os.path.abspath(source.target) if source.kind == video_sources.FILE else str(source),
        "source_kind": source.kind,
        "output_dir": os.path.abspath(run.out_dir),
        "complete": complete,
        "stopped": stopped,
        "frames": run.frames,
        "frames_expected": expected_frames,
        "frames_dropped": reader.dropped,
        "reconnections": reader.reconnections,
        "detector_calls": run.detector_calls,
        "tracks": len(run.shown_ids),
        "tracks_saved": run.tracks_saved,
        "faces_saved": run.faces_saved,
        "seconds": round(seconds, 3),
        # Frames per second after the first frame, whose detector call includes TensorFlow's
        # one-time warm-up (about a second); the overall rate is frames / seconds.
        "processing_fps": round((run.frames - 1) / steady, 2) if run.frames > 1 and steady > 0 else None,
        "detector": run.detector,
        "options": dataclasses.asdict(options),
    }
    write_text_atomic(os.path.join(run.out_dir, run.stem + SUMMARY_SUFFIX), json.dumps(summary, indent=2) + "\n")
    return summary


def _open_reader(source, options):
    """The FrameReader of a source, after checking its frames are large enough at --scale.

    Raises:
        SourceSkipped: unreadable, or smaller than MIN_DETECTOR_SIDE after --scale.
    """
    try:
        reader = video_io.FrameReader(source.target, max_frames=options.max_frames, name=str(source),
                                      live=source.live,
                                      reconnects=options.reconnects if source.kind == video_sources.STREAM else 0,
                                      reconnect_delay=options.reconnect_delay)
    except video_io.VideoReadError as err:
        raise SourceSkipped(str(err)) from None
    reason = _too_small(source, reader.width, reader.height, options.scale)  # e.g. a camera's frames
    if reason:
        reader.close()
        raise SourceSkipped(reason)
    return reader


def process_source(source, detector, output_root, options, position="", window=None):
    """Detects, tracks and saves faces for one video file, camera or stream.

    Args:
        source: video_sources.Source.
        detector: callable with FaceDetector's API (see detect_faces).
        output_root: str, parent of the per-source output folders.
        options: VideoOptions.
        position: str, e.g. 'video 2 of 5', for the progress bar.
        window: a src.display window showing the annotated frames (--display), or None.

    Returns:
        dict, the summary also written to <stem>_summary.json. ``complete`` is False when a file
        ended before the frame count in its header (a truncated file; a warning says so);
        ``stopped`` says why the frames ended: 'end', 'max_frames', 'max_seconds', 'user' (q in
        the --display window), 'lost' (a camera or stream stopped delivering frames) or 'ctrl-c'.

    Raises:
        SourceSkipped: if the source cannot be opened, has no frame or is too small at
            options.scale (nothing is written then).
        SourceInterrupted: on Ctrl-C, after writing the outputs (crops of the tracks so far,
            MOT file, summary; the annotated video is removed, never left half-written).
    """
    reader = _open_reader(source, options)
    stem = os.path.basename(source.name)
    tracker = FaceTracker(options.tracker, max_age=options.max_age, min_hits=options.min_hits,
                          score_threshold=options.score_threshold,
                          low_score_threshold=min(options.low_score_threshold, options.score_threshold))
    detector_threshold = (options.score_threshold if options.tracker == "sort"
                          else min(options.low_score_threshold, options.score_threshold))
    writer = None
    start = time.perf_counter()
    stopped, run = None, None
    try:
        run = _VideoRun(video_io.create_run_dir(output_root, source.name), stem,
                        BestFaceKeeper(options.top_k, options.margin, options.min_track_length),
                        detector={key: getattr(detector, key) for key in ("backend", "precision")
                                  if hasattr(detector, key)})
        if options.save_video:
            writer = video_io.AtomicVideoWriter(os.path.join(run.out_dir, stem + ANNOTATED_SUFFIX),
                                                reader.fps, reader.width, reader.height)
        bar = tqdm(reader, total=reader.frame_count or None, desc=f"{position} {stem}".strip(), unit="frame",
                   disable=not options.progress)
        for index, frame in bar:
            tracks = _process_frame(run, index, frame, detector, tracker, detector_threshold, options)
            run.frames += 1
            if run.frames == 1:
                run.first_frame_seconds = time.perf_counter() - start
            if writer is not None or window is not None:
                draw_tracks(frame, tracks)
            if writer is not None:
                writer.write(frame)
            if window is not None:
                if not window.show(frame):
                    LOGGER.info("%s: stopped by the user at frame %d", source, index + 1)
                    stopped = "user"
                    break
            if options.max_seconds is not None and time.perf_counter() - start >= options.max_seconds:
                stopped = "max_seconds"
                break
        bar.close()
    except KeyboardInterrupt:
        if writer is not None:
            writer.abort()
        reader.close()
        if run is None:
            raise
        summary = _write_outputs(run, source, time.perf_counter() - start, options, source.live,
                                 reader.frame_count or None, "ctrl-c", reader)
        raise SourceInterrupted(summary) from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        reader.close()
    if writer is not None:
        writer.close()
    stopped = stopped or reader.ended or "end"
    expected = reader.frame_count or None
    complete = source.live or expected is None or run.frames >= expected or stopped != "end"
    if not complete:
        LOGGER.warning("%s: the video ended early: %d of the %d frames its header announces were "
                       "readable (truncated file?); results cover those frames", source,
                       run.frames, expected)
    return _write_outputs(run, source, time.perf_counter() - start, options, complete, expected, stopped, reader)


def load_face_detector(model_path, precision="float32", max_dimension=DEFAULT_MAX_DIMENSION, backend="auto"):
    """Loads the frozen-graph FaceDetector (imports TensorFlow only now).

    Args:
        model_path: str, a frozen .pb (checked by check_model_path).
        precision: 'float32', 'bfloat16' or 'auto' (see FaceDetector).
        max_dimension: int or None, FaceDetector's cap on the longer side of the image it runs on.
        backend: 'auto', 'tensorflow' or 'litert' (see FaceDetector).

    Raises:
        ValueError: the file is not a usable frozen graph (FaceDetector's message names it).
    """
    import_tensorflow()  # its start-up lines follow TF_CPP_MIN_LOG_LEVEL (2 unless set)
    from face_detector import FaceDetector
    detector = FaceDetector(model_path, precision=precision, max_dimension=max_dimension, backend=backend)
    LOGGER.info("%s: running %s in %s", model_path, detector.backend, detector.precision)
    return detector


def check_model_path(path):
    """Raises UserError unless `path` is a readable file (the model loads later, after all checks)."""
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, not a frozen graph (.pb) file (pass --model PATH)")
    if not os.path.exists(path):
        raise UserError(f"{path}: model file not found (pass --model PATH to a frozen .pb)")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: model file not readable (permission denied)")


def check_live_source(source):
    """Raises UserError unless OpenCV opens the camera or stream (closed again at once)."""
    capture = video_io.open_capture(source.target)
    try:
        if not capture.isOpened():
            what = "no such camera, or it is in use" if source.kind == video_sources.CAMERA else (
                "OpenCV's FFmpeg cannot open the stream (address, credentials, network?)")
            raise UserError(f"{source}: cannot be opened: {what}")
    finally:
        capture.release()


_DEFAULTS = VideoOptions()  # the one home of the defaults; the parser shows them


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help keeps the docstring's layout and shows every default."""


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\nBox conventions")[0],
        epilog="example: python3 start.py ./media --tracker byte --detect_every 2 --save_video",
        formatter_class=_HelpFormatter)
    parser.add_argument("sources", nargs="*", default=[DEFAULT_SOURCE], metavar="SOURCE",
                        help="video files, folders, camera indices (0, 1, ...) or stream URLs")
    parser.add_argument("--recursive", action="store_true", help="also read the videos in the folders' subfolders")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="frozen FaceBoxes graph (.pb)")
    parser.add_argument("--output_path", default=DEFAULT_OUTPUT,
                        help="parent folder of the per-source results (relative to the current folder)")
    parser.add_argument("--detect_every", type=int, default=_DEFAULTS.detect_every,
                        help="run the detector every N frames, Kalman prediction in between")
    parser.add_argument("--score_threshold", type=float, default=_DEFAULTS.score_threshold,
                        help="detections at or above this score start and extend tracks (as upstream)")
    parser.add_argument("--low_score_threshold", type=float, default=_DEFAULTS.low_score_threshold,
                        help="--tracker byte: detections between this and --score_threshold "
                             "may extend existing tracks")
    parser.add_argument("--margin", type=float, default=_DEFAULTS.margin,
                        help="crop margin: pixels if >= 1, else a fraction of the box size (px as upstream)")
    parser.add_argument("--scale", type=float, default=_DEFAULTS.scale,
                        help="resize frames by this factor before detection (e.g. 0.5), in (0, 8]")
    parser.add_argument("--max_dimension", type=int, default=DEFAULT_MAX_DIMENSION,
                        help="then downscale frames whose longer side is larger to this many pixels, so "
                             "that a face as tall as the frame fits the largest anchor (512 px); 0 turns it off")
    parser.add_argument("--min_hits", type=int, default=_DEFAULTS.min_hits, help="matches before a track is shown")
    parser.add_argument("--max_age", type=int, default=_DEFAULTS.max_age,
                        help="detector calls a track survives unmatched (None: 1 for sort, 30 for byte)")
    parser.add_argument("--min_track_length", type=int, default=_DEFAULTS.min_track_length,
                        help="detections a track needs for its faces to be saved (0.4 s of video at 25 fps, "
                             "rejects flickering false positives)")
    parser.add_argument("--top_k", type=int, default=_DEFAULTS.top_k,
                        help="best faces saved per track (quality = score x size x sharpness)")
    parser.add_argument("--tracker", choices=MODES, default=_DEFAULTS.tracker,
                        help="'sort' = reference SORT, 'byte' = SORT + low-score association "
                             "and occlusion re-association")
    parser.add_argument("--save_video", action="store_true",
                        help="write <stem>_annotated.mp4 with boxes and ids into the output folder")
    parser.add_argument("--display", action="store_true",
                        help="show the annotated frames in a window (needs a screen; OpenCV's own window where "
                             "its build has a GUI, else a Tk one; q or closing it ends the source)")
    parser.add_argument("--max_frames", type=int, default=_DEFAULTS.max_frames,
                        help="process at most this many frames per source (None: all, or until Ctrl-C)")
    parser.add_argument("--max_seconds", type=float, default=_DEFAULTS.max_seconds,
                        help="stop each source after this many seconds of processing (None: no limit)")
    parser.add_argument("--reconnects", type=int, default=_DEFAULTS.reconnects,
                        help="times a stream that stops delivering frames is reopened")
    parser.add_argument("--reconnect_delay", type=float, default=_DEFAULTS.reconnect_delay,
                        help="seconds to wait before reopening a stream")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default="auto",
                        help="detector precision: auto takes the fastest path of this CPU (bfloat16 on CPUs with "
                             "AMX / AVX512_BF16, else LiteRT float32 where model/<name>.tflite belongs to the .pb, "
                             "else TensorFlow float32); float32 is the exact frozen graph")
    parser.add_argument("--backend", choices=("auto", "tensorflow", "litert"), default="auto",
                        help="what runs the network: auto follows --precision auto; litert forces the .tflite "
                             "(made by create_pb.py --tflite), tensorflow never uses it")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of one line")
    return one_line_usage_errors(parser)


def parse_args(argv=None):
    """The parsed and range-checked command line.

    Raises:
        UserError: a bad flag or value (one line, exit 2 through report_errors).
    """
    args = build_parser().parse_args(argv)
    checks = [
        (args.detect_every >= 1, "--detect_every", "must be >= 1"),
        (0.0 < args.scale <= 8.0, "--scale", "must be in (0, 8]"),
        (args.max_dimension >= 0, "--max_dimension", "must be >= 0 (0 turns it off)"),
        (args.margin >= 0, "--margin", "must be >= 0"),
        (args.min_hits >= 0, "--min_hits", "must be >= 0"),
        (args.max_age is None or args.max_age >= 0, "--max_age", "must be >= 0"),
        (args.min_track_length >= 0, "--min_track_length", "must be >= 0"),
        (args.top_k >= 1, "--top_k", "must be >= 1"),
        (args.max_frames is None or args.max_frames >= 1, "--max_frames", "must be >= 1"),
        (args.max_seconds is None or args.max_seconds > 0, "--max_seconds", "must be > 0"),
        (args.reconnects >= 0, "--reconnects", "must be >= 0"),
        (args.reconnect_delay >= 0, "--reconnect_delay", "must be >= 0"),
        (0.0 <= args.score_threshold <= 1.0, "--score_threshold", "must be in [0, 1]"),
        (0.0 <= args.low_score_threshold <= 1.0, "--low_score_threshold", "must be in [0, 1]"),
    ]
    for ok, flag, message in checks:
        if not ok:
            raise UserError(f"{flag} {getattr(args, flag[2:])}: {message}")
    return args


def _resolve_inputs(args):
    """(sources, ignored files) after every check that needs no model; raises UserError."""
    check_output_folder(args.output_path, "--output_path")
    sources, ignored = video_sources.resolve_sources(args.sources, args.recursive)
    output = os.path.realpath(args.output_path)
    for text in args.sources:
        if args.save_video and os.path.isdir(text):
            folder = os.path.realpath(text)
            if output == folder or (args.recursive and output.startswith(folder + os.sep)):
                raise UserError(f"{args.output_path}: must not be inside the input folder {text} with "
                                "--save_video (its annotated videos would be read as input next time)")
    for source in sources:
        if source.live:
            check_live_source(source)
    return _big_enough(sources, args.scale), ignored


def _big_enough(sources, scale):
    """The sources whose frames (from the file's header) stay at least MIN_DETECTOR_SIDE px at --scale.

    Files OpenCV cannot open are kept (they are reported when processed); the others are
    dropped with a warning, or with a UserError when none is left.
    """
    kept, reasons = [], []
    for source in sources:
        reason = None
        if not source.live:
            capture = video_io.open_capture(source.target)
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) if capture.isOpened() else 0
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) if capture.isOpened() else 0
            capture.release()
            reason = _too_small(source, width, height, scale) if width and height else None
        if reason:
            reasons.append(reason)
        else:
            kept.append(source)
    if not kept:
        raise UserError(reasons[0] if len(reasons) == 1 else
                        f"{len(reasons)} videos: --scale {scale:g} makes their frames smaller than the "
                        f"smallest face the detector finds ({MIN_DETECTOR_SIDE} px); use a larger --scale")
    for reason in reasons:
        LOGGER.warning("%s; skipped", reason)
    return kept


def _too_small(source, width, height, scale):
    """Why frames of width x height are too small for the detector at `scale`, or None."""
    # cv2.resize rounds fx * width to the nearest pixel.
    scaled_width, scaled_height = round(width * scale), round(height * scale)
    if min(scaled_width, scaled_height) >= MIN_DETECTOR_SIDE:
        return None
    return (f"{source}: --scale {scale:g} makes its {width}x{height} frames {scaled_width}x{scaled_height} px, "
            f"smaller than the smallest face the detector finds ({MIN_DETECTOR_SIDE} px); use a larger --scale")


def _options_from_args(args, display):
    """VideoOptions from the parsed command line (display: whether a screen is usable)."""
    return VideoOptions(
        detect_every=args.detect_every, score_threshold=args.score_threshold,
        low_score_threshold=args.low_score_threshold, margin=args.margin, scale=args.scale,
        min_hits=args.min_hits, max_age=args.max_age, min_track_length=args.min_track_length,
        top_k=args.top_k, tracker=args.tracker, save_video=args.save_video, display=display,
        max_frames=args.max_frames, max_seconds=args.max_seconds, reconnects=args.reconnects,
        reconnect_delay=args.reconnect_delay, progress=not args.no_progress)


def _process_sources(sources, detector, output_path, options, window=None):
    """Processes every source in turn; unreadable ones are skipped and their reasons kept.

    Returns:
        (summaries of the processed sources, reasons of the skipped ones).

    Raises:
        UserError: the output folder cannot be written.
        KeyboardInterrupt: Ctrl-C (after the current source's outputs were written), with a
            one-line message, unless the source was the last one and live (then it just ends).
    """
    done, skipped = [], []
    for number, source in enumerate(sources, start=1):
        position = f"video {number} of {len(sources)}"
        LOGGER.info("%s: %s", position, source)
        try:
            summary = process_source(source, detector, output_path, options, position, window)
        except SourceSkipped as err:
            LOGGER.warning("%s; skipped", err)
            skipped.append(str(err))
            continue
        except SourceInterrupted as interrupted:
            summary = interrupted.summary
            if source.live and number == len(sources):
                done.append(summary)
                LOGGER.info("%s: ended by Ctrl-C after %d frames", source, summary["frames"])
                break
            left = len(sources) - number
            partial = "results" if source.live else 'partial results ("complete": false)'
            raise KeyboardInterrupt(
                f"interrupted: {source}: {partial} for {summary['frames']} frames in {summary['output_dir']}; "
                f"{len(done)} earlier source(s) complete, {left} not started") from None
        except OSError as err:  # the output folder cannot be written (permissions, disk full)
            raise UserError(f"{output_path}: cannot write the results: {err.strerror or err}"
                            f"{' (' + err.filename + ')' if getattr(err, 'filename', None) else ''}") from None
        done.append(summary)
        LOGGER.info("%s: %d frames, %d tracks, %d faces saved, %.1f FPS -> %s", source, summary["frames"],
                    summary["tracks"], summary["faces_saved"], summary["processing_fps"] or 0.0,
                    summary["output_dir"])
    return done, skipped


def _print_summary(done, num_sources, skipped, ignored, output_path):
    """One line: sources, frames, steady FPS (and with the warm-up), tracks and crops."""
    frames = sum(s["frames"] for s in done)
    seconds = sum(s["seconds"] for s in done)
    # Steady rate: each source's frames after its first (whose detector call includes warm-up).
    steady = [(s["frames"] - 1, (s["frames"] - 1) / s["processing_fps"]) for s in done if s["processing_fps"]]
    steady_fps = sum(n for n, _ in steady) / sum(t for _, t in steady) if steady else 0.0
    print(f"total: {len(done)} of {num_sources} videos processed ({skipped} skipped, {ignored} non-video "
          f"files ignored): {frames} frames at {steady_fps:.1f} FPS ({frames / seconds if seconds else 0:.1f} "
          f"with the warm-up), {sum(s['tracks'] for s in done)} tracks, "
          f"{sum(s['faces_saved'] for s in done)} face crops in {output_path}")


def _main(argv, detector_factory):
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if detector_factory is None:
        check_model_path(args.model)
    sources, ignored = _resolve_inputs(args)
    if detector_factory is None:
        detector_factory = functools.partial(load_face_detector, precision=args.precision,
                                             max_dimension=args.max_dimension or None, backend=args.backend)
    try:
        detector = detector_factory(args.model)
    except (OSError, ValueError, ImportError) as err:
        raise UserError(f"{err}" if args.model in str(err) else f"{args.model}: {err}") from None
    window = display.open_window(WINDOW_NAME) if args.display else None
    if args.display and window is None:
        LOGGER.warning("--display ignored: no screen (DISPLAY unset), or neither OpenCV's GUI nor Tk can open "
                       "a window here; --save_video writes an annotated video instead")
    elif window is not None:
        LOGGER.info("--display: showing frames in a %s window (q or closing it ends the source)", window.toolkit)
    try:
        done, skipped = _process_sources(sources, detector, args.output_path,
                                         _options_from_args(args, window is not None), window)
    finally:
        if window is not None:
            window.close()
    if not done:
        if len(sources) == 1:
            raise UserError(skipped[0])
        raise UserError(f"none of the {len(sources)} videos could be processed (the warnings above say why)")
    _print_summary(done, len(sources), len(skipped), ignored, args.output_path)
    return 0


def main(argv=None, detector_factory=None):
    """Runs the CLI.

    Args:
        argv: list of str arguments (default: sys.argv[1:]).
        detector_factory: callable(model_path) -> detector; default loads FaceDetector.

    Returns:
        int exit status: 0 if at least one source was processed; 2 after one ``error:`` line for
        a user error (see the module docstring); 130 after Ctrl-C.
    """
    return report_errors(lambda args: _main(args, detector_factory), argv)


if __name__ == "__main__":
    sys.exit(main())
