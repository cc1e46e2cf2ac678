"""Convert the upstream FaceBoxes TF1 checkpoint into our TF2 model, by variable name.

No boxes are read or written here: this module only moves weights. (The model it fills uses
[ymin, xmin, ymax, xmax] boxes normalized to [0, 1], like the upstream, so a converted model
gives the upstream's detections.)

The upstream (TF 1.10, slim; TropComplique/FaceBoxes-tensorflow, src/network.py and
src/detector.py) saves its variables under these names: `conv1/weights` (HWIO kernels), `conv1/batch_norm/gamma`,
`.../beta`, `.../moving_mean`, `.../moving_variance`, ... and the heads
`prediction_layers/{box_encoding_predictor,class_predictor}_{0,1,2}/{weights,biases}`.
Every model here exposes `named_variables()` with exactly those names, so conversion is a
checked one-to-one copy: every variable of the model must be found with its exact shape, and
every tensor of the checkpoint must be used, except the training bookkeeping listed in
IGNORED_NAMES and IGNORED_SLOT_SUFFIXES. Everything is checked before anything is assigned,
so a failed conversion leaves the model untouched.

Checkpoints whose variables all sit under one extra outer scope (e.g. `FaceBoxes/conv1/weights`)
are recognised: the scope is found from where `conv1/weights` sits and stripped.

`load_upstream_frozen_graph` does the same from the Const nodes of an upstream frozen `.pb`
(freezing keeps each variable's name), for when only the graph is at hand.
"""
import dataclasses
import logging
import os
from typing import Optional, Tuple

import numpy as np

from src.atomic_io import temporary_sibling
from src.cli import import_tensorflow, one_line_usage_errors, report_errors

logger = logging.getLogger(__name__)

# Checkpoint entries that are training state, not model weights (written by the upstream's
# tf.estimator + MomentumOptimizer training), and why each is skipped:
GLOBAL_STEP_NAME = "global_step"
IGNORED_NAMES = {
    GLOBAL_STEP_NAME: "the training step counter (tf.train.get_or_create_global_step)",
}
IGNORED_SLOT_SUFFIXES = {
    "/Momentum": "a MomentumOptimizer accumulator (one per trainable variable), not a weight",
}
# The variable whose position tells the outer scope, if any (first layer of the network).
ANCHOR_VARIABLE = "conv1/weights"
# Suffixes users may paste instead of the prefix of a V2 checkpoint.
_CHECKPOINT_FILE_SUFFIXES = (".index", ".meta")
_DATA_FILE_MARKER = ".data-"


