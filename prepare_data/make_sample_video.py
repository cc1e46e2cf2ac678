"""Renders the quickstart's sample video of real faces moving over a panning scene, with exact truth.

Box convention: pixels ``[x1, y1, x2, y2]`` (x2/y2 are the right/bottom EDGES, so a box's
width is ``x2 - x1``), the tracker's convention. Frames are uint8 RGB ``[H, W, 3]`` here and
are converted to BGR only when written to the mp4.

The scene is built so a face tracker meets the usual hard cases, and it differs from the
still training composites of ``make_sample_dataset.py`` (which use ``faces.random_background``
over ``faces.BACKGROUND_PHOTO_NAMES``):

* background: a procedural room (`draw_room`: window, door, framed picture, carpet;
  none of ``random_background``'s kinds) or, with ``--background motorcycle``,
  ``skimage.data.stereo_motorcycle()``'s left photo (a cluttered workshop, never a training
  background), slowly panning and zooming in (up to ``MAX_ZOOM``);
* face 1 (astronaut) starts near the left edge and walks out through the right edge,
  growing slowly;
* face 2 (grace_hopper) starts near the right edge and walks out through the left edge,
  shrinking slowly, BEHIND face 1: the two cross about a third into the video, and face 2 is hidden
  by face 1 for about 0.7 s (it moves to the ignored list, then comes back);
* face 3 (camera) enters from the right a third of the way in, slows down and
  stays, growing as if walking towards the camera;
* face heights stay in 70-160 px at 640x480 (they scale with the frame height); the whole
  frame's brightness drifts by a few percent.

Faces are blended with ``faces.paste_face`` (soft elliptical mask), so every face box is
exactly known. The ``--seed`` jitters positions, sizes, bobbing phases, colour gains, mirror
flips, the entry time of face 3 and the pan direction; the events above hold for any seed.

Ground truth (``sample_truth.json``, also returned by `sample_video`)::

    {"video": "sample.mp4", "width": W, "height": H, "fps": 25.0, "num_frames": N,
     "seed": 0, "background": "room", "num_faces": 3, "min_visibility": 0.5, "box_convention": "...",
     "faces": [{"id": 1, "source": "astronaut", "first_frame": f, "last_frame": l,
                "frames_listed": k}, ...],
     "frames": [[{"id": 1, "box": [x1, y1, x2, y2], "visibility": 0.97}, ...], ...],
     "ignored": [[{"id": 2, "box": [...], "visibility": 0.31}, ...], ...]}

``frames[t]`` is frame t counting from 0 (start.py's MOT files count from 1). A face is
listed on a frame when at least ``MIN_VISIBILITY`` of its box area is visible, that is inside
the frame and not hidden behind a face in front of it (MOT's visibility filter, as in
src/tracking/synthetic.py); its box is the full (amodal) face box clipped to the frame.
A face with a visibility in [``MIN_IGNORED_VISIBILITY``, ``MIN_VISIBILITY``) (entering, leaving,
or behind another face) is put on ``ignored[t]`` instead: an evaluator should neither count a
detection that matches it as a false positive nor count it as missed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from prepare_data import faces as face_lib  # noqa: E402
from src.cli import USER_ERRORS, add_debug_flag, report_errors  # noqa: E402
from src.atomic_io import write_text_atomic  # noqa: E402
from src.video_io import AtomicVideoWriter  # noqa: E402

logger = logging.getLogger("make_sample_video")

VIDEO_NAME = "sample.mp4"
TRUTH_NAME = "sample_truth.json"
FOURCC = "mp4v"
DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 25.0
DEFAULT_SECONDS = 7.0
# 'room': a procedural room (the default, a scene the demo detector has not seen);
# 'motorcycle': skimage's stereo_motorcycle photo, a cluttered workshop (harder: more false positives).
BACKGROUNDS = ("room", "motorcycle")
# Size (width, height) of the drawn room before panning, and the random stream its details use.
ROOM_SIZE = (1000, 680)
ROOM_STREAM = 1
# A face is listed in the truth when at least this fraction of its box is visible (MOT convention).
MIN_VISIBILITY = 0.5
# A face showing less than MIN_VISIBILITY but at least this much is put on the frame's "ignored"
# list: a detector may or may not find a half-hidden face, so neither counts for or against it.
MIN_IGNORED_VISIBILITY = 0.05
# The background's view zooms in from 1 to this factor over the video.
MAX_ZOOM = 1.15
# The view at zoom 1 is this much smaller than the photo, leaving room to pan.
PAN_MARGIN = 1.12
# The whole frame's brightness moves between these gains (a cloud passing, auto exposure).
BRIGHTNESS_RANGE = (0.9, 1.08)
# How far (fraction of the frame size) the seed moves the designed positions and sizes.
POSITION_JITTER = 0.02
HEIGHT_JITTER = 0.01


@dataclasses.dataclass(frozen=True)
class FaceMotion:
    """One face's path. Positions are fractions of the frame width/height, times fractions of the video.

    At video time u in [0, 1] (frame t of N is u = t / (N - 1)) the face is present when
    ``start <= u <= end``; with p = (u - start) / (end - start) and e = p (``ease_out`` False)
    or 1 - (1 - p)^2 (``ease_out`` True, a smooth stop), its face box has centre
    x = x0 + (x1 - x0) e, y = y0 + (y1 - y0) e + bob_amplitude sin(2 pi bob_cycles p + bob_phase)
    and height h0 + (h1 - h0) p (fractions of the frame height); its width follows the source's
    face box aspect ratio.

    Attributes:
        face_id: the id in the ground truth (1, 2, 3).
        source_index: index into `faces.FACE_SOURCE_DEFINITIONS`.
        depth: paste order; a larger depth is in front.
        flip: mirror the face.
        gains: (R, G, B) colour gains of the face.
    """

    face_id: int
    source_index: int
    depth: int
    start: float
    end: float
    x0: float
    x1: float
    y0: float
    y1: float
    h0: float
    h1: float
    bob_amplitude: float
    bob_cycles: float
    bob_phase: float
    ease_out: bool
    flip: bool
    gains: tuple


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything that defines the video; `render_frame` and `ground_truth` read only this.

    Attributes:
        width, height: frame size in pixels.
        num_frames: frame count N (>= 2).
        fps: frames per second.
        seed: the seed the scene was drawn with.
        faces: tuple of `FaceMotion`.
        pan_start, pan_end: (x, y) centre of the background view at the first/last frame, as
            fractions of the background photo's width/height (clamped so the view stays inside).
        brightness_phase: phase (radians) of the brightness drift.
        background: one of `BACKGROUNDS`.
    """

    width: int
    height: int
    num_frames: int
    fps: float
    seed: int
    faces: tuple
    pan_start: tuple
    pan_end: tuple
    brightness_phase: float
    background: str = "room"


