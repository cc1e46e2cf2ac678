"""SavedModel export and freezing into a `.pb` inference graph (shared by save.py and create_pb.py).

Serving signature (the upstream's save.py / create_pb.py): input `image_tensor`, uint8
[batch, height, width, 3] with every dimension free; outputs `boxes` float32
[batch, max_boxes, 4] (normalized ymin, xmin, ymax, xmax), `scores` float32
[batch, max_boxes], `num_boxes` int32 [batch].
"""
import logging
import os
import shutil
import tempfile

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from src.atomic_io import temporary_sibling, write_bytes_atomic

logger = logging.getLogger(__name__)

# The frozen graph's node names, shared with the upstream (face_detector.py repeats them).
NODE_NAMES = {"input": "image_tensor", "boxes": "boxes", "scores": "scores", "num_boxes": "num_boxes"}
OUTPUT_KEYS = ("boxes", "scores", "num_boxes")
SIGNATURE_KEY = "serving_default"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class InvalidSavedModelError(ValueError):
    """A folder that should hold a SavedModel does not (empty, corrupt, or without our signature)."""


class ServingModule(tf.Module):
    """Wraps a FaceBoxes model with the upstream serving signature.

    Args:
        model: a FaceBoxes.
        score_threshold, iou_threshold: floats, NMS settings.
        max_boxes: int, output rows per image.
        compute_dtype: tf.float32, or tf.bfloat16 to run the network's convolutions in
            bfloat16 (decoding and NMS stay float32).
    """

    def __init__(self, model, score_threshold, iou_threshold, max_boxes, compute_dtype=tf.float32):
        super().__init__(name="serving")
        self.model = model
        self.compute_dtype = compute_dtype
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_boxes = int(max_boxes)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8,
                                                name=NODE_NAMES["input"])])
    def serve(self, image_tensor):
        """uint8 [B, H, W, 3] -> dict of boxes [B, K, 4], scores [B, K], num_boxes [B]."""
        out = self.model.predictions_from_uint8(image_tensor, self.score_threshold, self.iou_threshold,
                                                self.max_boxes, self.compute_dtype)
        return {key: out[key] for key in OUTPUT_KEYS}


def _fresh_temp_dir(final_path):
    parent = os.path.dirname(os.path.abspath(final_path))
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(final_path) + "-", dir=parent)


