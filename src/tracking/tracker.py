"""Multi-face tracker: plain SORT, or SORT plus ByteTrack-style low-score association.

Box convention: pixel [x1, y1, x2, y2]. Detections are [N, 5] (x1, y1, x2, y2, score) with
x2 > x1 and y2 > y1 (an empty or inverted box, or a non-finite value, is a ValueError naming
the row); tracks are returned as [M, 5] (x1, y1, x2, y2, track_id), track ids starting at 1.

Modes:
    'sort': the reference algorithm of Bewley et al. (2016). Each update predicts every
        track one frame, matches all detections to the predictions by IoU (Hungarian,
        gate `iou_threshold`), corrects matched tracks, starts a track for every
        unmatched detection, returns the tracks matched this frame whose hit streak
        reached `min_hits` (or every matched track during the first `min_hits` frames),
        and drops tracks unmatched for more than `max_age` updates. Scores are ignored:
        threshold the detections before calling update.
    'byte': the same motion model and matcher with four changes that keep identities
        through score dips and short occlusions: (1) detections with score >=
        `score_threshold` are matched first; detections between `low_score_threshold` and
        `score_threshold` are then matched to the remaining tracks (gate
        `second_iou_threshold`) and can only extend tracks, never start one (ByteTrack,
        Zhang et al. 2022); (2) a track is confirmed once, so after a missed frame it is
        reported again as soon as it is matched instead of waiting for a new hit streak;
        (3) confirmed tracks are kept for `max_age` (default 30) updates on their Kalman
        prediction, while a track that was never confirmed dies at its first miss; (4) a
        third pass matches the high-score detections still unmatched to the confirmed
        tracks lost for a frame or more with a buffered IoU (both boxes grown by
        `LOST_BUFFER_PER_UPDATE` of their size per missed update, at most
        `LOST_BUFFER_MAX`; C-BIoU, Yang et al. 2023), because after an occlusion the
        predicted box has drifted: partly hidden faces give shrunken, shifted boxes just
        before they vanish, which bends the track's velocity.

`predict_only()` advances the motion model one frame without detections (for frames on
which the detector is not run) and returns the predicted boxes of the tracks shown by
the last update; it does not count as a miss.
"""
import numpy as np

from src.tracking import kalman
from src.tracking.association import associate, buffered_iou_matrix

MODES = ("sort", "byte")

# Reference SORT defaults (Bewley et al. 2016, sort.py command-line defaults).
SORT_MAX_AGE = 1
SORT_MIN_HITS = 3
SORT_IOU_THRESHOLD = 0.3
# ByteTrack keeps lost tracks for 30 frames (its track_buffer default at 30 fps).
BYTE_MAX_AGE = 30
# ByteTrack's high/low detection split and its second-pass matching gate (IoU >= 0.5).
BYTE_SCORE_THRESHOLD = 0.5
BYTE_LOW_SCORE_THRESHOLD = 0.1
BYTE_SECOND_IOU_THRESHOLD = 0.5
# Buffered-IoU growth for lost tracks: 4% of the box size per side per missed update, up
# to 60% (measured on media/sample.mp4: an 18-frame occlusion during a crossing needs ~0.5).
LOST_BUFFER_PER_UPDATE = 0.04
LOST_BUFFER_MAX = 0.6


def empty_tracks():
    """Returns the empty track array: float64 [0, 5]."""
    return np.empty((0, 5), dtype=np.float64)


def _as_detections(dets):
    """Validates detections; returns float64 [N, 5] (x1, y1, x2, y2, score).

    Raises:
        ValueError: naming the first bad row: a non-finite value, or a box without positive
            width and height (x2 <= x1 or y2 <= y1).
    """
    if dets is None:
        return np.empty((0, 5), dtype=np.float64)
    dets = np.asarray(dets, dtype=np.float64)
    if dets.size == 0:
        return np.empty((0, 5), dtype=np.float64)
    if dets.ndim != 2 or dets.shape[1] < 5:
        raise ValueError(f"detections must have shape [N, 5] (x1, y1, x2, y2, score), got {dets.shape}")
    dets = dets[:, :5]
    bad = ~np.isfinite(dets).all(axis=1)
    if bad.any():
        raise ValueError(f"detection row {int(np.argmax(bad))} is not finite: {dets[bad][0].tolist()}")
    # An empty or inverted box has no aspect ratio: its Kalman state would be NaN or a
    # negative height. Drop such rows before calling (start.py does).
    bad = ~((dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1]))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"detection row {row} is not a box with x2 > x1 and y2 > y1 "
                         f"(x1, y1, x2, y2, score): {dets[row].tolist()}")
    return dets


