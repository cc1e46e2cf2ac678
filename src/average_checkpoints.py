"""Uniform weight average of FaceBoxes checkpoints in the upstream's TF1 format (a weight "soup").

Averaging the weights of runs fine-tuned one from another (same network, nearby weights) often
gives a model at least as good as each of them (the README's "The shipped model" has the
averages that were tried). Every floating-point tensor, batch norm's moving mean and variance
included, is the arithmetic mean of the inputs' (computed in float64, stored in the inputs'
dtype); `global_step`, when present, is the largest of the inputs'. The inputs must hold the
same variable names with the same shapes and dtypes; the result is written atomically with
`src.upstream_checkpoint.write_checkpoint` and loads wherever an upstream-format checkpoint does
(`init_from_upstream_checkpoint` in a recipe, `save.py --from_upstream_checkpoint`).

Usage:
    python -m src.upstream_checkpoint --checkpoint models/realfaces_stage16 --output models/realfaces_stage16.ckpt
    python -m src.upstream_checkpoint --checkpoint models/realfaces_stage17 --output models/realfaces_stage17.ckpt
    python -m src.average_checkpoints --checkpoints models/realfaces_stage16.ckpt models/realfaces_stage17.ckpt \\
        --output models/average_16_17.ckpt
    python save.py --config configs/realfaces_stage17.json --from_upstream_checkpoint models/average_16_17.ckpt \\
        --output_dir export/average_16_17

User errors (fewer than two inputs, a missing checkpoint, inputs that do not match, an existing
output without --overwrite) end with one line `error: ...` on stderr and exit code 2; --debug
shows the traceback.
"""
import argparse
import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.cli import UserError, add_debug_flag, import_tensorflow, report_errors  # noqa: E402

def _read(prefix, tf):
    """name -> numpy array of every tensor in the checkpoint at `prefix`."""
    if not tf.io.gfile.exists(prefix + ".index"):
        raise UserError(f"{prefix}: no checkpoint there ({prefix}.index not found)")
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as e:  # a corrupt index or data file
        raise UserError(f"{prefix}: unreadable checkpoint ({' '.join(str(e).split())[:200]})") from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def average_checkpoints(prefixes):
    """Averages checkpoints tensor by tensor.

    Args:
        prefixes: a sequence of at least two checkpoint prefixes (str).

    Returns:
        dict, name -> numpy array: float tensors averaged (in float64, cast back to the inputs'
        dtype), `global_step` the maximum, any other tensor equal in every input kept.

    Raises:
        UserError: fewer than two prefixes, a missing or unreadable checkpoint, or inputs whose
            names, shapes or dtypes differ (naming the checkpoint and the tensor), or a
            non-float tensor other than global_step that differs between inputs.
    """
    if len(prefixes) < 2:
        raise UserError(f"need at least two checkpoints to average, got {len(prefixes)}")
    tf = import_tensorflow()
    from src.upstream_checkpoint import GLOBAL_STEP_NAME
    first_prefix = prefixes[0]
    tables = [_read(prefix, tf) for prefix in prefixes]
    first = tables[0]
    for prefix, table in zip(prefixes[1:], tables[1:]):
        missing = sorted(set(first) - set(table))
        extra = sorted(set(table) - set(first))
        if missing or extra:
            what = f"lacks '{missing[0]}'" if missing else f"has '{extra[0]}', which is not"
            raise UserError(f"{prefix}: {what} in {first_prefix}: the checkpoints hold different variables")
        for name, value in table.items():
            if value.shape != first[name].shape or value.dtype != first[name].dtype:
                raise UserError(f"{prefix}: '{name}' is {value.dtype} {list(value.shape)}, in {first_prefix} "
                                f"{first[name].dtype} {list(first[name].shape)}")
    averaged = {}
    for name, value in first.items():
        values = [table[name] for table in tables]
        if name == GLOBAL_STEP_NAME:
            averaged[name] = np.max(values).astype(value.dtype)
        elif np.issubdtype(value.dtype, np.floating):
            averaged[name] = np.mean(np.stack(values).astype(np.float64), axis=0).astype(value.dtype)
        elif all(np.array_equal(other, value) for other in values[1:]):
            averaged[name] = value
        else:
            raise UserError(f"'{name}' ({value.dtype}) differs between the checkpoints and cannot be averaged")
    return averaged


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python -m src.average_checkpoints --checkpoints a.ckpt b.ckpt --output soup.ckpt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", required=True,
                        help="checkpoint prefixes in the upstream's format (from python -m src.upstream_checkpoint)")
    parser.add_argument("--output", required=True, help="checkpoint prefix to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --output")
    return add_debug_flag(parser).parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.path.exists(args.output + ".index") and not args.overwrite:
        raise UserError(f"{args.output}: a checkpoint already exists there; pass --overwrite to replace it")
    values = average_checkpoints(args.checkpoints)
    from src.upstream_checkpoint import GLOBAL_STEP_NAME, write_checkpoint
    write_checkpoint(values, args.output)
    step = values.get(GLOBAL_STEP_NAME)
    print(f"wrote {args.output}: the average of {len(args.checkpoints)} checkpoints, {len(values)} tensors"
          + (f", global_step {int(step)}" if step is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(report_errors(main))