def make_scene(seed: int = 0, num_frames: int = int(DEFAULT_SECONDS * DEFAULT_FPS),
               size: tuple[int, int] = DEFAULT_SIZE, fps: float = DEFAULT_FPS,
               background: str = "room") -> Scene:
    """Draws the scene described in the module docstring.

    Args:
        seed: the only source of randomness.
        num_frames: N >= 2.
        size: (width, height) in pixels, each >= 64.
        fps: frames per second (> 0).
        background: one of `BACKGROUNDS`.

    Returns:
        a `Scene`.

    Raises:
        ValueError: on a bad size, frame count, fps or background.
    """
    width, height = (int(v) for v in size)
    if width < 64 or height < 64:
        raise ValueError(f"frame size {width}x{height}: both sides must be at least 64 pixels")
    if int(num_frames) < 2:
        raise ValueError(f"num_frames {num_frames}: the video needs at least 2 frames")
    if not fps > 0:
        raise ValueError(f"fps {fps}: must be positive")
    if background not in BACKGROUNDS:
        raise ValueError(f"background {background!r}: choose one of {', '.join(BACKGROUNDS)}")
    rng = np.random.default_rng(seed)

    def jitter(value, amount=POSITION_JITTER):
        return float(value + rng.uniform(-amount, amount))

    def gains():
        return tuple(float(g) for g in rng.uniform(0.9, 1.1) * rng.uniform(0.94, 1.06, size=3))

    aspect = width / height
    ratios = [(d.box[2] - d.box[0]) / (d.box[3] - d.box[1]) for d in face_lib.FACE_SOURCE_DEFINITIONS]

    def off_frame_x(side, height_fraction, source_index):
        """Centre x (fraction of the width) where the face box is just fully outside the frame."""
        half_width = 0.5 * height_fraction * ratios[source_index] / aspect
        return 1.0 + half_width + 0.01 if side > 0 else -half_width - 0.01

    astronaut, camera, grace_hopper = 0, 1, 2
    h1_end = jitter(0.32, HEIGHT_JITTER)
    h2_end = jitter(0.19, HEIGHT_JITTER)
    h3_start = jitter(0.16, HEIGHT_JITTER)
    faces = (
        FaceMotion(1, astronaut, depth=2, start=0.0, end=0.78,
                   x0=jitter(0.14), x1=off_frame_x(+1, h1_end, astronaut),
                   y0=jitter(0.36, 0.01), y1=jitter(0.33, 0.01), h0=jitter(0.26, HEIGHT_JITTER), h1=h1_end,
                   bob_amplitude=0.02, bob_cycles=1.5, bob_phase=float(rng.uniform(0, 2 * np.pi)),
                   ease_out=False, flip=bool(rng.random() < 0.5), gains=gains()),
        FaceMotion(2, grace_hopper, depth=1, start=0.0, end=0.92,
                   x0=jitter(0.84), x1=off_frame_x(-1, h2_end, grace_hopper),
                   y0=jitter(0.50, 0.01), y1=jitter(0.48, 0.01), h0=jitter(0.24, HEIGHT_JITTER), h1=h2_end,
                   bob_amplitude=0.015, bob_cycles=2.0, bob_phase=float(rng.uniform(0, 2 * np.pi)),
                   ease_out=False, flip=bool(rng.random() < 0.5), gains=gains()),
        FaceMotion(3, camera, depth=3, start=float(rng.uniform(0.34, 0.42)), end=1.0,
                   x0=off_frame_x(+1, h3_start, camera), x1=jitter(0.66),
                   y0=jitter(0.74), y1=jitter(0.70), h0=h3_start, h1=jitter(0.27, HEIGHT_JITTER),
                   bob_amplitude=0.01, bob_cycles=1.0, bob_phase=float(rng.uniform(0, 2 * np.pi)),
                   # Unmirrored, the face looks left: the way it walks in.
                   ease_out=True, flip=False, gains=gains()),
    )
    direction = 1.0 if rng.random() < 0.5 else -1.0
    pan_start = (0.5 - direction * 0.08, jitter(0.52))
    pan_end = (0.5 + direction * 0.08, jitter(0.47))
    return Scene(width, height, int(num_frames), float(fps), int(seed), faces, pan_start, pan_end,
                 float(rng.uniform(0, 2 * np.pi)), background)