def _default_dir_mode():
    """0o777 minus the process umask: the mode os.makedirs gives a new folder."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def save_saved_model(model, export_dir, score_threshold, iou_threshold, max_boxes,
                     compute_dtype=tf.float32):
    """Writes a SavedModel with the serving signature, atomically.

    Args:
        model: a FaceBoxes.
        export_dir: the SavedModel folder to create; it must not exist yet.
        score_threshold, iou_threshold, max_boxes: NMS settings baked into the graph.
        compute_dtype: tf.float32 (default) or tf.bfloat16 (see ServingModule).

    The folder gets the usual permissions of a new folder (0o777 minus the umask), not the
    owner-only mode of the temporary folder it is written in.

    Raises:
        FileExistsError: export_dir exists (nothing is overwritten).
    """
    if os.path.exists(export_dir):
        raise FileExistsError(f"{export_dir}: already exists; choose another folder")
    module = ServingModule(model, score_threshold, iou_threshold, max_boxes, compute_dtype)
    temp = _fresh_temp_dir(export_dir)
    try:
        tf.saved_model.save(module, temp, signatures={SIGNATURE_KEY: module.serve})
        os.chmod(temp, _default_dir_mode())
        os.rename(temp, export_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _optimize(graph_def, output_names):
    """Grappler constant folding and pruning on a frozen GraphDef (folds batch norm into kernels)."""
    from face_detector import run_grappler  # noqa: PLC0415  (the one home of the Grappler call)

    def configure(rewriter):
        rewriter.optimizers.extend(["pruning", "constfold", "arithmetic", "dependency", "constfold"])
        rewriter.meta_optimizer_iterations = 2  # rewriter_config_pb2.RewriterConfig.TWO
    return run_grappler(graph_def, output_names, configure)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_saved_model(saved_model_dir):
    """Loads a SavedModel folder (tf.saved_model.load) and checks it has the serving signature.

    Raises:
        FileNotFoundError: the folder does not exist.
        InvalidSavedModelError: one line naming the folder: no saved_model.pb in it (an empty or
            unfinished export), a file that cannot be parsed or loaded (corrupt), or no
            'serving_default' signature.
    """
    if not os.path.exists(saved_model_dir):
        raise FileNotFoundError(2, "no such SavedModel folder", saved_model_dir)
    if not os.path.isdir(saved_model_dir):
        raise InvalidSavedModelError(f"{saved_model_dir}: not a folder (a SavedModel is a folder "
                                     "holding saved_model.pb and variables/)")
    if not any(os.path.isfile(os.path.join(saved_model_dir, name)) for name in SAVED_MODEL_FILES):
        raise InvalidSavedModelError(f"{saved_model_dir}: not a SavedModel: it holds no saved_model.pb "
                                     "(an empty or unfinished export?)")
    try:
        loaded = tf.saved_model.load(saved_model_dir)
    except (OSError, ValueError, tf.errors.OpError) as error:  # corrupt protobuf or variables
        raise InvalidSavedModelError(f"{saved_model_dir}: not a readable SavedModel (corrupt?): "
                                     f"{_first_line(error)}") from error
    if SIGNATURE_KEY not in loaded.signatures:
        raise InvalidSavedModelError(f"{saved_model_dir}: the SavedModel has no {SIGNATURE_KEY!r} "
                                     "signature (was it written by save.py?)")
    return loaded


def freeze_saved_model(saved_model_dir):
    """Freezes a SavedModel's serving signature into a GraphDef with the upstream node names.

    Args:
        saved_model_dir: a folder written by `save_saved_model`.

    Returns:
        a tf.compat.v1.GraphDef whose input placeholder is `image_tensor` and whose outputs are
        the nodes `boxes`, `scores`, `num_boxes`; variables are constants and batch norm is
        folded into the convolution kernels.

    Raises:
        FileNotFoundError, InvalidSavedModelError: see `load_saved_model`.
    """
    loaded = load_saved_model(saved_model_dir)
    function = loaded.signatures[SIGNATURE_KEY]
    frozen = convert_variables_to_constants_v2(function)
    graph_def = frozen.graph.as_graph_def()
    # The signature's outputs are a dict; its flattened order (sorted keys) is frozen.outputs.
    keys = tf.nest.flatten({k: k for k in function.structured_outputs})
    by_key = dict(zip(keys, frozen.outputs))
    names = {node.name for node in graph_def.node}
    input_names = [t.name.split(":")[0] for t in frozen.inputs]
    if NODE_NAMES["input"] not in input_names:
        raise ValueError(f"{saved_model_dir}: the signature has no input named {NODE_NAMES['input']!r}")
    for key in OUTPUT_KEYS:
        node = graph_def.node.add()
        node.name = NODE_NAMES[key]
        if node.name in names:
            raise ValueError(f"{saved_model_dir}: node name {node.name!r} is already used in the graph")
        node.op = "Identity"
        node.input.append(by_key[key].name.replace(":0", ""))
        node.attr["T"].type = by_key[key].dtype.as_datatype_enum
    return _optimize(graph_def, [NODE_NAMES[k] for k in OUTPUT_KEYS])


def write_graph_def(graph_def, path, overwrite=True):
    """Writes a binary GraphDef atomically (temporary name in the same folder, then rename).

    Args:
        graph_def: a GraphDef.
        path: str, the file to write.
        overwrite: bool; False never replaces an existing file, even one that appears while
            the graph is being written (the complete temporary file is hard-linked to `path`).

    Raises:
        FileExistsError: overwrite is False and `path` exists.
        IsADirectoryError: `path` is a folder.
    """
    if os.path.isdir(path):
        raise IsADirectoryError(21, "is a folder, not a file", path)
    if overwrite:
        write_bytes_atomic(path, graph_def.SerializeToString())
        return
    if os.path.lexists(path):
        raise FileExistsError(17, "already exists", path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "xb") as f:
            f.write(graph_def.SerializeToString())
        try:
            os.link(tmp, path)  # fails if path exists: never replaces
        except FileExistsError:
            raise FileExistsError(17, "already exists", path) from None
        except OSError:  # a file system without hard links: check, then rename
            if os.path.lexists(path):
                raise FileExistsError(17, "already exists", path) from None
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def op_counts(graph_def):
    """Dict from op type to its number of nodes in a GraphDef."""
    counts = {}
    for node in graph_def.node:
        counts[node.op] = counts.get(node.op, 0) + 1
    return counts
