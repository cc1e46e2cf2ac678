"""Synthetic face videos with known trajectories, simulated detections and MOT scoring.

Shared by the tests (tests/test_tracking.py, test_start.py, test_quickstart.py) and
bench/bench_tracking.py; py-motmetrics is imported only by `mot_metrics`.

Box convention: pixel [x1, y1, x2, y2] everywhere here (ground truth, detections, tracks),
except GroundTruthDetector, which answers like FaceDetector: pixel [ymin, xmin, ymax, xmax].
Frames are uint8 BGR [H, W, 3].

Scenarios (coordinates scale with the frame size; 640x480 is the design size):
    'crossing'  two faces moving towards each other and crossing with overlap;
    'occlusion' a face passing behind a pillar (fully hidden for a few frames);
    'leaving'   a face walking out of the right edge;
    'late'      one face from the start, another appearing at frame 40;
    'all'       all of the above in one frame (used for the start.py video).
Ground truth lists a face on a frame when at least half of its box is visible (inside the
frame and not behind an occluder), like MOT's visibility filter; the box is the full
(amodal) face box clipped to the frame.
"""
import dataclasses

import cv2
import numpy as np

from src import box_iou_numpy
from src.video_io import AtomicVideoWriter

SCENARIOS = ("crossing", "occlusion", "leaving", "late", "all")
MIN_VISIBILITY = 0.5
# MOT challenge convention: a track box matches a ground-truth box at IoU >= 0.5.
MATCH_IOU = 0.5


@dataclasses.dataclass(frozen=True)
class FacePath:
    """A face moving at constant velocity; box at frame t is its start box + v * (t - start)."""
    face_id: int
    start: int
    end: int  # exclusive
    x: float
    y: float
    vx: float
    vy: float
    width: float
    color: tuple

    def box(self, t):
        """Pixel [x1, y1, x2, y2] (unclipped) at frame t."""
        x1 = self.x + self.vx * (t - self.start)
        y1 = self.y + self.vy * (t - self.start)
        return np.array([x1, y1, x1 + self.width, y1 + 1.25 * self.width])


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    width: int
    height: int
    num_frames: int
    faces: tuple
    occluders: tuple  # of pixel (x1, y1, x2, y2), drawn over the faces
    seed: int = 0


def make_scenario(name, width=640, height=480, num_frames=None):
    """Builds a named scenario (see the module docstring) for a frame size."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {SCENARIOS}")
    sx, sy = width / 640.0, height / 480.0
    s = min(sx, sy)

    def face(fid, start, end, x, y, vx, vy, w, color):
        return FacePath(fid, start, end, x * sx, y * sy, vx * sx, vy * sy, w * s, color)

    faces, occluders = [], []
    n = num_frames or 80
    if name in ("crossing", "all"):
        faces.append(face(1, 0, n, 40, 60, 6.5, 0.3, 70, (120, 170, 230)))
        faces.append(face(2, 0, n, 530, 100, -6.5, -0.2, 70, (90, 140, 200)))
    if name in ("occlusion", "all"):
        faces.append(face(3, 0, n, 140, 300, 5.0, 0.0, 50, (140, 190, 240)))
        occluders.append((300 * sx, 250 * sy, 370 * sx, 480 * sy))
    if name in ("leaving", "all"):
        faces.append(face(4, 0, n, 470, 200 if name == "all" else 150, 4.0, 0.5, 60, (100, 160, 210)))
    if name in ("late", "all"):
        if name == "late":
            faces.append(face(5, 0, n, 80, 120, 1.0, 0.5, 80, (110, 150, 220)))
        faces.append(face(6, min(40, n - 1), n, 450 if name == "late" else 60, 330, -1.5, -0.5, 55,
                          (130, 180, 235)))
    return Scenario(name, width, height, n, tuple(faces), tuple(occluders))


def _visible_fraction(box, scenario):
    """Fraction of a box's area inside the frame and not under an occluder."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    clipped = np.clip(box, [0, 0, 0, 0], [scenario.width, scenario.height] * 2)
    inside = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0)
    hidden = 0.0
    for ox1, oy1, ox2, oy2 in scenario.occluders:
        hidden += (max(min(clipped[2], ox2) - max(clipped[0], ox1), 0)
                   * max(min(clipped[3], oy2) - max(clipped[1], oy1), 0))
    return (inside - hidden) / area, clipped