class FaceTracker:
    """SORT / ByteTrack-style tracker over pixel boxes; see the module docstring.

    Attributes (read-only for callers, refreshed by every update / predict_only call):
        frame_count: int, number of update() calls since construction or reset().
        removed_ids: int64 array [R], ids of the tracks deleted by the last call.
        matches: int64 array [K, 2], (track_id, detection row) pairs matched by the last
            update(), detection rows index the array passed to it. Includes tracks that
            are not confirmed yet, and the tracks born from a detection.
    """

    def __init__(self, mode="sort", max_age=None, min_hits=SORT_MIN_HITS,
                 iou_threshold=SORT_IOU_THRESHOLD, score_threshold=BYTE_SCORE_THRESHOLD,
                 low_score_threshold=BYTE_LOW_SCORE_THRESHOLD,
                 second_iou_threshold=BYTE_SECOND_IOU_THRESHOLD):
        """Creates an empty tracker.

        Args:
            mode: 'sort' or 'byte' (see the module docstring).
            max_age: int >= 0, updates a track survives without a match; None takes the
                mode's default (1 for 'sort', 30 for 'byte').
            min_hits: int >= 0, consecutive matches before a track is reported.
            iou_threshold: float in [0, 1], IoU gate of the (first) association.
            score_threshold: 'byte' only, detections at or above it are high-score.
            low_score_threshold: 'byte' only, detections below it are ignored.
            second_iou_threshold: 'byte' only, IoU gate of the low-score association.

        Raises:
            ValueError: on an unknown mode or an out-of-range parameter.
        """
        if mode not in MODES:
            raise ValueError(f"tracker mode must be one of {MODES}, got {mode!r}")
        if max_age is None:
            max_age = SORT_MAX_AGE if mode == "sort" else BYTE_MAX_AGE
        if int(max_age) < 0 or int(min_hits) < 0:
            raise ValueError(f"max_age and min_hits must be >= 0, got {max_age} and {min_hits}")
        for name, value in (("iou_threshold", iou_threshold),
                            ("second_iou_threshold", second_iou_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if low_score_threshold > score_threshold:
            raise ValueError(f"low_score_threshold {low_score_threshold} is above "
                             f"score_threshold {score_threshold}")
        self.mode = mode
        self.max_age = int(max_age)
        self.min_hits = int(min_hits)
        self.iou_threshold = float(iou_threshold)
        self.score_threshold = float(score_threshold)
        self.low_score_threshold = float(low_score_threshold)
        self.second_iou_threshold = float(second_iou_threshold)
        self.reset()

    def reset(self):
        """Forgets every track and restarts frame counting and track ids at 1."""
        self._next_id = 1
        self.frame_count = 0
        self._x = np.zeros((0, kalman.STATE_DIM))
        self._P = np.zeros((0, kalman.STATE_DIM, kalman.STATE_DIM))
        self._ids = np.zeros(0, dtype=np.int64)
        self._hits = np.zeros(0, dtype=np.int64)
        self._hit_streak = np.zeros(0, dtype=np.int64)
        self._since_update = np.zeros(0, dtype=np.int64)
        self._confirmed = np.zeros(0, dtype=bool)
        self._shown = np.zeros(0, dtype=bool)
        self.removed_ids = np.zeros(0, dtype=np.int64)
        self.matches = np.zeros((0, 2), dtype=np.int64)

    @property
    def num_tracks(self):
        """int, live tracks including unconfirmed and lost ones."""
        return len(self._ids)

    def _keep(self, mask):
        """Deletes the tracks where mask is False, recording their ids."""
        self.removed_ids = np.concatenate([self.removed_ids, self._ids[~mask]])
        self._x, self._P = self._x[mask], self._P[mask]
        self._ids, self._hits = self._ids[mask], self._hits[mask]
        self._hit_streak, self._since_update = self._hit_streak[mask], self._since_update[mask]
        self._confirmed, self._shown = self._confirmed[mask], self._shown[mask]

    def _predict(self):
        """Predicts all tracks one frame; drops NaN ones. Returns boxes [T, 4]."""
        self._x, self._P = kalman.predict(self._x, self._P)
        boxes = kalman.states_to_boxes(self._x)
        finite = np.isfinite(boxes).all(axis=1)
        if not finite.all():
            self._keep(finite)
            boxes = boxes[finite]
        return boxes

    def _birth(self, dets):
        """Starts one track per detection row ([B, 5]); returns their ids [B]."""
        count = len(dets)
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        if count == 0:
            return ids
        self._next_id += count
        x, P = kalman.initial_state(dets)
        zeros = np.zeros(count, dtype=np.int64)
        self._x = np.concatenate([self._x, x])
        self._P = np.concatenate([self._P, P])
        self._ids = np.concatenate([self._ids, ids])
        self._hits = np.concatenate([self._hits, zeros])
        self._hit_streak = np.concatenate([self._hit_streak, zeros])
        self._since_update = np.concatenate([self._since_update, zeros])
        self._confirmed = np.concatenate([self._confirmed, np.zeros(count, dtype=bool)])
        self._shown = np.concatenate([self._shown, np.zeros(count, dtype=bool)])
        return ids

    def _match(self, dets, boxes):
        """Returns (track rows [K], detection rows [K], detection rows that may start tracks)."""
        if self.mode == "sort":
            pairs, unmatched_dets, _ = associate(dets, boxes, self.iou_threshold)
            return pairs[:, 1], pairs[:, 0], unmatched_dets
        scores = dets[:, 4]
        high = np.flatnonzero(scores >= self.score_threshold)
        low = np.flatnonzero((scores < self.score_threshold) & (scores >= self.low_score_threshold))
        first, unmatched_high, left_tracks = associate(dets[high], boxes, self.iou_threshold)
        second, _, still_left = associate(dets[low], boxes[left_tracks], self.second_iou_threshold)
        still_left = left_tracks[still_left]
        # since_update was already incremented for this frame: > 1 means missed before.
        lost = still_left[self._confirmed[still_left] & (self._since_update[still_left] > 1)]
        free_high = high[unmatched_high]
        buffers = np.minimum(LOST_BUFFER_PER_UPDATE * (self._since_update[lost] - 1), LOST_BUFFER_MAX)
        third, unmatched_free, _ = associate(
            dets[free_high], boxes[lost], self.iou_threshold,
            iou=buffered_iou_matrix(dets[free_high], boxes[lost], buffers))
        track_rows = np.concatenate([first[:, 1], left_tracks[second[:, 1]], lost[third[:, 1]]])
        det_rows = np.concatenate([high[first[:, 0]], low[second[:, 0]], free_high[third[:, 0]]])
        return track_rows, det_rows, free_high[unmatched_free]

    def update(self, dets=None):
        """Processes one frame's detections; call once per frame, also with none.

        Args:
            dets: float array [N, 5] (x1, y1, x2, y2, score) in pixels, or None / an empty
                array for a frame without detections.

        Returns:
            float64 array [M, 5] (x1, y1, x2, y2, track_id) of the tracks reported this
            frame, in track-creation order; shape (0, 5) when there are none.

        Raises:
            ValueError: if dets has the wrong shape, a non-finite value, or a box with
                x2 <= x1 or y2 <= y1 (the message names the row).
        """
        dets = _as_detections(dets)
        self.removed_ids = np.zeros(0, dtype=np.int64)
        self.frame_count += 1

        self._hit_streak[self._since_update > 0] = 0
        self._since_update += 1
        boxes = self._predict()

        track_rows, det_rows, birth_rows = self._match(dets, boxes)
        if len(track_rows):
            self._x[track_rows], self._P[track_rows] = kalman.correct(
                self._x[track_rows], self._P[track_rows], dets[det_rows])
            self._since_update[track_rows] = 0
            self._hits[track_rows] += 1
            self._hit_streak[track_rows] += 1
        matched_ids = self._ids[track_rows]
        born_ids = self._birth(dets[birth_rows])
        self.matches = np.stack([np.concatenate([matched_ids, born_ids]),
                                 np.concatenate([det_rows, birth_rows])], axis=1).astype(np.int64)
        self._confirmed |= self._hit_streak >= self.min_hits

        streak_ok = self._confirmed if self.mode == "byte" else self._hit_streak >= self.min_hits
        self._shown = (self._since_update < 1) & (streak_ok | (self.frame_count <= self.min_hits))
        out = np.concatenate([kalman.states_to_boxes(self._x[self._shown]),
                              self._ids[self._shown, None].astype(np.float64)], axis=1)

        alive = self._since_update <= self.max_age
        if self.mode == "byte":
            alive &= self._confirmed | (self._since_update == 0)
        if not alive.all():
            self._keep(alive)
        return out if len(out) else empty_tracks()

    def predict_only(self):
        """Advances every track one frame without detections (detector not run).

        Track ages, hit streaks and miss counts are unchanged, so skipped frames never
        kill a track; the motion model still moves once per frame.

        Returns:
            float64 array [M, 5] (x1, y1, x2, y2, track_id): the predicted boxes of the
            tracks reported by the last update(); shape (0, 5) when there are none.
        """
        self.removed_ids = np.zeros(0, dtype=np.int64)
        self.matches = np.zeros((0, 2), dtype=np.int64)
        if not self.num_tracks:
            return empty_tracks()
        boxes = self._predict()
        out = np.concatenate([boxes[self._shown], self._ids[self._shown, None].astype(np.float64)], axis=1)
        return out if len(out) else empty_tracks()
