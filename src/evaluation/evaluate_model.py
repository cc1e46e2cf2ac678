"""AP@0.5 of a frozen `.pb` detector on tfrecord shards (the upstream's training-time metrics).

Box convention: [ymin, xmin, ymax, xmax]; predictions are normalized by the image size so they
compare with the shards' normalized ground truth.

User errors (a missing, corrupt or folder --model, missing or inconsistent --tfrecords, an
existing --json without --overwrite) end with one line `error: ...` on stderr and exit code 2;
--debug shows the traceback.

Example:
    python -m src.evaluation.evaluate_model --model model/facebox.pb --tfrecords data/sample_shards/val
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from src.atomic_io import write_text_atomic  # noqa: E402
from src.cli import UserError, add_debug_flag, import_tensorflow, report_errors  # noqa: E402
from src.evaluation.ap import OPERATING_SCORE_THRESHOLD, Evaluator  # noqa: E402

logger = logging.getLogger(__name__)


def evaluate_detector(detector, dataset, score_threshold=0.05):
    """Runs a FaceDetector-like callable (e.g. `load_detector`'s) over an evaluation dataset.

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
        ignore = batch["ignore_boxes"][0, :int(batch["num_ignore"][0])].numpy()
        evaluator.add(np.asarray(boxes) / [height, width, height, width], scores, gt,
                      image_id=batch["filenames"][0].numpy().decode(), ignore_boxes=ignore)
    return evaluator.compute(fixed_threshold=OPERATING_SCORE_THRESHOLD)


def check_model_path(path):
    """Raises a one-line user error unless `path` is an existing file."""
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder; --model wants a frozen .pb file")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such model file")


def load_detector(path):
    """src.frozen_graph.FrozenGraphDetector(path) (FaceDetector's answers), its load failures
    (corrupt or foreign .pb) turned into UserError."""
    check_model_path(path)
    import_tensorflow()
    from src.frozen_graph import FrozenGraphDetector
    try:
        return FrozenGraphDetector(path)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from e


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="frozen .pb graph")
    parser.add_argument("--tfrecords", required=True, help="folder (or glob) of shard-*.tfrecords")
    parser.add_argument("--score_threshold", type=float, default=0.05, help="detections kept (upstream: 0.05)")
    parser.add_argument("--json", help="also write the metrics to this JSON file (atomically)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_threshold <= 1.0:
        raise UserError(f"--score_threshold: must be in [0, 1], got {args.score_threshold}")
    return args


def run(argv=None):
    """The script without the error policy: user errors are raised (UserError, OSError)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.json:
        if os.path.isdir(args.json):
            raise UserError(f"{args.json}: is a folder; --json wants a file path")
        if os.path.lexists(args.json) and not args.overwrite:
            raise UserError(f"{args.json}: already exists; pass --overwrite to replace it")
    if not os.path.exists(args.tfrecords) and not any(c in args.tfrecords for c in "*?["):
        raise UserError(f"{args.tfrecords}: no such folder or file of tfrecords")
    detector = load_detector(args.model)
    tf = import_tensorflow()
    from src.input_pipeline.pipeline import build_dataset
    from src.tfrecords import ShardSetError

    try:
        dataset = build_dataset(args.tfrecords, training=False, batch_size=1, image_size=None)
    except ShardSetError as e:
        raise UserError(str(e)) from e
    try:
        metrics = evaluate_detector(detector, dataset, args.score_threshold)
    except tf.errors.DataLossError as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else "corrupt record"
        raise UserError(f"{args.tfrecords}: corrupt tfrecords: {message}") from e
    if args.json:
        write_text_atomic(args.json, json.dumps(metrics, indent=2) + "\n")
    logger.info(f"{args.model}: AP@0.5 {metrics['AP']:.4f} on {metrics['num_images']} images, "
          f"{metrics['num_faces']} faces; at threshold {metrics['threshold']:.3f}: precision "
          f"{metrics['precision']:.3f}, recall {metrics['recall']:.3f}, mean IoU {metrics['mean_iou']:.3f}, "
          f"FP {metrics['FP']}, FN {metrics['FN']}; at score {metrics['fixed_threshold']:.2f}: "
          f"recall {metrics['fixed_recall']:.4f}, FP {metrics['fixed_FP']}")
    return 0


def main(argv=None):
    """Runs the script; returns 0, or 2 after printing one `error: ...` line (--debug re-raises)."""
    return report_errors(run, argv)


if __name__ == "__main__":
    sys.exit(main())