def ground_truth(scenario):
    """Per-frame ground truth.

    Returns:
        list (one per frame) of float64 arrays [K, 5]: face id, x1, y1, x2, y2 (clipped).
    """
    frames = []
    for t in range(scenario.num_frames):
        rows = []
        for f in scenario.faces:
            if f.start <= t < f.end:
                visible, clipped = _visible_fraction(f.box(t), scenario)
                if visible >= MIN_VISIBILITY:
                    rows.append([f.face_id, *clipped])
        frames.append(np.array(rows, dtype=np.float64).reshape(-1, 5))
    return frames


def _background(scenario):
    rng = np.random.default_rng(scenario.seed)
    yy, xx = np.mgrid[0:scenario.height, 0:scenario.width]
    base = 60 + 40 * np.sin(xx / 55.0) + 30 * np.cos(yy / 37.0)
    image = np.stack([base, base * 0.9 + 20, base * 0.7 + 30], axis=2)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _draw_face(image, box, color):
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = x2 - x1, y2 - y1
    cv2.ellipse(image, (int(cx), int(cy)), (int(w / 2), int(h / 2)), 0, 0, 360, color, -1)
    eye = max(int(w / 10), 1)
    for ex in (cx - w / 5, cx + w / 5):
        cv2.circle(image, (int(ex), int(cy - h / 8)), eye, (40, 30, 20), -1)
    cv2.ellipse(image, (int(cx), int(cy + h / 5)), (max(int(w / 5), 1), max(int(h / 14), 1)),
                0, 0, 180, (40, 40, 140), max(int(w / 25), 1))
    cv2.rectangle(image, (int(x1 + w * 0.15), int(y1)), (int(x2 - w * 0.15), int(y1 + h * 0.12)),
                  (30, 40, 60), -1)


def render_frames(scenario):
    """Yields the scenario's frames, uint8 BGR [H, W, 3], in order."""
    background = _background(scenario)
    for t in range(scenario.num_frames):
        image = background.copy()
        for f in scenario.faces:
            if f.start <= t < f.end:
                _draw_face(image, f.box(t), f.color)
        for ox1, oy1, ox2, oy2 in scenario.occluders:
            cv2.rectangle(image, (int(ox1), int(oy1)), (int(ox2), int(oy2)), (70, 70, 75), -1)
        yield image


def write_video(scenario, path, fps=25.0):
    """Writes the scenario as a video (fourcc 'mp4v', atomically); returns its ground truth."""
    writer = AtomicVideoWriter(path, fps, scenario.width, scenario.height, fourcc="mp4v")
    try:
        for frame in render_frames(scenario):
            writer.write(frame)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return ground_truth(scenario)


def simulate_detections(gt_frames, seed, width=640, height=480, jitter=0.0, miss_rate=0.0,
                        low_score_rate=0.0, false_positives=0.0):
    """Detector output simulated from ground truth (seeded).

    Args:
        gt_frames: list of [K, 5] arrays (id, x1, y1, x2, y2).
        seed: int, random seed.
        width, height: frame size, for false positives.
        jitter: std of each corner's noise, as a fraction of the box size.
        miss_rate: probability a face is not detected on a frame.
        low_score_rate: probability a detected face gets a low score in [0.2, 0.45].
        false_positives: mean number of false boxes per frame (score 0.5..0.9).

    Returns:
        list of float64 arrays [N, 5]: x1, y1, x2, y2, score.
    """
    rng = np.random.default_rng(seed)
    out = []
    for gt in gt_frames:
        rows = []
        for _, x1, y1, x2, y2 in gt:
            miss, dip, u = rng.random(), rng.random(), rng.random()
            noise = rng.normal(0.0, jitter, 4) * np.array([x2 - x1, y2 - y1] * 2)
            if miss < miss_rate:
                continue
            score = rng.uniform(0.2, 0.45) if dip < low_score_rate else 0.9 + 0.1 * u
            rows.append([x1 + noise[0], y1 + noise[1], x2 + noise[2], y2 + noise[3], score])
        for _ in range(rng.poisson(false_positives)):
            size = rng.uniform(30, 80)
            x, y = rng.uniform(0, width - size), rng.uniform(0, height - size)
            rows.append([x, y, x + size, y + size, rng.uniform(0.5, 0.9)])
        out.append(np.array(rows, dtype=np.float64).reshape(-1, 5))
    return out


