"""The upstream's own WIDER-trained frozen graph, read back into weights and re-exported.

Needs the upstream's published graph, kept outside the repository (next to a clone, at
../shared/models/upstream_wider/facebox_upstream_wider.pb); every test here skips without it.
The same code paths are tested without it on generated graphs in tests/test_upstream_checkpoint.py
(frozen graph constants -> weights, the CLI, save.py + freezing + FaceDetector).

What is checked on real photos (12 FDDB photos when present, else the package photos):
* graph -> `python -m src.upstream_checkpoint --from_frozen_graph` -> save.py -> freezing ->
  FaceDetector gives the original graph's boxes (<= 1e-3 px) and scores (<= 1e-5);
* FaceDetector on the original graph equals a plain tf.compat.v1.Session run of it.
"""
import glob
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
WIDER_GRAPH = os.path.join(SHARED, "models", "upstream_wider", "facebox_upstream_wider.pb")
PHOTOS = os.path.join(SHARED, "data", "realfaces", "fddb_val", "originalPics")
NUM_PHOTOS = 12
BOX_TOLERANCE_PX = 1e-3
SCORE_TOLERANCE = 1e-5

pytestmark = pytest.mark.skipif(not os.path.isfile(WIDER_GRAPH),
                                reason=f"the upstream WIDER graph is not at {WIDER_GRAPH}")


def real_photos():
    """[(name, uint8 [H, W, 3] RGB)]: the first FDDB photos by name (sizes vary)."""
    import cv2
    paths = sorted(glob.glob(os.path.join(PHOTOS, "**", "*.jpg"), recursive=True))[:NUM_PHOTOS]
    if len(paths) < NUM_PHOTOS:
        pytest.skip(f"fewer than {NUM_PHOTOS} photos under {PHOTOS}")
    return [(os.path.relpath(p, PHOTOS), cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)) for p in paths]


@pytest.fixture(scope="module")
def reexported(tmp_path_factory):
    """The WIDER graph's weights through the project's own conversion and export: a .pb path."""
    import create_pb
    import save
    from src import upstream_checkpoint
    folder = tmp_path_factory.mktemp("wider")
    prefix = str(folder / "wider.ckpt")
    assert upstream_checkpoint.main(["--from_frozen_graph", WIDER_GRAPH, "--output", prefix]) == 0
    save.main(["--config", os.path.join(ROOT, "configs", "config.json"), "--from_upstream_checkpoint", prefix,
               "--output_dir", str(folder / "export")])
    pb_path = str(folder / "facebox.pb")
    assert create_pb.main(["-s", str(folder / "export"), "-o", pb_path]) == 0
    return pb_path


def test_reexported_weights_give_the_original_graphs_detections(reexported):
    from face_detector import FaceDetector
    original, ours = FaceDetector(WIDER_GRAPH), FaceDetector(reexported)
    confident = 0
    for name, image in real_photos():
        want_boxes, want_scores = original(image, score_threshold=0.05)
        boxes, scores = ours(image, score_threshold=0.05)
        assert boxes.shape == want_boxes.shape, name
        np.testing.assert_allclose(boxes, want_boxes, rtol=0, atol=BOX_TOLERANCE_PX, err_msg=name)
        np.testing.assert_allclose(scores, want_scores, rtol=0, atol=SCORE_TOLERANCE, err_msg=name)
        confident += int(np.sum(want_scores >= 0.5))
    assert confident >= NUM_PHOTOS  # faces were found, not only background scores


def test_face_detector_equals_a_plain_session_run_of_the_original_graph():
    from face_detector import FaceDetector
    from tests.tf1_graph import _session_reference
    detector, session_run = FaceDetector(WIDER_GRAPH), _session_reference(WIDER_GRAPH)
    for name, image in real_photos():
        boxes, scores, num_boxes = session_run(image[None])
        count = int(num_boxes[0])
        keep = scores[0, :count] > 0.05
        want_boxes = boxes[0, :count][keep] * np.array(image.shape[:2] * 2, np.float32)
        got_boxes, got_scores = detector(image, score_threshold=0.05)
        np.testing.assert_allclose(got_scores, scores[0, :count][keep], rtol=0, atol=SCORE_TOLERANCE, err_msg=name)
        np.testing.assert_allclose(got_boxes, want_boxes, rtol=0, atol=BOX_TOLERANCE_PX, err_msg=name)
