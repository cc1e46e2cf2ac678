"""A frozen FaceBoxes inference graph (.pb) for the library: loaded once, run on uint8 images.

Interface of the graph (src/export.py writes it, the upstream's graphs have it too): input
`NODE_NAMES['input']`, uint8 [batch, height, width, 3]; outputs `NODE_NAMES['boxes']` float32
[batch, max_boxes, 4] normalized [ymin, xmin, ymax, xmax], `NODE_NAMES['scores']` float32
[batch, max_boxes] and `NODE_NAMES['num_boxes']` int32 [batch].

`FrozenGraphDetector(path)(image, score_threshold)` answers like `face_detector.FaceDetector`:
pixel [ymin, xmin, ymax, xmax] boxes and scores strictly above the threshold, for uint8 RGB
images as they are (no resizing, no GPU options). `precision` is FaceDetector's: 'float32' (the
default) runs the graph as frozen, 'bfloat16' rewrites it (face_detector.py), 'auto' picks
bfloat16 where the CPU has native bfloat16. It is what src itself uses (evaluate_model,
visualize).

Reading the `.pb`, the bfloat16 rewrite and the precision choice are face_detector.py's own,
imported: that file must stay self-contained for users who copy it, so the library takes from it,
never the reverse. What is here is the plain batch API src needs (no resizing, no GPU options),
with the same node names and error messages as FaceDetector.
"""
import numpy as np
import tensorflow as tf

from face_detector import _bfloat16_where_supported as bfloat16_where_supported  # noqa: E402
from face_detector import _read_graph_def as read_graph_def  # noqa: E402  (the same messages as FaceDetector's)
from face_detector import resolve_precision  # noqa: E402
from src.export import NODE_NAMES, OUTPUT_KEYS

_IMPORT_SCOPE = "import"


_WANTED = [NODE_NAMES["input"]] + [NODE_NAMES[key] for key in OUTPUT_KEYS]


def _check_nodes(graph_def, path):
    """Raises ValueError naming `path` when the graph lacks an input or output node."""
    names = {node.name for node in graph_def.node}
    missing = [name for name in _WANTED if name not in names]
    if missing:
        raise ValueError(f"{path}: the graph lacks the node(s) {', '.join(missing)}")


def _prune(graph_def):
    """One concrete function uint8 [b, H, W, 3] -> (boxes, scores, num_boxes), any b, H, W."""
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.compat.v1.import_graph_def(graph_def, name=_IMPORT_SCOPE), [])

    def tensor(name):
        return wrapped.graph.get_tensor_by_name(f"{_IMPORT_SCOPE}/{name}:0")

    pruned = wrapped.prune(feeds=tensor(_WANTED[0]), fetches=[tensor(name) for name in _WANTED[1:]])
    # A tf.function with an explicit signature binds its argument directly (calling the
    # pruned function itself first fails to bind and falls back, ~0.6 ms per call).
    return tf.function(lambda images: pruned(images),
                       input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)]
                       ).get_concrete_function()


class FrozenGraphDetector:
    """Runs a frozen FaceBoxes graph; see the module docstring."""

    def __init__(self, path, precision="float32"):
        """Loads the graph.

        Args:
            path: str, a frozen GraphDef (.pb) with the nodes of `src.export.NODE_NAMES`.
            precision: 'float32' (the graph as frozen), 'bfloat16' or 'auto' (see the module
                docstring); the resolved choice is the `precision` attribute.

        Raises:
            FileNotFoundError, IsADirectoryError, ValueError: see `read_graph_def`; also
                ValueError when the graph lacks one of the nodes or `precision` is unknown.
        """
        self.model_path = path
        self.precision = resolve_precision(precision)
        graph_def = read_graph_def(path)
        _check_nodes(graph_def, path)
        if self.precision == "bfloat16":
            graph_def, self.precision = bfloat16_where_supported(graph_def, path)
        self._function = _prune(graph_def)

    def run(self, images):
        """The graph's raw outputs for a batch.

        Args:
            images: uint8 [b, H, W, 3] RGB.

        Returns:
            (boxes float32 [b, max_boxes, 4] normalized ymin, xmin, ymax, xmax,
             scores float32 [b, max_boxes], num_boxes int32 [b]) as numpy arrays.
        """
        boxes, scores, num_boxes = self._function(tf.convert_to_tensor(images, tf.uint8))
        return boxes.numpy(), scores.numpy(), num_boxes.numpy()

    def __call__(self, image, score_threshold=0.5):
        """Detects faces in one image.

        Args:
            image: uint8 numpy array [H, W, 3], RGB.
            score_threshold: float, detections scoring strictly above it are returned.

        Returns:
            (boxes float32 [N, 4] pixels ymin, xmin, ymax, xmax of `image`, scores float32 [N]),
            in the graph's order (descending score).

        Raises:
            ValueError: an image that is not uint8 [H, W, 3] with H, W > 0.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise ValueError(f"image must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
        boxes, scores, num_boxes = self.run(image[np.newaxis])
        count = int(num_boxes[0])
        boxes, scores = boxes[0, :count], scores[0, :count]
        keep = scores > score_threshold
        height, width = image.shape[:2]
        scaler = np.array([height, width, height, width], dtype=np.float32)
        return boxes[keep] * scaler, scores[keep]