def _times(scene: Scene) -> np.ndarray:
    """float64 [N], video time u of each frame in [0, 1]."""
    return np.arange(scene.num_frames, dtype=np.float64) / (scene.num_frames - 1)


def face_boxes(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """The full (amodal, unclipped) face boxes of every face on every frame.

    Args:
        scene: a `Scene`.

    Returns:
        boxes: float64 [N, F, 4], pixels x1, y1, x2, y2 (F = len(scene.faces), in scene order);
            rows where the face is absent hold its box at the nearest time it is present.
        present: bool [N, F], whether the face is in the scene at that frame (it may still be
            outside the frame or hidden).
    """
    u = _times(scene)
    boxes = np.zeros((scene.num_frames, len(scene.faces), 4), dtype=np.float64)
    present = np.zeros((scene.num_frames, len(scene.faces)), dtype=bool)
    for k, face in enumerate(scene.faces):
        source = face_lib.FACE_SOURCE_DEFINITIONS[face.source_index].box
        ratio = (source[2] - source[0]) / (source[3] - source[1])
        p = np.clip((u - face.start) / (face.end - face.start), 0.0, 1.0)
        e = 1.0 - (1.0 - p) ** 2 if face.ease_out else p
        cx = (face.x0 + (face.x1 - face.x0) * e) * scene.width
        cy = (face.y0 + (face.y1 - face.y0) * e
              + face.bob_amplitude * np.sin(2 * np.pi * face.bob_cycles * p + face.bob_phase)) * scene.height
        h = (face.h0 + (face.h1 - face.h0) * p) * scene.height
        w = h * ratio
        boxes[:, k] = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        present[:, k] = (u >= face.start) & (u <= face.end)
    return boxes, present


def _paste_order(scene: Scene) -> list[int]:
    """Face indices from the back to the front."""
    return sorted(range(len(scene.faces)), key=lambda k: scene.faces[k].depth)


def visibilities(scene: Scene, boxes: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Visible fraction of each face box: inside the frame and not covered by the faces in front.

    Cover is measured with the same soft mask `faces.paste_face` blends with (a pixel behind a
    mask of opacity a counts as 1 - a visible), on pixel centres.

    Args:
        scene: a `Scene`.
        boxes: float64 [N, F, 4] from `face_boxes`, pixels x1, y1, x2, y2.
        present: bool [N, F] from `face_boxes`.

    Returns:
        float64 [N, F] in [0, 1]; 0 where the face is absent.
    """
    order = _paste_order(scene)
    result = np.zeros(present.shape, dtype=np.float64)
    for t in range(scene.num_frames):
        for rank, k in enumerate(order):
            if not present[t, k]:
                continue
            x1, y1, x2, y2 = boxes[t, k]
            # Pixels whose centres lie inside the box and the frame.
            left, top = max(0, int(np.ceil(x1 - 0.5))), max(0, int(np.ceil(y1 - 0.5)))
            right = min(scene.width, int(np.floor(x2 - 0.5)) + 1)
            bottom = min(scene.height, int(np.floor(y2 - 0.5)) + 1)
            if right <= left or bottom <= top:
                continue
            seen = np.ones((bottom - top, right - left), dtype=np.float64)
            for j in order[rank + 1:]:
                if present[t, j]:
                    shifted = boxes[t, j] - np.array([left, top, left, top], dtype=np.float64)
                    seen *= 1.0 - face_lib.face_alpha(seen.shape, shifted)
            result[t, k] = min(1.0, seen.sum() / ((x2 - x1) * (y2 - y1)))
    return result


def ground_truth(scene: Scene, video_name: str = VIDEO_NAME) -> dict:
    """The JSON-ready ground truth of a scene (format in the module docstring).

    Args:
        scene: a `Scene`.
        video_name: the file name recorded under "video".

    Returns:
        a dict; boxes are pixel lists [x1, y1, x2, y2] rounded to 0.01 and clipped to the frame.
    """
    boxes, present = face_boxes(scene)
    visible = visibilities(scene, boxes, present)
    limits = np.array([scene.width, scene.height, scene.width, scene.height], dtype=np.float64)
    clipped = np.clip(boxes, 0.0, limits)
    listed = present & (visible >= MIN_VISIBILITY)
    partly = present & (visible >= MIN_IGNORED_VISIBILITY) & ~listed

    def entries(t, mask):
        return [{"id": scene.faces[k].face_id, "box": [round(float(v), 2) for v in clipped[t, k]],
                 "visibility": round(float(visible[t, k]), 3)}
                for k in range(len(scene.faces)) if mask[t, k]]

    frames = [entries(t, listed) for t in range(scene.num_frames)]
    ignored = [entries(t, partly) for t in range(scene.num_frames)]
    faces = []
    for k, face in enumerate(scene.faces):
        frames_listed = np.flatnonzero(listed[:, k])
        if frames_listed.size == 0:
            continue
        faces.append({"id": face.face_id,
                      "source": face_lib.FACE_SOURCE_DEFINITIONS[face.source_index].name,
                      "first_frame": int(frames_listed[0]), "last_frame": int(frames_listed[-1]),
                      "frames_listed": int(frames_listed.size)})
    return {
        "video": video_name, "width": scene.width, "height": scene.height, "fps": scene.fps,
        "num_frames": scene.num_frames, "seed": scene.seed, "background": scene.background,
        "num_faces": len(faces),
        "min_visibility": MIN_VISIBILITY,
        "box_convention": "pixels [x1, y1, x2, y2], x2/y2 are edges; the full face box clipped to "
                          "the frame; listed when visibility >= min_visibility; frames count from 0",
        "faces": faces, "frames": frames, "ignored": ignored,
    }


def draw_room(seed: int, height: int = ROOM_SIZE[1], width: int = ROOM_SIZE[0]) -> np.ndarray:
    """Draws the procedural room: a plastered wall with a window, a door and a framed picture,
    a skirting board and a carpet, lit from the window.

    Nothing here is one of `faces.random_background`'s kinds (photo crop, linear gradient,
    blurred colour blobs, sine stripes), so the detector sees a scene it was not trained on.

    Args:
        seed: varies the colours, plank tones and textures a little.
        height, width: size in pixels (the layout scales with it).

    Returns:
        uint8 [height, width, 3] RGB.
    """
    rng = np.random.default_rng([seed, ROOM_STREAM])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    fy, fx = ys / height, xs / width  # [H, W] fractions

    def smooth_noise(cells_y, cells_x, amplitude):
        grid = rng.normal(0.0, 1.0, size=(cells_y, cells_x)).astype(np.float32)
        return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) * np.float32(amplitude)

    def fill(mask, colour):
        image[mask] = np.asarray(colour, dtype=np.float32)

    def rect(x1, y1, x2, y2):
        return (fx >= x1) & (fx < x2) & (fy >= y1) & (fy < y2)

    floor_top = 0.66
    wall = np.array([206, 192, 168], np.float32) * rng.uniform(0.94, 1.06, size=3).astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[:] = wall
    image += smooth_noise(12, 18, 4.0)[:, :, None]  # plaster

    # Window (left): sky gradient, a hill, four panes in a white frame.
    wx1, wy1, wx2, wy2 = 0.08, 0.12, 0.34, 0.52
    window = rect(wx1, wy1, wx2, wy2)
    sky = np.stack([120 + 90 * (fy - wy1) / (wy2 - wy1), 170 + 60 * (fy - wy1) / (wy2 - wy1),
                    235 + 0 * fy], axis=2)
    image[window] = sky[window]
    hill = window & (fy > wy1 + (wy2 - wy1) * (0.72 - 0.12 * np.sin(7.0 * fx)))
    fill(hill, (88, 128, 70))
    bar = 0.006
    frame = (rect(wx1 - 0.012, wy1 - 0.018, wx2 + 0.012, wy2 + 0.018) & ~window) \
        | rect((wx1 + wx2) / 2 - bar, wy1, (wx1 + wx2) / 2 + bar, wy2) \
        | rect(wx1, (wy1 + wy2) / 2 - bar * 1.5, wx2, (wy1 + wy2) / 2 + bar * 1.5)
    fill(frame, (236, 234, 228))

    # Framed picture (centre): a few coloured panels, no figures.
    px1, py1, px2, py2 = 0.44, 0.18, 0.60, 0.40
    fill(rect(px1 - 0.012, py1 - 0.018, px2 + 0.012, py2 + 0.018), (92, 64, 40))
    fill(rect(px1, py1, px2, py2), (232, 226, 205))
    for _ in range(4):
        x1, y1 = rng.uniform(px1, px2 - 0.05), rng.uniform(py1, py2 - 0.07)
        fill(rect(x1, y1, min(px2, x1 + rng.uniform(0.03, 0.08)), min(py2, y1 + rng.uniform(0.05, 0.12))),
             rng.uniform(40, 220, size=3))

    # Door (right): panels, a frame and a brass handle.
    dx1, dy1, dx2 = 0.72, 0.14, 0.88
    door_colour = np.array([122, 82, 50], np.float32) * np.float32(rng.uniform(0.9, 1.1))
    fill(rect(dx1 - 0.012, dy1 - 0.02, dx2 + 0.012, floor_top), (228, 224, 214))
    fill(rect(dx1, dy1, dx2, floor_top), door_colour)
    for y1, y2 in ((dy1 + 0.04, 0.36), (0.41, floor_top - 0.05)):
        fill(rect(dx1 + 0.025, y1, dx2 - 0.025, y2), door_colour * 0.85)
    handle = ((fx - (dx2 - 0.02)) * width) ** 2 + ((fy - 0.42) * height) ** 2 < (0.008 * width) ** 2
    fill(handle, (200, 170, 80))

    # Floor: a carpet with a fine fibre texture and a woven border line; a skirting board above.
    floor = fy >= floor_top
    carpet = np.array([96, 104, 118], np.float32) * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    fibre = rng.normal(0.0, 5.0, size=(height, width)).astype(np.float32)
    fibre = cv2.GaussianBlur(fibre, (0, 0), 0.8) + smooth_noise(6, 10, 5.0)
    image[floor] = (carpet[None, None, :] + fibre[:, :, None])[floor]
    border = floor & (np.abs(fy - (floor_top + 0.06)) < 0.006)
    image[border] *= 0.8
    fill(rect(0.0, floor_top - 0.025, 1.0, floor_top), (238, 236, 230))

    # Daylight from the window: brighter on the left, darker towards the right and the corners.
    light = 1.08 - 0.22 * fx - 0.12 * (fy - 0.4) ** 2
    image *= light[:, :, None]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def load_motorcycle_photo() -> np.ndarray:
    """skimage's stereo_motorcycle left view (a cluttered workshop), uint8 [500, 741, 3] RGB."""
    from skimage import data
    left, _, _ = data.stereo_motorcycle()
    return np.ascontiguousarray(left[:, :, :3])


def background_image(scene: Scene) -> np.ndarray:
    """The scene's background picture (before panning), uint8 [h, w, 3] RGB."""
    if scene.background == "room":
        return draw_room(scene.seed)
    return load_motorcycle_photo()


def _background(scene: Scene, photo: np.ndarray, u: float) -> np.ndarray:
    """The panned and zoomed background view at video time u: float32 [H, W, 3], 0..255."""
    photo_h, photo_w = photo.shape[:2]
    zoom = 1.0 + (MAX_ZOOM - 1.0) * (0.5 - 0.5 * math.cos(math.pi * u))
    scale = max(scene.height / photo_h, scene.width / photo_w) * PAN_MARGIN * zoom
    half_w, half_h = 0.5 * scene.width / scale, 0.5 * scene.height / scale  # view half-size, photo pixels
    centre_x = (scene.pan_start[0] + (scene.pan_end[0] - scene.pan_start[0]) * u) * photo_w
    centre_y = (scene.pan_start[1] + (scene.pan_end[1] - scene.pan_start[1]) * u) * photo_h
    centre_x = min(max(centre_x, half_w), photo_w - half_w)
    centre_y = min(max(centre_y, half_h), photo_h - half_h)
    # Edge coordinates map as out = scale * (in - centre) + size / 2; warpAffine uses pixel centres.
    matrix = np.array([[scale, 0.0, 0.5 * scene.width - scale * centre_x + 0.5 * scale - 0.5],
                       [0.0, scale, 0.5 * scene.height - scale * centre_y + 0.5 * scale - 0.5]])
    return cv2.warpAffine(photo, matrix, (scene.width, scene.height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT).astype(np.float32)


def render_frame(scene: Scene, t: int, sources: list, photo: np.ndarray,
                 boxes: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Renders frame t.

    Args:
        scene: a `Scene`.
        t: frame index in [0, N).
        sources: `faces.load_face_sources()`.
        photo: `background_image(scene)`.
        boxes, present: from `face_boxes(scene)`.

    Returns:
        uint8 [H, W, 3] RGB.
    """
    u = t / (scene.num_frames - 1)
    canvas = _background(scene, photo, u)
    for k in _paste_order(scene):
        if present[t, k] and _overlaps_frame(boxes[t, k], scene):
            face = scene.faces[k]
            face_lib.paste_face(canvas, sources[face.source_index], boxes[t, k], flip=face.flip,
                                gains=face.gains)
    low, high = BRIGHTNESS_RANGE
    gain = low + (high - low) * (0.5 + 0.5 * math.sin(2 * math.pi * 0.7 * u + scene.brightness_phase))
    canvas *= np.float32(gain)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def _overlaps_frame(box: np.ndarray, scene: Scene) -> bool:
    """Whether the face's soft mask (radius `faces.MASK_CLEAR_RADIUS`) reaches into the frame."""
    centre = (box[:2] + box[2:]) / 2
    half = face_lib.MASK_CLEAR_RADIUS * (box[2:] - box[:2]) / 2
    return bool(np.all(centre + half > 0) and centre[0] - half[0] < scene.width
                and centre[1] - half[1] < scene.height)


def _num_frames(seconds: float, fps: float) -> int:
    frames = int(round(seconds * fps))
    if frames < 2:
        raise ValueError(f"--seconds {seconds} at --fps {fps} gives {frames} frame(s); need at least 2")
    return frames


def iter_frames(scene: Scene, progress: bool = False):
    """Yields the frames of a scene in order, each uint8 [H, W, 3] RGB."""
    sources = face_lib.load_face_sources()
    photo = background_image(scene)
    boxes, present = face_boxes(scene)
    for t in tqdm(range(scene.num_frames), desc="frames", unit="frame", disable=not progress, leave=False):
        yield render_frame(scene, t, sources, photo, boxes, present)


def sample_video(seed: int = 0, seconds: float = DEFAULT_SECONDS, fps: float = DEFAULT_FPS,
                 size: tuple[int, int] = DEFAULT_SIZE, background: str = "room") -> tuple[np.ndarray, dict]:
    """Renders the whole sample video in memory, without writing anything.

    Args:
        seed: the random seed.
        seconds: duration; the frame count is round(seconds * fps) >= 2.
        fps: frames per second.
        size: (width, height) in pixels.
        background: one of `BACKGROUNDS`.

    Returns:
        frames: uint8 [N, H, W, 3] RGB (N x H x W x 3 bytes: 161 MB at the defaults).
        truth: the ground-truth dict (see the module docstring).
    """
    scene = make_scene(seed, _num_frames(seconds, fps), size, fps, background)
    frames = np.stack(list(iter_frames(scene)))
    return frames, ground_truth(scene)


def write_sample_video(output_dir: str, seed: int = 0, seconds: float = DEFAULT_SECONDS,
                       fps: float = DEFAULT_FPS, size: tuple[int, int] = DEFAULT_SIZE,
                       background: str = "room", progress: bool = False) -> tuple[str, str, dict]:
    """Writes `VIDEO_NAME` (mp4v) and `TRUTH_NAME` into output_dir, each atomically.

    Returns:
        (video_path, truth_path, truth dict).

    Raises:
        ValueError: on bad arguments.
        OSError: if OpenCV cannot write the video.
    """
    scene = make_scene(seed, _num_frames(seconds, fps), size, fps, background)
    os.makedirs(output_dir, exist_ok=True)
    video_path = os.path.join(output_dir, VIDEO_NAME)
    truth_path = os.path.join(output_dir, TRUTH_NAME)
    writer = AtomicVideoWriter(video_path, scene.fps, scene.width, scene.height, fourcc=FOURCC)
    try:
        for frame in iter_frames(scene, progress=progress):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    truth = ground_truth(scene, VIDEO_NAME)
    write_text_atomic(truth_path, json.dumps(truth, separators=(",", ":")) + "\n")
    return video_path, truth_path, truth


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    return width, height


def main(argv=None) -> int:
    """The CLI; returns the exit code (user errors: one ``error:`` line on stderr and 2)."""
    return report_errors(_main, argv, USER_ERRORS + (ValueError, OSError))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        description="Render the sample face video (real package faces crossing, leaving and "
                    "arriving over a panning scene) and its exact per-frame ground truth.",
        epilog="example: python prepare_data/make_sample_video.py --output_dir media --seed 0 "
               "--seconds 7 --fps 25 --size 640x480",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output_dir", default="media", help=f"folder for {VIDEO_NAME} and {TRUTH_NAME}")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same video and truth")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="duration in seconds")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frames per second")
    parser.add_argument("--size", type=_parse_size, default="640x480", help="frame size WIDTHxHEIGHT")
    parser.add_argument("--background", choices=BACKGROUNDS, default="room",
                        help="'room': procedural room; 'motorcycle': cluttered workshop photo (harder)")
    args = add_debug_flag(parser).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    video_path, truth_path, truth = write_sample_video(args.output_dir, args.seed, args.seconds,
                                                       args.fps, args.size, args.background, progress=True)
    listed = sum(len(f) for f in truth["frames"])
    logger.info("wrote %s (%d frames, %dx%d, %.3g fps, %.2f MB) and %s (%d faces, %d boxes)",
                video_path, truth["num_frames"], truth["width"], truth["height"], truth["fps"],
                os.path.getsize(video_path) / 1e6, truth_path, truth["num_faces"], listed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
