"""Train FaceBoxes with the upstream recipe (or any recipe in configs/).

Resumes from the last checkpoint in the config's model_dir; writes TensorBoard summaries to
model_dir/train and model_dir/eval (`tensorboard --logdir MODEL_DIR`).

Examples:
    python train.py --config configs/config.json
    python train.py --config configs/sample.json --num_steps 200
"""
import argparse
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/config.json", help="the training recipe (JSON)")
    parser.add_argument("--num_steps", type=int, default=None,
                        help="stop at this global step (default: the recipe's training.num_steps)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from src.config import ConfigError, load_config
    from src.trainer import train

    try:
        config = load_config(args.config)
        result = train(config, num_steps=args.num_steps)
    except (ConfigError, FileNotFoundError) as e:  # user errors: one line, no traceback
        sys.exit(f"error: {e}")
    ap = f", AP@0.5 {result['eval']['AP']:.4f}" if result["eval"] else ""
    print(f"trained to step {result['step']} in {config.training.model_dir}{ap}")


if __name__ == "__main__":
    main()