def run_tracker(tracker, det_frames, score_threshold=0.5):
    """Feeds detections to a FaceTracker frame by frame.

    In 'sort' mode detections under score_threshold are dropped first (what start.py
    gets by calling the detector with that threshold); 'byte' gets them all.

    Returns:
        list of [M, 5] track arrays (x1, y1, x2, y2, id), one per frame.
    """
    tracks = []
    for dets in det_frames:
        if tracker.mode == "sort":
            dets = dets[dets[:, 4] >= score_threshold]
        tracks.append(tracker.update(dets))
    return tracks


def iou_distance(gt_boxes, hyp_boxes, max_distance=1.0 - MATCH_IOU):
    """1 - IoU between two [N, 4] / [M, 4] pixel box arrays, NaN where above max_distance.

    (motmetrics.distances.iou_matrix calls np.asfarray, gone in NumPy 2.)
    """
    dist = 1.0 - box_iou_numpy.pairwise_iou(gt_boxes, hyp_boxes, "xyxy")
    dist[dist > max_distance] = np.nan
    return dist


def mot_metrics(gt_frames, track_frames):
    """MOTA, IDF1, ID switches etc. with py-motmetrics.

    Args:
        gt_frames: list of [K, 5] arrays (id, x1, y1, x2, y2).
        track_frames: list of [M, 5] arrays (x1, y1, x2, y2, id).

    Returns:
        dict with float 'mota', 'idf1' and int 'num_switches', 'num_misses',
        'num_false_positives', 'num_fragmentations'.
    """
    import motmetrics  # only here: the rest of the module needs no pandas

    acc = motmetrics.MOTAccumulator(auto_id=True)
    for gt, hyp in zip(gt_frames, track_frames):
        acc.update(gt[:, 0].astype(int).tolist(), hyp[:, 4].astype(int).tolist(),
                   iou_distance(gt[:, 1:5], hyp[:, :4]))
    names = ["mota", "idf1", "num_switches", "num_misses", "num_false_positives",
             "num_fragmentations"]
    summary = motmetrics.metrics.create().compute(acc, metrics=names, name="run")
    row = summary.loc["run"]
    return {k: (float(row[k]) if k in ("mota", "idf1") else int(row[k])) for k in names}


class GroundTruthDetector:
    """Test double with FaceDetector's API that replays simulated detections.

    It assumes it is called on frames 0, detect_every, 2 * detect_every, ... in order.
    With frame_width set, boxes are scaled to the width of the image it is given (for
    start.py --scale); otherwise they are returned in video pixels.
    """

    def __init__(self, det_frames, detect_every=1, frame_width=None):
        self.det_frames = det_frames
        self.detect_every = detect_every
        self.frame_width = frame_width
        self.calls = 0
        self.thresholds = []
        self.shapes = []

    def __call__(self, image, score_threshold=0.5):
        """Returns (boxes float32 [N, 4] pixel ymin, xmin, ymax, xmax, scores float32 [N])."""
        self.shapes.append(image.shape)
        self.thresholds.append(score_threshold)
        t = self.calls * self.detect_every
        self.calls += 1
        dets = self.det_frames[t] if t < len(self.det_frames) else np.zeros((0, 5))
        dets = dets[dets[:, 4] >= score_threshold]
        factor = image.shape[1] / self.frame_width if self.frame_width else 1.0
        boxes = (dets[:, [1, 0, 3, 2]] * factor).astype(np.float32)
        return boxes, dets[:, 4].astype(np.float32)
