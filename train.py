"""Train FaceBoxes with the upstream recipe (or any recipe in configs/).

Resumes from the last checkpoint in the config's model_dir; writes TensorBoard summaries to
model_dir/train and model_dir/eval (`tensorboard --logdir MODEL_DIR`).

Examples:
    python train.py --config configs/config.json
    python train.py --config configs/sample.json --num_steps 200
"""
import sys

if __name__ == "__main__":  # Ctrl-C while the modules load: one line, exit 130 (later: a checkpoint first)
    from src.cli import quiet_ctrl_c
    quiet_ctrl_c()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from src.cli import (USER_ERRORS, add_debug_flag, check_output_folder, import_tensorflow,  # noqa: E402  (no TF)
                     report_errors)
from src.config import ConfigError, load_config  # noqa: E402  (no TensorFlow import)


def main(argv=None):
    """The CLI; returns the exit code (user errors: one ``error:`` line on stderr and 2)."""
    return report_errors(_main, argv, USER_ERRORS + (ConfigError,))


def _main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/config.json", help="the training recipe (JSON)")
    parser.add_argument("--num_steps", type=int, default=None,
                        help="stop at this global step (default: the recipe's training.num_steps)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    # User errors (a ConfigError, a missing, incomplete or empty shard set: src.cli.USER_ERRORS)
    # are found here, before the model is built or anything is written to model_dir.
    config = load_config(args.config)  # before TensorFlow is imported: a bad recipe fails fast
    check_output_folder(config.training.model_dir, f"training.model_dir of {args.config}")
    import_tensorflow()  # TF's start-up lines follow TF_CPP_MIN_LOG_LEVEL too
    from src.input_pipeline.pipeline import list_shards
    list_shards(config.input.train_dataset)
    if config.training.eval_every:
        list_shards(config.input.val_dataset)
    from src.trainer import train
    result = train(config, num_steps=args.num_steps)
    ap = f", AP@0.5 {result['eval']['AP']:.4f}" if result["eval"] else ""
    print(f"trained to step {result['step']} in {config.training.model_dir}{ap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
