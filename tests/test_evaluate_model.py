import numpy as np

from prepare_data.faces import load_background_photos, load_face_sources
from src.evaluation.evaluate_model import evaluate_detector
from src.input_pipeline.pipeline import build_dataset
from tests.test_train_export import write_shards


class OracleDetector:
    """Returns the ground-truth boxes in pixels (FaceDetector's API), optionally one extra box."""

    def __init__(self, truth, extra=False):
        self.truth, self.extra, self.calls = truth, extra, 0

    def __call__(self, image, score_threshold=0.5):
        height, width = image.shape[:2]
        boxes = self.truth[self.calls] * np.array([height, width, height, width])
        self.calls += 1
        scores = np.full(len(boxes), 0.9)
        if self.extra:
            boxes = np.concatenate([boxes, [[0.0, 0.0, 5.0, 5.0]]])
            scores = np.concatenate([scores, [0.95]])
        return boxes, scores


def test_pixel_boxes_are_compared_with_normalized_truth(tmp_path):
    write_shards(str(tmp_path / "val"), 3, 4, load_face_sources(), load_background_photos())
    dataset = build_dataset(str(tmp_path / "val"), training=False, batch_size=1, image_size=None)
    truth = [b["boxes"][0, :int(b["num_boxes"][0])].numpy() for b in dataset]
    metrics = evaluate_detector(OracleDetector(truth), dataset)
    assert metrics["AP"] == 1.0 and metrics["FP"] == 0 and metrics["num_images"] == 3
    # One false positive per image scoring above every face: the 3 come first in the ranking,
    # so the k-th true positive has precision k / (3 + k) and AP = mean of those.
    metrics = evaluate_detector(OracleDetector(truth, extra=True), dataset)
    faces = sum(len(t) for t in truth)
    assert metrics["num_detections"] == faces + 3
    expected = np.mean([k / (3 + k) for k in range(1, faces + 1)])
    assert abs(metrics["AP"] - expected) < 1e-9
