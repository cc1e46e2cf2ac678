"""bfloat16 for frozen inference graphs on CPUs that have it: the capability check and the rewrite.

`rewrite_to_bfloat16(graph_def)` applies TensorFlow's oneDNN automatic mixed precision pass
(Grappler's auto_mixed_precision_onednn_bfloat16, and only it) to a copy of a frozen graph, so
the convolutions run in bfloat16. It is local to that graph: no process-wide option is set. bfloat16 is
fast on CPUs with bfloat16 units (Intel AMX-BF16 or AVX512_BF16) and slow on others;
`resolve_precision('auto')` picks it only where the CPU has them and no GPU runs the graph.
On CPUs without AVX-512 the pass leaves the graph in float32: `bfloat16_where_supported`
then keeps the graph as it is and reports 'float32'.

face_detector.py (the file users copy, numpy and TensorFlow only) holds the same code on
purpose, as it holds the loader of src/frozen_graph.py; tests/test_bfloat16_graph.py checks
that both give the same rewritten graph. Keep them in step.
"""
import logging

import tensorflow as tf

from src.export import NODE_NAMES, OUTPUT_KEYS

logger = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16", "auto")
# /proc/cpuinfo flags of CPUs with native bfloat16 arithmetic (Intel AMX, AVX-512 BF16).
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_native_bfloat16(cpuinfo_path="/proc/cpuinfo"):
    """True if the CPU reports AMX-BF16 or AVX512_BF16 in `cpuinfo_path` (Linux); else False."""
    try:
        with open(cpuinfo_path, "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)
    except OSError:
        pass
    return False


def resolve_precision(precision, has_native_bfloat16=None):
    """'float32' or 'bfloat16' for a requested precision ('auto' decided here, and logged).

    Args:
        precision: one of PRECISIONS.
        has_native_bfloat16: bool or None; None asks `cpu_has_native_bfloat16()`.

    Raises:
        ValueError: `precision` is not one of PRECISIONS.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        choice, reason = "float32", "a GPU runs the graph"
    else:
        native = cpu_has_native_bfloat16() if has_native_bfloat16 is None else has_native_bfloat16
        choice = "bfloat16" if native else "float32"
        reason = ("the CPU has native bfloat16 (AMX / AVX512_BF16)" if native
                  else "the CPU has no native bfloat16 (no AMX / AVX512_BF16 flag)")
    logger.info("precision auto -> %s: %s", choice, reason)
    return choice


def rewrite_to_bfloat16(graph_def):
    """A frozen graph (tf.compat.v1.GraphDef, outputs NODE_NAMES) with the oneDNN bfloat16 pass applied."""
    from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: PLC0415
    from tensorflow.python.grappler import tf_optimizer  # noqa: PLC0415
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        meta_graph = tf.compat.v1.train.export_meta_graph(graph_def=graph.as_graph_def(), graph=graph)
    fetch = meta_graph.collection_def["train_op"].node_list.value
    for key in OUTPUT_KEYS:
        fetch.append(NODE_NAMES[key])
    config = tf.compat.v1.ConfigProto()
    rewriter = config.graph_options.rewrite_options
    rewriter.min_graph_nodes = -1
    rewriter.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    rewriter.optimizers.extend(["auto_mixed_precision_onednn_bfloat16"])
    return tf_optimizer.OptimizeGraph(config, meta_graph)


def bfloat16_where_supported(graph_def, model_path):
    """(graph_def, precision): the bfloat16 rewrite and "bfloat16", or the graph unchanged and "float32".

    TensorFlow's oneDNN bfloat16 pass rewrites only on CPUs with AVX-512 (or AVX-NE-CONVERT);
    elsewhere (e.g. AVX2-only CPUs) it returns the graph in float32, so "bfloat16" would be a
    name for float32. That case is logged and reported as "float32".
    """
    rewritten = rewrite_to_bfloat16(graph_def)
    if computes_in_bfloat16(rewritten):
        return rewritten, "bfloat16"
    logger.warning("%s: bfloat16 requested, but TensorFlow's oneDNN bfloat16 pass does not rewrite graphs "
                   "on this CPU (it needs AVX-512); running float32", model_path)
    return graph_def, "float32"


def computes_in_bfloat16(graph_def):
    """True if any node of `graph_def` (tf.compat.v1.GraphDef) has a bfloat16 type attribute."""
    bfloat16 = tf.bfloat16.as_datatype_enum
    return any(value.type == bfloat16 for node in graph_def.node for value in node.attr.values())
