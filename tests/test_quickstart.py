"""The README's main job: `python3 start.py ./media` with the shipped model and video."""
import json
import os
import re

import cv2
import numpy as np

import start
from src.tracking.synthetic import mot_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_start_on_media_saves_crops_for_every_face(tmp_path):
    assert start.main([os.path.join(ROOT, "media"), "--output_path", str(tmp_path), "--no_progress",
                       "--model", os.path.join(ROOT, "model", "facebox.pb"), "--save_video"]) == 0
    with open(os.path.join(ROOT, "media", "sample_truth.json")) as f:
        truth = json.load(f)
    out = tmp_path / "sample"
    tracks = np.loadtxt(out / "sample_tracks.txt", delimiter=",").reshape(-1, 10)
    saved = {int(m.group(1)) for m in (re.match(r"track_(\d+)_\d+\.jpg$", n) for n in os.listdir(out)) if m}

    # Which track follows each true face: the one sharing most frames with it at IoU >= 0.5.
    gt_frames, track_frames, votes = [], [], {}
    for frame, faces in enumerate(truth["frames"]):
        rows = tracks[tracks[:, 0] == frame + 1]  # MOT frames count from 1
        hyp = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5], rows[:, 1]])
        gt = np.array([[g["id"], *g["box"]] for g in faces], np.float64).reshape(-1, 5)
        gt_frames.append(gt)
        track_frames.append(hyp)
        for g in gt:
            for h in hyp:
                iw = min(g[3], h[2]) - max(g[1], h[0])
                ih = min(g[4], h[3]) - max(g[2], h[1])
                inter = max(iw, 0) * max(ih, 0)
                union = (g[3] - g[1]) * (g[4] - g[2]) + (h[2] - h[0]) * (h[3] - h[1]) - inter
                if inter / union >= 0.5:
                    key = (int(g[0]), int(h[4]))
                    votes[key] = votes.get(key, 0) + 1
    followers = {}
    for (face, track), count in votes.items():
        if count > followers.get(face, (None, 0))[1]:
            followers[face] = (track, count)
    assert len(followers) == truth["num_faces"] == 3
    for face, (track, count) in followers.items():
        assert track in saved, f"face {face}: its track {track} has no crops ({sorted(saved)} saved)"
    # What the main job must do whatever model is shipped: exactly one saved track per face and
    # no identity switch through the crossing and occlusion (--tracker byte, the default).
    assert len(saved) == truth["num_faces"]
    metrics = mot_metrics(gt_frames, track_frames)
    assert metrics["num_switches"] == 0, metrics
    # MOTA/IDF1 also depend on the box convention: the video's truth runs from the forehead to the
    # chin, and a model's boxes in another convention fall under IoU 0.5 in some frames. Measured
    # with model/facebox.pb (the WIDER weights fine-tuned, WIDER's square face boxes): MOTA 0.899,
    # IDF1 0.950 (bench/report.py); the WIDER weights themselves 0.894 / 0.947; earlier models with
    # forehead-to-chin boxes 0.931 / 0.966. The bounds leave room for a retrain; a model that loses faces or
    # identities falls far below them.
    assert metrics["mota"] > 0.6 and metrics["idf1"] > 0.75, metrics
    summary = json.loads((out / "sample_summary.json").read_text())
    assert summary["frames"] == len(truth["frames"]) and summary["faces_saved"] == 3 * len(saved)
    # What ran the detector ('auto': the fastest path of this CPU), for the FPS to be read against.
    assert summary["detector"]["backend"] in ("tensorflow", "litert"), summary["detector"]
    assert summary["detector"]["precision"] in ("float32", "bfloat16"), summary["detector"]
    video = cv2.VideoCapture(str(out / "sample_annotated.mp4"))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == len(truth["frames"])
