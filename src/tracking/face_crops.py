"""Best-face selection per track: quality score, margin crops, top-k keeping.

Box convention: pixel [x1, y1, x2, y2] (floats; x2, y2 exclusive when turned into array
slices). Images are numpy arrays [H, W, C] or [H, W] of any dtype (start.py passes BGR
uint8 frames); crops are copies, so frames can be reused by the caller.

Quality of a face = detector score x face size (sqrt of the box area, in pixels) x
sharpness (variance of the 4-neighbour Laplacian of the grey face box). Each factor is
zero for a useless face (no confidence, no pixels, flat or fully blurred), and the square
root keeps size from swamping the other two.
"""
import dataclasses
import heapq

import numpy as np

# BT.601 luma weights, for BGR channel order.
_BGR_TO_GREY = np.array([0.114, 0.587, 0.299])


def laplacian_variance(image):
    """Sharpness: variance of the 4-neighbour Laplacian over the image interior.

    Args:
        image: array [H, W] (grey) or [H, W, 3] (BGR), any numeric dtype.

    Returns:
        float >= 0; 0.0 for images smaller than 3x3.

    Raises:
        ValueError: if the image is not 2-D or 3-D with 3 channels.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        grey = image.astype(np.float64) @ _BGR_TO_GREY
    elif image.ndim == 2:
        grey = image.astype(np.float64)
    else:
        raise ValueError(f"image must have shape [H, W] or [H, W, 3], got {image.shape}")
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
           - 4.0 * grey[1:-1, 1:-1])
    return float(lap.var())


def expand_box(box, margin, frame_shape):
    """Grows a box by a margin and clamps it to the frame, as integer slice bounds.

    Args:
        box: float sequence [>=4], pixel x1, y1, x2, y2.
        margin: float >= 0; >= 1 means pixels added on every side, < 1 means that
            fraction of the box width (left and right) and height (top and bottom).
        frame_shape: (H, W, ...) of the frame.

    Returns:
        (x1, y1, x2, y2) ints with 0 <= x1 <= x2 <= W and 0 <= y1 <= y2 <= H; the box is
        empty (x1 == x2 or y1 == y2) when it lies outside the frame.

    Raises:
        ValueError: if margin is negative or not finite.
    """
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    if margin >= 1:
        mx = my = float(margin)
    else:
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
    height, width = frame_shape[0], frame_shape[1]
    left = int(np.clip(np.floor(x1 - mx), 0, width))
    top = int(np.clip(np.floor(y1 - my), 0, height))
    right = int(np.clip(np.ceil(x2 + mx), left, width))
    bottom = int(np.clip(np.ceil(y2 + my), top, height))
    return left, top, right, bottom


def face_quality(frame, box, score):
    """Quality of one detected face (see the module docstring).

    Args:
        frame: array [H, W, 3] (BGR) or [H, W].
        box: float sequence [>=4], pixel x1, y1, x2, y2 of the face (no margin).
        score: float, detector score.

    Returns:
        float >= 0.
    """
    x1, y1, x2, y2 = expand_box(box, 0.0, frame.shape)
    size = np.sqrt(max(x2 - x1, 0) * max(y2 - y1, 0))
    if size == 0:
        return 0.0
    return float(max(score, 0.0) * size * laplacian_variance(frame[y1:y2, x1:x2]))


@dataclasses.dataclass
class TrackFaces:
    """The faces kept for one track.

    Attributes:
        track_id: int.
        num_detections: int, detections offered for this track.
        faces: list of (quality float, frame_index int, crop array [h, w, C]), best first.
    """
    track_id: int
    num_detections: int
    faces: list


class BestFaceKeeper:
    """Keeps the k best face crops of every track until the track ends.

    Feed it with add() for every (track, detection) pair of a frame; call finish() with
    the ids of the tracks that ended and finish_all() at the end of the video. Both
    return only tracks with at least `min_track_length` detections.
    """

    def __init__(self, top_k, margin, min_track_length):
        """Args:
            top_k: int >= 1, crops kept per track.
            margin: float >= 0, crop margin (see expand_box).
            min_track_length: int >= 0, detections a track needs to be returned.

        Raises:
            ValueError: on an out-of-range argument.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if min_track_length < 0:
            raise ValueError(f"min_track_length must be >= 0, got {min_track_length}")
        expand_box((0, 0, 1, 1), margin, (1, 1))  # validates the margin
        self.top_k = int(top_k)
        self.margin = float(margin)
        self.min_track_length = int(min_track_length)
        self._heaps = {}   # track id -> min-heap of (quality, -frame_index, serial, crop)
        self._counts = {}  # track id -> detections seen
        self._serial = 0   # tie-breaker so crops are never compared

    def add(self, track_id, frame_index, frame, box, score):
        """Offers one detected face of a track.

        Args:
            track_id: int.
            frame_index: int, 0-based frame number (kept with the crop).
            frame: array [H, W, 3] (BGR) or [H, W], the full frame.
            box: float sequence [>=4], pixel x1, y1, x2, y2 of the detection.
            score: float, detector score.

        Returns:
            float, the face's quality.
        """
        track_id = int(track_id)
        self._counts[track_id] = self._counts.get(track_id, 0) + 1
        quality = face_quality(frame, box, score)
        heap = self._heaps.setdefault(track_id, [])
        key = (quality, -int(frame_index))
        if len(heap) >= self.top_k and key <= heap[0][:2]:
            return quality
        x1, y1, x2, y2 = expand_box(box, self.margin, frame.shape)
        if x2 <= x1 or y2 <= y1:
            return quality
        self._serial += 1
        entry = (quality, -int(frame_index), self._serial, frame[y1:y2, x1:x2].copy())
        if len(heap) >= self.top_k:
            heapq.heapreplace(heap, entry)
        else:
            heapq.heappush(heap, entry)
        return quality

    def _pop(self, track_id):
        heap = self._heaps.pop(track_id, [])
        count = self._counts.pop(track_id, 0)
        if count < self.min_track_length or not heap:
            return None
        faces = [(q, -neg_frame, crop) for q, neg_frame, _, crop in sorted(heap, reverse=True)]
        return TrackFaces(track_id, count, faces)

    def finish(self, track_ids):
        """Ends tracks and returns the ones long enough to save.

        Args:
            track_ids: iterable of int track ids (unknown ids are ignored).

        Returns:
            list of TrackFaces, in the given order.
        """
        done = (self._pop(int(t)) for t in track_ids)
        return [faces for faces in done if faces is not None]

    def finish_all(self):
        """Ends every open track; returns the ones long enough, by track id."""
        return self.finish(sorted(self._counts))
