"""Freeze a SavedModel (from save.py) into a single `.pb` inference graph.

The graph's input placeholder is `image_tensor` (uint8 [batch, height, width, 3]) and its
outputs are the nodes `boxes`, `scores` and `num_boxes`, as in the upstream, so the file works
with `face_detector.FaceDetector` and with code written for the upstream's graph. Variables
become constants and batch norm is folded into the convolutions. Written atomically.

Examples:
    python create_pb.py -s export/run00/240000 -o model.pb
    python create_pb.py -s export/run00 -o model.pb      # the latest version in the folder
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def resolve_saved_model(path):
    """A SavedModel folder, or the highest numbered version inside a parent folder."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
    if not versions:
        raise FileNotFoundError(f"{path}: not a SavedModel folder and holds no numbered versions")
    return os.path.join(path, max(versions, key=int))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-s", "--saved_model_folder", required=True, help="SavedModel folder (or its parent)")
    parser.add_argument("-o", "--output_pb", default="model.pb", help="where to write the frozen graph")
    args = parser.parse_args(argv)
    from src import export
    try:
        saved_model = resolve_saved_model(args.saved_model_folder)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")
    graph_def = export.freeze_saved_model(saved_model)
    export.write_graph_def(graph_def, args.output_pb)
    counts = export.op_counts(graph_def)
    top = ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda x: -x[1])[:6])
    size_mb = os.path.getsize(args.output_pb) / 2**20
    print(f"wrote {args.output_pb} ({size_mb:.1f} MB): {len(graph_def.node)} ops ({top}, ...)")


if __name__ == "__main__":
    main()
