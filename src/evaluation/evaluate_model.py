"""AP@0.5 of a frozen `.pb` detector on tfrecord shards (the upstream's training-time metrics).

Box convention: [ymin, xmin, ymax, xmax]; predictions are normalized by the image size so they
compare with the shards' normalized ground truth.

Example:
    python -m src.evaluation.evaluate_model --model model/facebox.pb --tfrecords data/sample_shards/val
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

from src.evaluation.ap import Evaluator

logger = logging.getLogger(__name__)


def evaluate_detector(detector, dataset, score_threshold=0.05):
    """Runs a FaceDetector-like callable over an evaluation dataset.

    Args:
        detector: callable(image uint8 [H, W, 3], score_threshold) -> (boxes [N, 4] pixels
            ymin, xmin, ymax, xmax, scores [N]).
        dataset: batches of one image from src.input_pipeline (images float [1, H, W, 3] in
            [0, 1], boxes [1, N, 4] normalized, num_boxes [1], filenames [1]).
        score_threshold: float, detections kept for the evaluation.

    Returns:
        the metrics dict of `Evaluator.compute`.
    """
    evaluator = Evaluator()
    for batch in dataset:
        image = np.round(batch["images"][0].numpy() * 255.0).astype(np.uint8)
        height, width = image.shape[:2]
        boxes, scores = detector(image, score_threshold=score_threshold)
        gt = batch["boxes"][0, :int(batch["num_boxes"][0])].numpy()
        evaluator.add(np.asarray(boxes) / [height, width, height, width], scores, gt,
                      image_id=batch["filenames"][0].numpy().decode())
    return evaluator.compute()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="frozen .pb graph")
    parser.add_argument("--tfrecords", required=True, help="folder (or glob) of shard-*.tfrecords")
    parser.add_argument("--score_threshold", type=float, default=0.05, help="detections kept (upstream: 0.05)")
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from face_detector import FaceDetector
    from src.input_pipeline.pipeline import build_dataset

    if not os.path.isfile(args.model):
        sys.exit(f"error: {args.model}: no such model file")
    dataset = build_dataset(args.tfrecords, training=False, batch_size=1, image_size=None)
    metrics = evaluate_detector(FaceDetector(args.model), dataset, args.score_threshold)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=2)
    logger.info(f"{args.model}: AP@0.5 {metrics['AP']:.4f} on {metrics['num_images']} images, "
          f"{metrics['num_faces']} faces; at threshold {metrics['threshold']:.3f}: precision "
          f"{metrics['precision']:.3f}, recall {metrics['recall']:.3f}, mean IoU {metrics['mean_iou']:.3f}, "
          f"FP {metrics['FP']}, FN {metrics['FN']}")


if __name__ == "__main__":
    main()