class UpstreamCheckpointError(ValueError):
    """The checkpoint cannot be converted: missing, unused, mis-shaped or unreadable variables."""


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What converting a checkpoint or frozen graph does (or did).

    Attributes:
        source: str, the checkpoint prefix (or frozen graph file) that is read.
        scope: str, the outer scope stripped from checkpoint names ('' when none).
        assigned: tuple of (model variable name, shape tuple), sorted by name: every variable
            of the model, each filled from the checkpoint entry scope + name.
        ignored: tuple of (checkpoint name, reason), sorted by name: entries not loaded.
        num_values: int, the number of scalars copied into the model.
        global_step: int or None, the checkpoint's 'global_step' (None when it has none,
            and for frozen graphs); save.py/train.py may use it to number exports.
    """

    source: str
    scope: str
    assigned: Tuple[Tuple[str, Tuple[int, ...]], ...]
    ignored: Tuple[Tuple[str, str], ...]
    num_values: int
    global_step: Optional[int] = None

    def summary(self):
        """One line for logs, e.g. '...: 147 variables (1,010,290 values) assigned, 94 ... ignored'."""
        scope = f" (outer scope {self.scope!r} stripped)" if self.scope else ""
        return (f"{self.source}: {len(self.assigned)} variables ({self.num_values:,} values) "
                f"assigned{scope}, {len(self.ignored)} training-state entries ignored")


def resolve_checkpoint_prefix(path):
    """The V1/V2 checkpoint prefix that `path` designates.

    Args:
        path: str, a checkpoint prefix ('model.ckpt-240000'), one of its files
            ('model.ckpt-240000.index', '.meta', '.data-00000-of-00001'), or a folder with a
            'checkpoint' state file (its latest checkpoint is used; when the state file names
            an absolute path from another machine, the same file name inside the folder is used).

    Returns:
        str, a prefix that tf.train.load_checkpoint can read.

    Raises:
        UpstreamCheckpointError: nothing readable is found; the message names `path`.
    """
    import tensorflow as tf  # noqa: PLC0415  (imported when used: the CLI checks paths first)
    path = os.fspath(path)
    if os.path.isdir(path):
        state = tf.train.get_checkpoint_state(path)
        if state is None or not state.model_checkpoint_path:
            raise UpstreamCheckpointError(
                f"{path}: folder has no 'checkpoint' state file; pass a checkpoint prefix "
                "such as model.ckpt-240000")
        candidates = [state.model_checkpoint_path,
                      os.path.join(path, os.path.basename(state.model_checkpoint_path))]
    else:
        if path.endswith(_CHECKPOINT_FILE_SUFFIXES):
            path = os.path.splitext(path)[0]
        elif _DATA_FILE_MARKER in os.path.basename(path):
            path = path[:path.rindex(_DATA_FILE_MARKER)]
        candidates = [path]
    for prefix in candidates:
        if tf.io.gfile.exists(prefix + ".index") or tf.io.gfile.exists(prefix):
            return prefix
    raise UpstreamCheckpointError(
        f"{candidates[0]}: no such checkpoint (expected the files {candidates[0]}.index and "
        f"{candidates[0]}.data-*)")


def _ignored_reason(name):
    """Why checkpoint entry `name` is skipped, or None if it must be used."""
    if name in IGNORED_NAMES:
        return IGNORED_NAMES[name]
    for suffix, reason in IGNORED_SLOT_SUFFIXES.items():
        if name.endswith(suffix):
            return reason
    return None


def _find_scope(prefix, shapes):
    """The outer scope ('' or 'X/') in front of every model name, located by ANCHOR_VARIABLE."""
    if ANCHOR_VARIABLE in shapes:
        return ""
    scopes = sorted(name[:-len(ANCHOR_VARIABLE)] for name in shapes
                    if name.endswith("/" + ANCHOR_VARIABLE))
    if len(scopes) == 1:
        return scopes[0]
    if len(scopes) > 1:
        raise UpstreamCheckpointError(
            f"{prefix}: {ANCHOR_VARIABLE!r} found under several scopes {scopes}; "
            "cannot tell which network to load")
    return ""


def _format_shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _match(source, shapes, dtypes, variables, every_entry_used):
    """Matches named tensors of a checkpoint or graph against the model's variables.

    Args:
        source: str, the checkpoint prefix or graph path, for messages.
        shapes: dict from entry name to its shape (tuple or list of ints).
        dtypes: dict from entry name to its tf.DType.
        variables: dict from upstream name to the model's tf.Variable.
        every_entry_used: bool; when True, an entry that is neither a model variable nor
            ignored training state is a problem (checkpoints); frozen graphs hold many other
            constants, so they pass False.

    Returns:
        a ConversionReport.

    Raises:
        UpstreamCheckpointError: one line naming `source`, the first problem and the number
            of further problems.
    """
    scope = _find_scope(source, shapes)
    problems = []
    assigned = []
    for name in sorted(variables):
        expected = tuple(variables[name].shape.as_list())
        key = scope + name
        if key not in shapes:
            problems.append(f"variable {key!r} is missing (the model needs shape "
                            f"{_format_shape(expected)})")
            continue
        found = tuple(shapes[key])
        if found != expected:
            problems.append(f"variable {key!r} has shape {_format_shape(found)}, "
                            f"the model expects {_format_shape(expected)}")
        elif not dtypes[key].is_floating:
            problems.append(f"variable {key!r} has dtype {dtypes[key].name}, "
                            "the model expects a float")
        else:
            assigned.append((name, expected))
    used = {scope + name for name in variables}
    ignored = []
    for key in sorted(shapes) if every_entry_used else ():
        if key in used:
            continue
        reason = _ignored_reason(key)
        if reason is None:
            problems.append(f"checkpoint variable {key!r} (shape {_format_shape(shapes[key])}) "
                            "is not a variable of the model")
        else:
            ignored.append((key, reason))
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise UpstreamCheckpointError(f"{source}: {problems[0]}{more}")
    num_values = int(sum(np.prod(shape, dtype=np.int64) for _, shape in assigned))
    return ConversionReport(source=source, scope=scope, assigned=tuple(assigned),
                            ignored=tuple(ignored), num_values=num_values)


def _plan(model, path):
    """Checks the checkpoint against the model; returns (report, reader)."""
    import tensorflow as tf  # noqa: PLC0415  (imported when used: the CLI checks paths first)
    prefix = resolve_checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UpstreamCheckpointError(f"{prefix}: not a readable TF checkpoint ({message})") from error
    shapes = reader.get_variable_to_shape_map()
    report = _match(prefix, shapes, reader.get_variable_to_dtype_map(),
                    model.named_variables(), every_entry_used=True)
    if GLOBAL_STEP_NAME in shapes and not shapes[GLOBAL_STEP_NAME]:
        step = int(reader.get_tensor(GLOBAL_STEP_NAME))
        report = dataclasses.replace(report, global_step=step)
    return report, reader


def inspect_upstream_checkpoint(model, path):
    """Checks what loading `path` into `model` would do, without assigning anything.

    Args:
        model: a FaceBoxes (any object whose `named_variables()`, a dict from upstream
            checkpoint name to tf.Variable, covers the whole checkpoint).
        path: a checkpoint prefix, one of its files, or a folder with a 'checkpoint' file.

    Returns:
        a ConversionReport.

    Raises:
        UpstreamCheckpointError: a one-line message naming the checkpoint and the first
            problem (a variable missing, of the wrong shape or dtype, or an unused checkpoint
            entry), with the count of further problems.
    """
    return _plan(model, path)[0]


def load_upstream_checkpoint(model, path):
    """Assigns every variable of `model` from an upstream TF1 checkpoint.

    All checks run before the first assignment, so on error the model is unchanged.

    Args:
        model: an object with `named_variables()`, e.g. a FaceBoxes.
        path: a checkpoint prefix ('model.ckpt-240000'), one of its files, or a folder with a
            'checkpoint' file.

    Returns:
        the ConversionReport (also logged as one INFO line).

    Raises:
        UpstreamCheckpointError: as for inspect_upstream_checkpoint.
    """
    report, reader = _plan(model, path)
    variables = model.named_variables()
    for name, _ in report.assigned:
        variable = variables[name]
        value = reader.get_tensor(report.scope + name)
        variable.assign(np.asarray(value).astype(variable.dtype.as_numpy_dtype, copy=False))
    logger.info("%s", report.summary())
    return report


def _read_frozen_graph(path):
    """Const nodes of a frozen GraphDef: dicts name -> shape, name -> tf.DType, name -> NodeDef."""
    import tensorflow as tf  # noqa: PLC0415  (imported when used: the CLI checks paths first)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UpstreamCheckpointError(f"{path}: no such frozen graph file")
    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(path, "rb") as f:
            graph_def.ParseFromString(f.read())
    except Exception as error:  # protobuf raises its own DecodeError type
        raise UpstreamCheckpointError(f"{path}: not a frozen GraphDef (.pb) ({error})") from error
    shapes, dtypes, nodes = {}, {}, {}
    for node in graph_def.node:
        if node.op != "Const":
            continue
        proto = node.attr["value"].tensor
        shapes[node.name] = tuple(d.size for d in proto.tensor_shape.dim)
        dtypes[node.name] = tf.as_dtype(proto.dtype)
        nodes[node.name] = node
    return shapes, dtypes, nodes


def load_upstream_frozen_graph(model, path):
    """Assigns every variable of `model` from the constants of an upstream frozen `.pb`.

    For when only the upstream's frozen inference graph is at hand (e.g. to fine-tune from
    it). Freezing a TF1 graph turns each variable into a Const node of the same name
    (`conv1/weights`, `conv1/batch_norm/gamma`, ...), so the same by-name copy applies; the
    graph's other constants are left alone. A graph whose batch norm was folded into the
    kernels at freezing time (our own create_pb.py does that) lacks the batch-norm variables
    and is refused. To simply run the upstream's `.pb`, no conversion is needed: use
    face_detector.FaceDetector.

    Args:
        model: a FaceBoxes.
        path: str, a binary GraphDef file.

    Returns:
        a ConversionReport (its `ignored` is empty: other constants are not listed).

    Raises:
        UpstreamCheckpointError: the file is unreadable, or a model variable is missing from
            the graph's constants or has another shape or a non-float dtype; one line naming
            `path` and the variable. The model is unchanged then.
    """
    import tensorflow as tf  # noqa: PLC0415  (imported when used: the CLI checks paths first)
    shapes, dtypes, nodes = _read_frozen_graph(path)
    if not any(name == ANCHOR_VARIABLE or name.endswith("/" + ANCHOR_VARIABLE) for name in shapes):
        raise UpstreamCheckpointError(
            f"{os.fspath(path)}: cannot be read back into weights: it holds no constant named {ANCHOR_VARIABLE!r} "
            "(a graph written by create_pb.py folds batch norm and merges convolutions, or it is another "
            "network); convert the checkpoint it was exported from instead")
    report = _match(os.fspath(path), shapes, dtypes, model.named_variables(), every_entry_used=False)
    variables = model.named_variables()
    for name, _ in report.assigned:
        variable = variables[name]
        value = tf.make_ndarray(nodes[report.scope + name].attr["value"].tensor)
        variable.assign(value.astype(variable.dtype.as_numpy_dtype, copy=False))
    logger.info("%s", report.summary())
    return report


def write_upstream_checkpoint(model, prefix, global_step=None):
    """Writes the model's weights as a TF1 checkpoint with the upstream's variable names.

    The result loads with `load_upstream_checkpoint` (so ``init_from_upstream_checkpoint``
    of a training recipe can start from it) and with the upstream's own TF1 code. Unlike a
    frozen `.pb` written by create_pb.py, where batch norm is folded into the kernels and
    parallel 1x1 convolutions are merged, it keeps every variable, so training can continue
    from it exactly. Only weights are written (no optimizer state).

    Args:
        model: an object with `named_variables()`, e.g. a FaceBoxes.
        prefix: str, the checkpoint prefix to write (e.g. 'model/facebox_weights.ckpt'); the
            files are ``prefix.index`` and ``prefix.data-00000-of-00001``.
        global_step: optional int, stored as ``global_step``.

    Returns:
        str, the prefix written.
    """
    values = {name: variable.numpy() for name, variable in model.named_variables().items()}
    if global_step is not None:
        values[GLOBAL_STEP_NAME] = np.int64(global_step)
    return write_checkpoint(values, prefix)


def write_checkpoint(values, prefix):
    """Writes named arrays as a TF1 (V2 format) checkpoint, atomically.

    The two files are first written under a hidden temporary prefix in the same folder, then
    renamed: the data file first, the index last, so an interrupted run never leaves a
    readable but incomplete checkpoint at `prefix`, and an existing one is replaced only by a
    complete new one.

    Args:
        values: dict, variable name -> numpy array (any shape; global_step a scalar int64).
        prefix: str, the checkpoint prefix; the files are ``prefix.index`` and
            ``prefix.data-00000-of-00001``. The folder is created if needed.

    Returns:
        str, the prefix written.
    """
    import tensorflow as tf  # noqa: PLC0415  (imported when used: the CLI checks paths first)
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    tmp = temporary_sibling(prefix)
    data_suffix, index_suffix = ".data-00000-of-00001", ".index"
    graph = tf.Graph()
    try:
        with graph.as_default():
            variables = {key: tf.compat.v1.Variable(value, name=key) for key, value in values.items()}
            saver = tf.compat.v1.train.Saver(var_list=variables, write_version=tf.compat.v1.train.SaverDef.V2)
            with tf.compat.v1.Session(graph=graph) as session:
                session.run(tf.compat.v1.global_variables_initializer())
                saver.save(session, tmp, write_meta_graph=False, write_state=False)
        os.replace(tmp + data_suffix, prefix + data_suffix)
        os.replace(tmp + index_suffix, prefix + index_suffix)
    finally:
        for suffix in (data_suffix, index_suffix):
            if os.path.lexists(tmp + suffix):
                os.remove(tmp + suffix)
    return prefix


def main(argv=None):
    """CLI: writes a train.py checkpoint, or an upstream frozen graph's weights, as an upstream-format checkpoint."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(
        description="Write FaceBoxes weights as a TF1 checkpoint with the upstream's variable names (loadable "
                    "with the recipe key init_from_upstream_checkpoint and save.py --from_upstream_checkpoint), "
                    "read from a train.py checkpoint or from an upstream frozen graph (.pb) whose batch norm "
                    "is not folded (its 147 variables are constants under their upstream names).",
        epilog="examples:\n  python -m src.upstream_checkpoint --checkpoint models/realfaces "
               "--output model/facebox_weights.ckpt\n  python -m src.upstream_checkpoint --from_frozen_graph "
               "upstream/facebox.pb --output models/wider/upstream_wider.ckpt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    source_group = parser.add_mutually_exclusive_group(required=True)
    source_group.add_argument("--checkpoint", help="train.py model_dir (its latest checkpoint) or a checkpoint prefix")
    source_group.add_argument("--from_frozen_graph", metavar="GRAPH_PB",
                              help="an upstream frozen inference graph with unfolded batch norm")
    parser.add_argument("--output", required=True, help="checkpoint prefix to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --output")
    args = one_line_usage_errors(parser).parse_args(argv)
    if os.path.exists(args.output + ".index") and not args.overwrite:
        print(f"error: {args.output}: a checkpoint already exists there; pass --overwrite to replace it", file=sys.stderr)
        return 2
    source = args.from_frozen_graph or args.checkpoint
    if not os.path.exists(source) and not os.path.exists(source + ".index"):
        print(f"error: {source}: no such file or folder", file=sys.stderr)
        return 2
    import_tensorflow()
    import tensorflow as tf  # noqa: PLC0415
    from src.detector import FaceBoxes  # noqa: PLC0415
    model = FaceBoxes()
    if args.from_frozen_graph:
        try:
            load_upstream_frozen_graph(model, args.from_frozen_graph)
        except UpstreamCheckpointError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        write_upstream_checkpoint(model, args.output)
        print(f"wrote {args.output} ({len(model.named_variables())} variables from {args.from_frozen_graph})")
        return 0
    source = tf.train.latest_checkpoint(args.checkpoint) if os.path.isdir(args.checkpoint) else args.checkpoint
    if not source or not tf.io.gfile.exists(source + ".index"):
        print(f"error: {args.checkpoint}: no train.py checkpoint found", file=sys.stderr)
        return 2
    step = tf.Variable(0, dtype=tf.int64)
    # train.py saves Checkpoint(model=..., optimizer=..., step=...); the optimizer is not needed.
    tf.train.Checkpoint(model=model, step=step).read(source).assert_existing_objects_matched().expect_partial()
    write_upstream_checkpoint(model, args.output, int(step.numpy()))
    print(f"wrote {args.output} (step {int(step.numpy())}, {len(model.named_variables())} variables)")
    return 0


if __name__ == "__main__":
    raise SystemExit(report_errors(main))
