"""Export a trained FaceBoxes checkpoint as a SavedModel with the upstream serving signature.

The SavedModel takes `image_tensor` (uint8 [batch, height, width, 3], every dimension free)
and returns `boxes` (normalized ymin, xmin, ymax, xmax), `scores` and `num_boxes`; the NMS
settings come from the config's `postprocessing` group. It is written to
OUTPUT_DIR/<global step>/ (the TF Serving layout), atomically, with the usual folder
permissions (0o777 minus the umask); an existing export is never overwritten.

User errors (a missing or unreadable checkpoint, a folder without checkpoints, a bad recipe, an
existing export) end with one line `error: ...` on stderr and exit code 2; --debug shows the
traceback.

Examples:
    python save.py --config configs/config.json --output_dir export/run00
    python save.py --config configs/sample.json --checkpoint models/sample/ckpt-3 --output_dir export/sample
    python save.py --config configs/sample.json --checkpoint models/sample --output_dir export/sample
    python save.py --config configs/config.json --from_upstream_checkpoint upstream/model.ckpt-240000 \\
        --output_dir export/upstream
    python save.py --config configs/sample.json --output_dir export/sample_bf16 --compute_dtype bfloat16
"""
import sys

if __name__ == "__main__":  # Ctrl-C while the modules load: one line, exit 130
    from src.cli import quiet_ctrl_c
    quiet_ctrl_c()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from src.cli import UserError, add_debug_flag, import_tensorflow, report_errors  # noqa: E402
from src.config import load_config  # noqa: E402  (no TensorFlow import; ConfigError is a UserError)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/config.json", help="the training recipe (JSON)")
    parser.add_argument("--output_dir", required=True, help="parent folder of the versioned SavedModel")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--checkpoint",
                       help="a checkpoint prefix (models/run00/ckpt-3), one of its files, or a folder "
                            "(its latest checkpoint); default: the latest in the config's model_dir")
    group.add_argument("--from_upstream_checkpoint",
                       help="a TF1 checkpoint of the upstream FaceBoxes (converted on the fly)")
    parser.add_argument("--compute_dtype", choices=("float32", "bfloat16"), default="float32",
                        help="dtype of the network's convolutions in the exported graph; bfloat16 is "
                             "faster on CPUs with bfloat16 units (AVX512_BF16/AMX); on the sample video "
                             "it moved scores by < 0.004 and boxes by up to 8 px; decoding and NMS "
                             "stay float32")
    add_debug_flag(parser)
    return parser.parse_args(argv)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_checkpoint(model, path):
    """Restores `model` from one of our checkpoints; returns its step.

    Args:
        model: a FaceBoxes.
        path: a checkpoint prefix, one of its files, or a folder with a 'checkpoint' state file.

    Raises:
        UserError: one line naming the checkpoint: missing, a folder without checkpoints, not a
            TensorFlow checkpoint, or one that does not hold this model.
    """
    tf = import_tensorflow()
    from src.upstream_checkpoint import UpstreamCheckpointError, resolve_checkpoint_prefix

    try:
        prefix = resolve_checkpoint_prefix(path)
    except UpstreamCheckpointError as e:
        raise UserError(str(e)) from e
    step_var = tf.Variable(0, dtype=tf.int64)
    try:
        status = tf.train.Checkpoint(model=model, step=step_var).read(prefix)
        status.assert_existing_objects_matched().expect_partial()
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"{prefix}: not a readable TensorFlow checkpoint: {_first_line(e)}") from e
    except AssertionError as e:
        raise UserError(f"{prefix}: does not hold a FaceBoxes model of this project ({_first_line(e)}); "
                        "for the upstream's TF1 checkpoints use --from_upstream_checkpoint") from e
    return int(step_var.numpy())


def run(argv=None):
    """The script without the error policy: user errors are raised (UserError, OSError)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = load_config(args.config)  # before TensorFlow loads: a bad recipe fails fast
    tf = import_tensorflow()
    from src.detector import FaceBoxes
    from src import export

    model = FaceBoxes()
    if args.from_upstream_checkpoint:
        from src.upstream_checkpoint import UpstreamCheckpointError, load_upstream_checkpoint
        try:
            report = load_upstream_checkpoint(model, args.from_upstream_checkpoint)
        except UpstreamCheckpointError as e:
            raise UserError(str(e)) from e
        step = report.global_step or 0
    elif args.checkpoint:
        step = read_checkpoint(model, args.checkpoint)
    else:
        path = tf.train.latest_checkpoint(config.training.model_dir)
        if path is None:
            raise UserError(f"no checkpoint in {config.training.model_dir} (train first or pass --checkpoint)")
        step = read_checkpoint(model, path)
    pp = config.postprocessing
    export_dir = os.path.join(args.output_dir, str(step))
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise UserError(f"{args.output_dir}: is a file; --output_dir must be a folder")
    try:
        export.save_saved_model(model, export_dir, pp.score_threshold, pp.iou_threshold, pp.max_boxes,
                                tf.as_dtype(args.compute_dtype))
    except FileExistsError as e:
        raise UserError(str(e)) from e
    print(f"saved model (step {step}) to {export_dir}")
    return 0


def main(argv=None):
    """Runs the script; returns the exit code. A user error prints one line ``error: ...`` on stderr
    and returns 2 (--debug re-raises it with its traceback instead); Ctrl-C one line and 130."""
    return report_errors(run, argv)


if __name__ == "__main__":
    sys.exit(main())
